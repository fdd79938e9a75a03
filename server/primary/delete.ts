import type { Handler } from '../net/session';
import { DeleteReceipt, DfsError, Reply, VersionRecord, preconditionFailed } from '../protocol';
import { PlacementError } from '../storage/disk-store';
import { fileKey } from '../storage/key-lock';
import { liveOf } from '../storage/name-state';
import type { PrimaryContext } from './primary-context';
import { ReplicaChanges } from './replica-changes';

/**
 * DELETE and DELETE_IF. Holding the name, the primary opens a connection to every
 * replica (fewer reachable than the write quorum: refused, nothing changed), gives
 * the delete a generation and records the tombstone in its catalog (the commit
 * point); then the replicas record it. A replica that misses it is caught up, and the
 * tombstone stays until every replica has applied it, so no copy brings the file back.
 */
export function deleteHandler(primary: PrimaryContext): Handler {
  return async (session) => {
    const request = session.request;
    if (request.verb !== 'DELETE' && request.verb !== 'DELETE_IF') {
      return;
    }
    const { clientId, name } = request;
    await primary.readiness.whenReady();
    const key = fileKey(clientId, name);
    const receipt = await primary.locks.run(key, async (): Promise<DeleteReceipt> => {
      const live = liveOf(primary.store.state(clientId, name));
      if (request.verb === 'DELETE_IF' && live?.generation !== request.generation) {
        throw preconditionFailed(name, { kind: 'generation', generation: request.generation }, live?.generation);
      }
      if (!live) {
        throw new DfsError('NOT_FOUND', `${name} is not stored for client ${clientId}`);
      }
      const required = primary.replicasRequired();
      const replicas = await ReplicaChanges.open(primary, `delete ${name}`, 'Nothing was deleted.');
      const generation = await replicas.issue();
      let release: (() => void) | undefined;
      try {
        release = primary.gate.admit({ clientId, name });
        const tombstone: VersionRecord = { clientId, name, generation, size: 0, sha256: '', mtimeMs: Date.now(), deleted: true };
        let results: PromiseSettledResult<void>[] | undefined;
        await primary.commitPoint?.record([tombstone]);
        try {
          // Once the tombstone is on disk the delete is decided: the replicas are told
          // while the primary removes its own copy.
          await primary.store.commitTombstone(tombstone, async () => {
            results = await replicas.send((link, conn) => link.sendTombstone(tombstone, conn));
          });
        } catch (error) {
          if (!(error instanceof PlacementError)) {
            throw error;
          }
        }
        if (!results) {
          throw new DfsError('INTERNAL', `the primary's catalog did not take the delete of ${name}; nothing was deleted, try again`);
        }
        const { done, failed, behind } = replicas.settle(results, [key]);
        primary.commitPoint?.assertLeading();
        if (done < required) {
          throw new DfsError(
            'INCOMPLETE',
            `${name} is deleted (generation ${generation}), but only ${done} of the ${required} replicas the write quorum requires confirmed it (${failed.join('; ')}); the others are caught up when they answer.`,
          );
        }
        primary.log(`DELETE ${clientId}/${name} generation ${generation}: ${done}/${primary.links.length} replicas`);
        return { generation, copies: 1 + done, replicasBehind: behind };
      } finally {
        release?.();
        primary.issuer.settle(generation);
        replicas.close();
      }
    });
    await session.reply(Reply.DELETE_SUCCESS, receipt);
  };
}
