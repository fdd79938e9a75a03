import * as path from 'path';
import { DfsClient } from '../client/dfs-client';
import { planUploads } from '../client/upload-plan';
import { NoPrimaryError } from '../client/failover';
import { parseAddressList } from '../client/primary-addresses';
import { ReadOnlyFallback } from '../client/read-only-fallback';
import { ReplicaReads } from '../client/replica-reads';
import { replicaAddresses } from '../config/cluster-layout';
import { loadSecurity } from '../config/security-settings';
import { Settings } from '../config/settings';
import { ClusterStatus, DfsError, NodeStatus, Precondition, currentGenerationOf, counted, formatBytes, validateClientId } from '../protocol';
import { ProgressBar } from './progress';

export function clientFor(settings: Settings): DfsClient {
  return new DfsClient({
    primaries: parseAddressList(settings.server),
    failoverWaitMs: settings.failoverWaitMs,
    clientId: validateClientId(settings.client),
    security: loadSecurity(settings),
  });
}

/**
 * Reads through the primaries or, when none answers, from the replicas (the `replica`
 * list, else the base-port range on the first primary's host), saying so once on stderr.
 */
export function readerFor(settings: Settings): ReadOnlyFallback {
  const primary = clientFor(settings);
  const replicas = new ReplicaReads({
    replicas: replicaAddresses({ host: primary.primaries.all[0].host, basePort: settings.basePort, replicas: settings.replicas, remote: settings.replica }),
    clientId: primary.clientId,
    security: loadSecurity(settings),
  });
  let told = false;
  return new ReadOnlyFallback(primary, replicas, (notice) => {
    if (!told) {
      told = true;
      process.stderr.write(`dfs: READ-ONLY: ${notice.text}\n`);
    }
  });
}

/**
 * Uploads files and folders; returns how many failed, after trying every one. With
 * `--no-overwrite` each file is sent with the precondition "absent", so a name stored
 * meanwhile (by anyone) is kept, not replaced.
 */
export async function upload(settings: Settings, paths: string[], noOverwrite: boolean, precondition?: Precondition): Promise<number> {
  if (paths.length === 0) {
    throw new DfsError('BAD_HEADER', 'dfs upload needs at least one file or folder');
  }
  const client = clientFor(settings);
  const plan = await planUploads(paths);
  if (precondition && plan.uploads.length + plan.skipped.length > 1) {
    throw new DfsError('BAD_HEADER', `${precondition.kind === 'absent' ? '--if-absent' : '--if-generation'} applies to one file; for many, use --no-overwrite`);
  }
  let failures = plan.skipped.length;
  for (const skipped of plan.skipped) {
    process.stderr.write(`skipped ${skipped.localPath}: ${skipped.reason}\n`);
  }
  for (const item of plan.uploads) {
    const bar = new ProgressBar(item.name);
    try {
      const receipt = await client.uploadFile(item.localPath, item.name, {
        precondition: precondition ?? (noOverwrite ? { kind: 'absent' } : undefined),
        onProgress: (done, total) => bar.update(done, total),
      });
      bar.finish();
      const behind = receipt.replicasBehind.length > 0 ? `, replicas behind: ${receipt.replicasBehind.join(', ')}` : '';
      process.stdout.write(`uploaded ${item.name} (${formatBytes(receipt.size)}, generation ${receipt.generation}, ${counted(receipt.copies, 'copy', 'copies')}${behind})\n`);
    } catch (error) {
      bar.finish();
      if (noOverwrite && !precondition && typeof currentGenerationOf(error) === 'number') {
        process.stdout.write(`kept existing ${item.name} (--no-overwrite)\n`);
        continue;
      }
      failures++;
      const incomplete = error instanceof DfsError && error.code === 'INCOMPLETE';
      process.stderr.write(`${incomplete ? 'stored with fewer copies than the write quorum:' : 'failed'} ${item.name}: ${(error as Error).message}\n`);
      if (error instanceof DfsError && error.code === 'UNREACHABLE') {
        if (!(error instanceof NoPrimaryError)) {
          process.stderr.write(`is the cluster running? Start one with "dfs cluster", or point --server at it\n`);
        }
        return failures + plan.uploads.length - plan.uploads.indexOf(item) - 1;
      }
    }
  }
  return failures;
}

export async function listFiles(settings: Settings, json: boolean): Promise<void> {
  const files = await readerFor(settings).files();
  if (json) {
    process.stdout.write(JSON.stringify(files, null, 2) + '\n');
    return;
  }
  if (files.length === 0) {
    process.stdout.write(`No files stored for client ${settings.client}.\n`);
    return;
  }
  for (const file of files) {
    const when = new Date(file.mtimeMs).toISOString().replace('T', ' ').slice(0, 19);
    process.stdout.write(`${formatBytes(file.size).padStart(10)}  ${when}  gen ${String(file.generation).padEnd(6)}  ${file.copies ?? '?'} copies  ${file.sha256.slice(0, 12)}  ${file.name}\n`);
  }
}

export async function listClients(settings: Settings, json: boolean): Promise<void> {
  const clients = await readerFor(settings).clients();
  if (json) {
    process.stdout.write(JSON.stringify(clients, null, 2) + '\n');
    return;
  }
  if (clients.length === 0) {
    process.stdout.write('No client has stored files yet.\n');
  }
  for (const client of clients) {
    process.stdout.write(`${client.clientId}  ${counted(client.files, 'file')}  ${formatBytes(client.bytes)}\n`);
  }
}

export async function getFile(settings: Settings, name: string | undefined, output: string | undefined, generation?: number): Promise<void> {
  if (!name) {
    throw new DfsError('BAD_HEADER', 'dfs get needs the stored name of a file (see dfs ls)');
  }
  const destination = path.resolve(output ?? path.basename(name));
  const bar = new ProgressBar(name);
  const result = await readerFor(settings).downloadToFile(name, destination, { generation, onProgress: (done, total) => bar.update(done, total) });
  bar.finish();
  process.stdout.write(`downloaded ${name} generation ${result.generation} to ${destination} (${formatBytes(result.size)}, sha256 ${result.sha256} verified)\n`);
}

export async function removeFile(settings: Settings, name: string | undefined, precondition?: Precondition): Promise<void> {
  if (!name) {
    throw new DfsError('BAD_HEADER', 'dfs rm needs the stored name of a file (see dfs ls)');
  }
  if (precondition?.kind === 'absent') {
    throw new DfsError('BAD_HEADER', 'dfs rm takes --if-generation G, not --if-absent');
  }
  const receipt = await clientFor(settings).delete(name, { ifGeneration: precondition?.generation });
  const behind = receipt.replicasBehind.length > 0 ? ` (replicas behind: ${receipt.replicasBehind.join(', ')})` : '';
  process.stdout.write(`deleted ${name} at generation ${receipt.generation}${behind}\n`);
}

export async function moveFile(settings: Settings, from: string | undefined, to: string | undefined, precondition: Precondition | undefined, replace: boolean): Promise<void> {
  if (!from || !to) {
    throw new DfsError('BAD_HEADER', 'dfs mv needs the stored name of a file (see dfs ls) and its new name');
  }
  if (precondition?.kind === 'absent') {
    throw new DfsError('BAD_HEADER', 'dfs mv takes --if-generation G (of the file moved), not --if-absent; without --replace an existing destination is refused anyway');
  }
  const receipt = await clientFor(settings).rename(from, to, { ifGeneration: precondition?.generation, replace });
  const replaced = receipt.replaced !== undefined ? `, replacing generation ${receipt.replaced}` : '';
  const behind = receipt.replicasBehind.length > 0 ? ` (replicas behind: ${receipt.replicasBehind.join(', ')})` : '';
  process.stdout.write(`renamed ${from} to ${to} at generation ${receipt.generation}${replaced}${behind}\n`);
}

export async function listVersions(settings: Settings, name: string | undefined, json: boolean): Promise<void> {
  if (!name) {
    throw new DfsError('BAD_HEADER', 'dfs versions needs the stored name of a file (see dfs ls)');
  }
  const versions = await readerFor(settings).versions(name);
  if (json) {
    process.stdout.write(JSON.stringify(versions, null, 2) + '\n');
    return;
  }
  for (const version of versions) {
    const when = new Date(version.mtimeMs).toISOString().replace('T', ' ').slice(0, 19);
    process.stdout.write(`gen ${String(version.generation).padEnd(6)}  ${formatBytes(version.size).padStart(10)}  ${when}  ${version.sha256}${version.current ? '  (current)' : ''}\n`);
  }
}

export async function restoreVersion(settings: Settings, name: string | undefined, generationText: string | undefined): Promise<void> {
  if (!name || generationText === undefined || !/^\d+$/.test(generationText)) {
    throw new DfsError('BAD_HEADER', 'dfs restore needs the stored name of a file and the generation to restore (see dfs versions NAME)');
  }
  const receipt = await clientFor(settings).restore(name, Number(generationText));
  process.stdout.write(`restored ${name}: generation ${generationText} is current again as generation ${receipt.generation} (${formatBytes(receipt.size)}, ${counted(receipt.copies, 'copy', 'copies')})\n`);
}

export async function showStatus(settings: Settings, json: boolean): Promise<void> {
  const status: NodeStatus = await clientFor(settings).status();
  if (json) {
    process.stdout.write(JSON.stringify(status, null, 2) + '\n');
    return;
  }
  if (status.role !== 'primary') {
    process.stdout.write(`replica ${status.id} at ${status.address}: ${counted(status.files, 'file')}, ${formatBytes(status.bytes)}\n`);
    return;
  }
  const cluster = status as ClusterStatus;
  const up = cluster.replicas.filter((replica) => replica.reachable).length;
  process.stdout.write(
    `primary ${cluster.address}: ${counted(cluster.files, 'file')}, ${formatBytes(cluster.bytes)}; ${up}/${cluster.replicas.length} replicas up; write quorum ${cluster.writeQuorum}; replication ${cluster.replication ?? 'fanout'}; generation ${cluster.generation}; keeps ${cluster.keepVersions} older versions\n`,
  );
  if (cluster.epoch) {
    const since = cluster.leaderSinceMs ? ` since ${new Date(cluster.leaderSinceMs).toISOString()}` : '';
    const standbys = cluster.standbys && cluster.standbys.length > 0 ? `standing by: ${cluster.standbys.join(', ')}` : 'no standby registered';
    process.stdout.write(`  leader ${cluster.leader} (elected through etcd, epoch ${cluster.epoch})${since}; ${standbys}\n`);
  }
  if (cluster.recovering) {
    process.stdout.write(`  RECOVERING: not serving yet: ${cluster.recovering}\n`);
  }
  for (const replica of cluster.replicas) {
    const sync = replica.lastSyncMs ? `last sync ${new Date(replica.lastSyncMs).toISOString()}` : 'not fully synced yet';
    const state = replica.reachable ? 'up' : `DOWN (${replica.lastError ?? 'unreachable'})`;
    process.stdout.write(`  replica ${replica.id} ${replica.address}: ${state}, ${counted(replica.filesBehind, 'file')} behind, ${sync}, ${replica.repairs} repairs\n`);
    for (const failure of replica.failing ?? []) {
      process.stdout.write(`    cannot settle ${failure.name}: ${failure.reason}\n`);
    }
  }
  if (cluster.revokedKeys && cluster.revokedKeys.length > 0) {
    process.stdout.write(`  revoked keys: ${cluster.revokedKeys.join(', ')}\n`);
  }
}

export async function scrub(settings: Settings, json: boolean): Promise<number> {
  const report = await clientFor(settings).scrub();
  if (json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } else {
    const replicaLines = Object.entries(report.replicaCorrupted).map(([id, count]) => `replica ${id}: ${count} corrupted, rewritten from the primary`);
    process.stdout.write(
      [
        `checked ${counted(report.checked, 'file')}`,
        `primary: ${report.primaryCorrupted} corrupted, ${report.primaryRepaired} repaired from replicas`,
        ...replicaLines,
        ...report.unreachable.map((id) => `replica ${id}: unreachable, not checked`),
        ...report.unrecoverable.map((name) => `UNRECOVERABLE: ${name} has no good copy left`),
      ].join('\n') + '\n',
    );
  }
  return report.unrecoverable.length > 0 ? 1 : 0;
}
