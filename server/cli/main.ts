import { DfsError } from '../protocol';
import { sharedConnections } from '../client/client-connections';
import { commandHelp, commandList, isCommand, parseCommandLine } from './args';
import { getFile, listClients, listFiles, listVersions, moveFile, removeFile, restoreVersion, scrub, showStatus, upload } from './client-commands';
import { issueKeyCommand, revokeKeyCommand } from './key-commands';
import { runCluster, runPrimary, runReplica } from './server-commands';

/** `dfs --help`: the commands (from their declarations in args.ts) and what they share. */
function generalHelp(): string {
  return `dfs: a replicated file store

Commands (dfs COMMAND --help lists every flag a command takes):
${commandList()}
Servers (cluster, primary, replica) print "listening on HOST:PORT" once they accept connections.

Clients take --client ID and --server HOST:PORT[,HOST:PORT...]: every primary, leader and
standbys; a request that cannot reach one tries the next for --failover-wait MS, 8000 with
several, one try with one. When no primary answers, ls, get, versions and clients read from
the replicas, the newest generation of each file, and say the cluster is read-only.

Keys (where the cluster secret is: --secret-file PATH or DFS_SECRET):
  dfs key issue --client ID print a key that may touch only client ID's files
  dfs key issue --admin     print a key for every client, status and scrub
  dfs key revoke KEY|ID     every server refuses that key from now on
Clients present a key with --key-file FILE or DFS_KEY (the client id is then the key's).

Defaults: primary 127.0.0.1:8000, 3 replicas on 9000-9002, data under ./dfs-data,
client id = your user name, 5 older versions kept. A dfs.config.json in the current
folder may set any of host, port, replicas, basePort, dataDir, replica, writeQuorum, replication,
client, server (a list too), failoverWaitMs, maxFileSize, headerTimeoutMs, idleTimeoutMs,
syncIntervalMs, scrubIntervalMs, keepVersions, maxConnections, minFree, compactAfterLines,
inlineMax, etcd, etcdPrefix, leaseTtl; flags win.
`;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(generalHelp());
    return command ? 0 : 1;
  }
  if (!isCommand(command)) {
    throw new DfsError('UNKNOWN_VERB', `unknown command "${command}". Run "dfs --help" for the commands.`);
  }
  // Before the settings are read: help must show even when they are wrong.
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(commandHelp(command));
    return 0;
  }
  const parsed = parseCommandLine(command, rest, process.cwd());
  const { settings, positionals } = parsed;
  const portGiven = rest.includes('--port') || rest.some((arg) => arg.startsWith('--port='));
  switch (command) {
    case 'cluster':
      await runCluster(settings, process.argv[1], parsed.ha);
      return -1;
    case 'primary':
      await runPrimary(settings);
      return -1;
    case 'replica':
      await runReplica(settings, portGiven);
      return -1;
    case 'upload':
      return (await upload(settings, positionals, parsed.noOverwrite, parsed.precondition)) > 0 ? 1 : 0;
    case 'ls':
      await listFiles(settings, parsed.json);
      return 0;
    case 'clients':
      await listClients(settings, parsed.json);
      return 0;
    case 'get':
      await getFile(settings, positionals[0], parsed.output, parsed.generation);
      return 0;
    case 'versions':
      await listVersions(settings, positionals[0], parsed.json);
      return 0;
    case 'restore':
      await restoreVersion(settings, positionals[0], positionals[1]);
      return 0;
    case 'rm':
      await removeFile(settings, positionals[0], parsed.precondition);
      return 0;
    case 'mv':
      await moveFile(settings, positionals[0], positionals[1], parsed.precondition, parsed.replace);
      return 0;
    case 'status':
      await showStatus(settings, parsed.json);
      return 0;
    case 'scrub':
      return scrub(settings, parsed.json);
    case 'key':
      if (positionals[0] === 'issue') {
        issueKeyCommand(settings, rest.includes('--client') || rest.some((arg) => arg.startsWith('--client=')), parsed.admin);
        return 0;
      }
      if (positionals[0] === 'revoke') {
        await revokeKeyCommand(settings, positionals[1]);
        return 0;
      }
      throw new DfsError('BAD_HEADER', 'dfs key needs "issue --client ID", "issue --admin" or "revoke KEY"');
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // A client command's connection would not keep the process alive, but the server hears a clean close.
    sharedConnections.close();
    // Servers keep running (-1); client commands exit with their status.
    if (code >= 0) {
      process.exitCode = code;
    }
  },
  (error: unknown) => {
    const message = error instanceof DfsError ? error.message : error instanceof Error ? error.stack ?? error.message : String(error);
    process.stderr.write(`dfs: ${message}\n`);
    if (error instanceof DfsError && error.code === 'UNREACHABLE' && !/cannot listen|already in use|does not belong|did not start/.test(error.message)) {
      process.stderr.write('Is the cluster running? Start one with "dfs cluster" (or "npm start"), or point --server at it.\n');
    }
    sharedConnections.close();
    process.exitCode = 1;
  },
);
