import type { Handler } from '../net/session';
import { DestinationRule, DfsError, RenameReceipt, Reply, SourceRule, VersionRecord, checkRename, checkRenameNames } from '../protocol';
import { PlacementError } from '../storage/disk-store';
import { fileKey } from '../storage/key-lock';
import { liveOf } from '../storage/name-state';
import type { PrimaryContext } from './primary-context';
import { ReplicaChanges } from './replica-changes';

/**
 * RENAME and RENAME_IF. Holding both names, the primary checks the source (and its
 * precondition) and the destination (absent unless the request allows replacing it),
 * opens a connection to every replica (fewer than the write quorum: refused, nothing
 * changed), and gives the rename one generation G: the destination's new version at G
 * holds the source's bytes, the source's tombstone is at G. Both are recorded in one
 * commit (one etcd transaction with failover, one catalog record on every node), so
 * no node ever holds both names or neither; then the replicas apply REPLICA_RENAME. A
 * replica that misses it is caught up name by name like after any upload and delete.
 */
export function renameHandler(primary: PrimaryContext): Handler {
  return async (session) => {
    const request = session.request;
    if (request.verb !== 'RENAME' && request.verb !== 'RENAME_IF') {
      return;
    }
    const { clientId, from, to } = request;
    const source: SourceRule = request.verb === 'RENAME_IF' ? request.source : { kind: 'any' };
    const destination: DestinationRule = request.verb === 'RENAME_IF' ? request.destination : { kind: 'absent' };
    checkRenameNames(from, to);
    await primary.readiness.whenReady();
    const [first, second] = [fileKey(clientId, from), fileKey(clientId, to)].sort();
    const receipt = await primary.locks.run(first, () => primary.locks.run(second, () => renameHeld(primary, clientId, from, to, source, destination)));
    await session.reply(Reply.RENAME_SUCCESS, receipt);
  };
}

async function renameHeld(primary: PrimaryContext, clientId: string, from: string, to: string, source: SourceRule, destination: DestinationRule): Promise<RenameReceipt> {
  const live = liveOf(primary.store.state(clientId, from));
  const replaced = liveOf(primary.store.state(clientId, to));
  checkRename({ from, to, source: live?.generation, destination: replaced?.generation }, source, destination);
  const original = live!;
  // The destination's folder rules and quota, as for an upload of no new bytes.
  primary.gate.check({ clientId, name: to, size: 0 });
  await primary.store.assertCanPlace(clientId, to);
  const required = primary.replicasRequired();
  const replicas = await ReplicaChanges.open(primary, `rename ${from} to ${to}`, 'Nothing was renamed.');
  const generation = await replicas.issue();
  const releases: (() => void)[] = [];
  try {
    releases.push(primary.gate.admit({ clientId, name: from }));
    releases.push(primary.gate.admit({ clientId, name: to, size: 0, generation }));
    const mtimeMs = Date.now();
    const tombstone: VersionRecord = { clientId, name: from, generation, size: 0, sha256: '', mtimeMs, deleted: true };
    const record: VersionRecord = { clientId, name: to, generation, size: original.size, sha256: original.sha256, mtimeMs };
    await primary.commitPoint?.record([tombstone, { ...record, renamedFrom: { name: from, generation: original.generation } }]);
    let results: PromiseSettledResult<void>[] | undefined;
    try {
      // Once the record is on disk the rename is decided: the replicas apply it while
      // the primary moves its own file.
      await primary.store.commitRename(original.generation, tombstone, record, primary.keepVersions, async () => {
        results = await replicas.send((link, conn) => link.sendRename(original.generation, tombstone, record, primary.keepVersions, conn));
      });
    } catch (error) {
      if (!(error instanceof PlacementError)) {
        throw error;
      }
    }
    if (!results) {
      throw new DfsError('INTERNAL', `the primary's catalog did not take the rename of ${from} to ${to}; nothing was renamed, try again`);
    }
    const { done, failed, behind } = replicas.settle(results, [fileKey(clientId, from), fileKey(clientId, to)]);
    primary.commitPoint?.assertLeading();
    if (done < required) {
      throw new DfsError(
        'INCOMPLETE',
        `${from} is renamed to ${to} (generation ${generation}), but only ${done} of the ${required} replicas the write quorum requires confirmed it (${failed.join('; ')}); the others are caught up when they answer.`,
      );
    }
    primary.log(`RENAME ${clientId}/${from} -> ${to} generation ${generation}: ${done}/${primary.links.length} replicas`);
    return { generation, size: record.size, sha256: record.sha256, ...(replaced ? { replaced: replaced.generation } : {}), copies: 1 + done, replicasBehind: behind };
  } finally {
    releases.forEach((release) => release());
    primary.issuer.settle(generation);
    replicas.close();
  }
}
