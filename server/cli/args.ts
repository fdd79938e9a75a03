import { parseArgs } from 'util';
import { DfsError, Precondition } from '../protocol';
import { loadKey } from '../config/security-settings';
import { Settings, checkSettings, loadConfigFile, resolveSettings } from '../config/settings';

interface FlagDeclaration {
  type: 'string' | 'boolean';
  multiple?: true;
  short?: string;
  /** What the value is, as help shows it ("N", "HOST:PORT"). */
  value?: string;
  help: string;
}

/** Every flag, spelled as in the README, with what its help says. */
const FLAGS = {
  host: { type: 'string', value: 'H', help: 'address to listen on (clients: of the primary, when --server is not given); 127.0.0.1' },
  port: { type: 'string', value: 'P', help: 'port to listen on (clients: of the primary, when --server is not given); primary 8000' },
  replicas: { type: 'string', value: 'N', help: 'how many replicas the cluster has, on ports --base-port..+N-1; 3' },
  'base-port': { type: 'string', value: 'B', help: 'port of replica 1; 9000' },
  'data-dir': { type: 'string', value: 'D', help: 'the data folder: the primary stores under D/servidor, replica K under D/replicaK; ./dfs-data' },
  replica: { type: 'string', multiple: true, value: 'HOST:PORT', help: 'a replica elsewhere (repeat it for each; replaces --replicas and --base-port)' },
  'write-quorum': { type: 'string', value: 'all|majority|K', help: 'how many replicas must hold a write before it is acknowledged; all' },
  client: { type: 'string', value: 'ID', help: 'your client id (the folder your files are stored in); your user name, or the key\'s' },
  server: { type: 'string', value: 'HOST:PORT[,...]', help: 'every primary (leader and standbys), tried in turn; --host:--port' },
  'failover-wait': { type: 'string', value: 'MS', help: 'how long a request tries the other primaries; 8000 with several, one try with one' },
  'max-file-size': { type: 'string', value: 'BYTES', help: 'largest file accepted; 64 GiB' },
  'idle-timeout': { type: 'string', value: 'MS', help: 'a connection silent this long mid-transfer is closed; 30000' },
  'header-timeout': { type: 'string', value: 'MS', help: 'a request line must arrive within this; 10000' },
  'sync-interval': { type: 'string', value: 'MS', help: 'how often the primary checks that every replica is in step; 5000' },
  'scrub-interval': { type: 'string', value: 'MS', help: 'how often every copy is verified against its checksum; 3600000 (0: never)' },
  'secret-file': { type: 'string', value: 'PATH', help: 'the cluster secret (or DFS_SECRET): servers require it, clients holding it act as members' },
  'key-file': { type: 'string', value: 'FILE', help: 'a key from dfs key issue (or DFS_KEY) to present' },
  admin: { type: 'boolean', help: 'a key for every client, status and scrub' },
  insecure: { type: 'boolean', help: 'listen beyond loopback without a cluster secret (anyone who reaches the port can read and write every file)' },
  'tls-cert': { type: 'string', value: 'FILE', help: 'TLS certificate (with --tls-key and --tls-ca)' },
  'tls-key': { type: 'string', value: 'FILE', help: 'TLS private key' },
  'tls-ca': { type: 'string', value: 'FILE', help: 'the CA that signed the certificates of the servers connected to' },
  'max-connections': { type: 'string', value: 'N', help: 'connections served at once; half of the open-file limit less 64, at most 1024' },
  'min-free': { type: 'string', value: 'BYTES', help: 'disk space kept free: a file that would eat into it is refused with NO_SPACE; 64 MiB' },
  quota: { type: 'string', value: 'BYTES', help: 'most bytes one client may store, older versions included; none' },
  'keep-versions': { type: 'string', value: 'K', help: 'older versions kept of each file; 5' },
  'compact-after': { type: 'string', value: 'LINES', help: 'catalog journal lines before a snapshot; 20000' },
  'inline-max': { type: 'string', value: 'BYTES', help: 'files up to this size travel inside their catalog record (one sync for bytes and record); 65536 (0: never; at most 1 MiB)' },
  etcd: { type: 'string', value: 'URL[,URL...]', help: 'elect the primary through these etcd members (one of several primaries)' },
  'etcd-prefix': { type: 'string', value: 'PREFIX', help: 'key prefix the primaries of one cluster share in etcd; /dfs' },
  'lease-ttl': { type: 'string', value: 'S', help: 'seconds a leader\'s lease lasts: how soon a standby takes over; 2' },
  replication: { type: 'string', value: 'fanout|pipeline|auto', help: 'the primary sends to each replica (fanout), or once, through the replicas in a chain (pipeline: every replica must reach the next); auto: pipeline when any replica is on another host; fanout' },
  ha: { type: 'boolean', help: 'also start a local etcd (Debian package etcd-server) and a standby primary on --port + 1' },
  'if-generation': { type: 'string', value: 'G', help: 'only while the stored file is at generation G (else CONFLICT)' },
  'if-absent': { type: 'boolean', help: 'only if no file of that name is stored (else CONFLICT)' },
  generation: { type: 'string', value: 'G', help: 'a kept older version instead of the current one' },
  output: { type: 'string', short: 'o', value: 'FILE', help: 'where to write the file; its name in the current folder' },
  json: { type: 'boolean', help: 'JSON instead of a table' },
  'no-overwrite': { type: 'boolean', help: 'skip files already stored' },
  replace: { type: 'boolean', help: 'replace an existing destination (refused with EXISTS otherwise)' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
} as const satisfies Record<string, FlagDeclaration>;

export type FlagName = keyof typeof FLAGS;

/** One command: what it takes, and every flag it accepts (its parse accepts these and no others). */
export interface CommandDeclaration {
  /** What follows `dfs NAME` besides flags. */
  arguments: string;
  summary: string;
  flags: readonly FlagName[];
  /** Accepted so that one command line can start every server, but not used by this one. */
  ignored?: readonly FlagName[];
}

/** Every server listens, stores and limits alike. */
const SERVING: readonly FlagName[] = [
  'host',
  'port',
  'replicas',
  'base-port',
  'data-dir',
  'max-file-size',
  'idle-timeout',
  'header-timeout',
  'max-connections',
  'min-free',
  'compact-after',
  'inline-max',
  'secret-file',
  'tls-cert',
  'tls-key',
  'tls-ca',
  'insecure',
];
/** What only a primary uses. */
const PRIMARY_ONLY: readonly FlagName[] = ['replica', 'write-quorum', 'replication', 'sync-interval', 'scrub-interval', 'quota', 'keep-versions', 'etcd', 'etcd-prefix', 'lease-ttl'];
/**
 * How a client finds and presents itself to the cluster, and where the replicas are
 * (reads fall back to them when no primary answers; every client command takes them,
 * so one set of flags describes the cluster to all of them).
 */
const CONNECTING: readonly FlagName[] = ['server', 'host', 'port', 'client', 'failover-wait', 'key-file', 'secret-file', 'tls-ca', 'tls-cert', 'tls-key', 'replica', 'replicas', 'base-port'];

export const COMMANDS = {
  cluster: {
    arguments: '',
    summary: 'a primary and its replicas on this machine, as child processes',
    flags: [...SERVING, 'write-quorum', 'replication', 'sync-interval', 'scrub-interval', 'quota', 'keep-versions', 'etcd-prefix', 'lease-ttl', 'ha', 'help'],
  },
  primary: { arguments: '', summary: 'the primary: takes uploads and replicates them', flags: [...SERVING, ...PRIMARY_ONLY, 'help'] },
  replica: { arguments: '--port P', summary: 'one replica (its id is its port\'s place from --base-port)', flags: [...SERVING, 'help'], ignored: PRIMARY_ONLY },
  upload: { arguments: 'PATH...', summary: 'files and folders (folders recursively, relative paths kept)', flags: [...CONNECTING, 'no-overwrite', 'if-generation', 'if-absent', 'help'] },
  ls: { arguments: '', summary: 'your files with size, stored time, generation, copies and checksum', flags: [...CONNECTING, 'json', 'help'] },
  clients: { arguments: '', summary: 'every client with stored files', flags: [...CONNECTING, 'json', 'help'] },
  get: { arguments: 'NAME', summary: 'download and verify a stored file', flags: [...CONNECTING, 'output', 'generation', 'help'] },
  versions: { arguments: 'NAME', summary: 'the kept versions of a file: generation, size, time, sha256', flags: [...CONNECTING, 'json', 'help'] },
  restore: { arguments: 'NAME G', summary: 'make kept version G current again (as a new generation)', flags: [...CONNECTING, 'help'] },
  rm: { arguments: 'NAME', summary: 'delete a stored file and its older versions from every copy', flags: [...CONNECTING, 'if-generation', 'help'] },
  mv: {
    arguments: 'FROM TO',
    summary: 'rename or move a stored file on every copy, atomically, as a new generation',
    flags: [...CONNECTING, 'if-generation', 'replace', 'help'],
  },
  status: { arguments: '', summary: 'the primary and each replica: up or down, files behind', flags: [...CONNECTING, 'json', 'help'] },
  scrub: { arguments: '', summary: 'verify every copy against its checksum now and repair what fails', flags: [...CONNECTING, 'json', 'help'] },
  key: {
    arguments: 'issue|revoke ...',
    summary: 'issue a key for one client (or an admin key) from the cluster secret, or revoke one everywhere',
    flags: [...CONNECTING, 'admin', 'help'],
  },
} as const satisfies Record<string, CommandDeclaration>;

export type CommandName = keyof typeof COMMANDS;

export function isCommand(name: string): name is CommandName {
  return Object.prototype.hasOwnProperty.call(COMMANDS, name);
}

function flagUsage(flag: FlagName): string {
  const declaration: FlagDeclaration = FLAGS[flag];
  const short = declaration.short ? `-${declaration.short}, ` : '';
  return `${short}--${flag}${declaration.value ? ` ${declaration.value}` : ''}`;
}

function flagLines(flags: readonly FlagName[]): string[] {
  const unique = [...new Set(flags)];
  const width = Math.max(...unique.map((flag) => flagUsage(flag).length));
  return unique.map((flag) => `  ${flagUsage(flag).padEnd(width)}  ${FLAGS[flag].help}`);
}

/** `dfs NAME --help`: the command's usage and every flag it accepts, from its declaration. */
export function commandHelp(name: CommandName): string {
  const command: CommandDeclaration = COMMANDS[name];
  const lines = [`dfs ${name}${command.arguments ? ` ${command.arguments}` : ''} [flags]`, `  ${command.summary}`, '', 'Flags:', ...flagLines(command.flags)];
  if (command.ignored) {
    lines.push('', 'Also accepted, and ignored, so that one command line can start every server:', ...flagLines(command.ignored));
  }
  lines.push('', 'A dfs.config.json in the current folder may set the same settings (dfs --help names them); flags win.');
  return lines.join('\n') + '\n';
}

/** The command list `dfs --help` shows, one line each, from the declarations. */
export function commandList(): string {
  const entries = (Object.keys(COMMANDS) as CommandName[]).map((name) => [`dfs ${name}${COMMANDS[name].arguments ? ` ${COMMANDS[name].arguments}` : ''}`, COMMANDS[name].summary]);
  const width = Math.max(...entries.map(([usage]) => usage.length));
  return entries.map(([usage, summary]) => `  ${usage.padEnd(width)}  ${summary}`).join('\n') + '\n';
}

/** parseArgs' options for a command: its flags and, for a server, the ones it ignores. */
function parseOptions(command: CommandName): Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> {
  const declaration: CommandDeclaration = COMMANDS[command];
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const flag of [...declaration.flags, ...(declaration.ignored ?? [])]) {
    const { type, multiple, short } = FLAGS[flag] as FlagDeclaration;
    options[flag] = { type, ...(multiple ? { multiple } : {}), ...(short ? { short } : {}) };
  }
  return options;
}

/** The flags a command's parse accepts (for the test that help lists them all). */
export function acceptedFlags(command: CommandName): string[] {
  return Object.keys(parseOptions(command));
}

export interface ParsedCommand {
  settings: Settings;
  positionals: string[];
  output?: string;
  json: boolean;
  noOverwrite: boolean;
  /** --replace: `dfs mv` may replace an existing destination. */
  replace: boolean;
  help: boolean;
  /** --if-generation G or --if-absent: the precondition an upload or delete carries. */
  precondition?: Precondition;
  /** --generation G: a kept older version instead of the current one. */
  generation?: number;
  /** --admin: `dfs key issue` makes an admin key. */
  admin: boolean;
  /** --ha: `dfs cluster` starts a local etcd and two primaries. */
  ha: boolean;
}

export function parseCommandLine(command: CommandName, argv: string[], cwd: string): ParsedCommand {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: parseOptions(command), allowPositionals: true, strict: true });
  } catch (error) {
    throw new DfsError('BAD_HEADER', `${(error as Error).message}. Run "dfs ${command} --help" for its flags.`);
  }
  const positionals = parsed.positionals;
  const values = parsed.values as Partial<Record<FlagName, string | boolean | string[]>> as {
    [flag in FlagName]?: (typeof FLAGS)[flag]['type'] extends 'boolean' ? boolean : (typeof FLAGS)[flag] extends { multiple: true } ? string[] : string;
  };
  const flags: Record<string, unknown> = {};
  const number = (flag: string): number => {
    const value = values[flag as keyof typeof values] as string;
    if (!/^\d+$/.test(value)) {
      throw new DfsError('BAD_HEADER', `--${flag} ${JSON.stringify(value)} is not a whole number`);
    }
    return Number(value);
  };
  const numeric: Record<string, keyof Settings> = {
    port: 'port',
    replicas: 'replicas',
    'base-port': 'basePort',
    'max-file-size': 'maxFileSize',
    'idle-timeout': 'idleTimeoutMs',
    'header-timeout': 'headerTimeoutMs',
    'sync-interval': 'syncIntervalMs',
    'scrub-interval': 'scrubIntervalMs',
    'max-connections': 'maxConnections',
    'min-free': 'minFree',
    quota: 'quota',
    'keep-versions': 'keepVersions',
    'compact-after': 'compactAfterLines',
    'inline-max': 'inlineMax',
    'lease-ttl': 'leaseTtl',
    'failover-wait': 'failoverWaitMs',
  };
  for (const [flag, key] of Object.entries(numeric)) {
    if (values[flag as keyof typeof values] !== undefined) {
      flags[key] = number(flag);
    }
  }
  if (values.host !== undefined) flags.host = values.host;
  if (values['data-dir'] !== undefined) flags.dataDir = values['data-dir'];
  if (values.replica !== undefined) flags.replica = values.replica;
  if (values['write-quorum'] !== undefined) flags.writeQuorum = values['write-quorum'];
  if (values.replication !== undefined) flags.replication = values.replication;
  if (values.client !== undefined) flags.client = values.client;
  if (values.server !== undefined) flags.server = values.server;
  if (values['secret-file'] !== undefined) flags.secretFile = values['secret-file'];
  if (values['key-file'] !== undefined) flags.keyFile = values['key-file'];
  if (values.insecure !== undefined) flags.insecure = values.insecure;
  if (values['tls-cert'] !== undefined) flags.tlsCert = values['tls-cert'];
  if (values['tls-key'] !== undefined) flags.tlsKey = values['tls-key'];
  if (values['tls-ca'] !== undefined) flags.tlsCa = values['tls-ca'];
  if (values.etcd !== undefined) flags.etcd = values.etcd;
  if (values['etcd-prefix'] !== undefined) flags.etcdPrefix = values['etcd-prefix'];
  const fromFlags = checkSettings(flags, 'command line');
  const fromFile = loadConfigFile(cwd);
  const settings = resolveSettings(fromFlags, fromFile);
  // With a client key, the client id is the key's unless one is given.
  if (fromFlags.client === undefined && fromFile.client === undefined) {
    const key = loadKey(settings);
    if (key?.kind === 'client') {
      settings.client = key.clientId!;
    }
  }
  if (values['if-generation'] !== undefined && values['if-absent']) {
    throw new DfsError('BAD_HEADER', '--if-generation and --if-absent contradict each other; give one');
  }
  const precondition: Precondition | undefined =
    values['if-generation'] !== undefined ? { kind: 'generation', generation: number('if-generation') } : values['if-absent'] ? { kind: 'absent' } : undefined;
  return {
    settings,
    positionals,
    output: values.output,
    json: values.json ?? false,
    noOverwrite: values['no-overwrite'] ?? false,
    replace: values.replace ?? false,
    help: values.help ?? false,
    precondition,
    generation: values.generation !== undefined ? number('generation') : undefined,
    admin: values.admin ?? false,
    ha: values.ha ?? false,
  };
}
