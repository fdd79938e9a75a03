import type { Connection } from '../net/connection';
import type { Handler } from '../net/session';
import { DeleteReceipt, DfsError, Reply, VersionRecord, preconditionFailed } from '../protocol';
import { PlacementError } from '../storage/disk-store';
import { fileKey } from '../storage/key-lock';
import { liveOf } from '../storage/name-state';
import type { PrimaryContext } from './primary-context';

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
      const opened = await Promise.allSettled(primary.links.map((link) => link.openChange()));
      const connections = new Map<number, Connection>();
      const unreachable: string[] = [];
      opened.forEach((result, index) => {
        if (result.status === 'fulfilled') {
          connections.set(index, result.value);
        } else {
          unreachable.push(`${primary.links[index].label}: ${(result.reason as Error).message}`);
        }
      });
      const closeAll = (): void => connections.forEach((conn) => conn.destroy());
      if (connections.size < required) {
        closeAll();
        throw new DfsError(
          'QUORUM',
          `cannot delete ${name}: ${connections.size} of ${primary.links.length} replicas reachable, ${required} required (${unreachable.join('; ')}). Nothing was deleted. Start the missing replicas or lower the write quorum.`,
        );
      }
      let generation: number;
      try {
        generation = await primary.issuer.issue();
      } catch (error) {
        closeAll();
        throw error;
      }
      let release: (() => void) | undefined;
      try {
        release = primary.gate.admit({ clientId, name });
        const tombstone: VersionRecord = { clientId, name, generation, size: 0, sha256: '', mtimeMs: Date.now(), deleted: true };
        let results: PromiseSettledResult<void>[] | undefined;
        await primary.commitPoint?.record(tombstone);
        try {
          // Once the tombstone is on disk the delete is decided: the replicas are told
          // while the primary removes its own copy.
          await primary.store.commitTombstone(tombstone, async () => {
            results = await Promise.allSettled(
              primary.links.map((link, index) => (connections.has(index) ? link.sendTombstone(tombstone, connections.get(index)) : Promise.reject(new Error('unreachable')))),
            );
          });
        } catch (error) {
          if (!(error instanceof PlacementError)) {
            throw error;
          }
        }
        if (!results) {
          throw new DfsError('INTERNAL', `the primary's catalog did not take the delete of ${name}; nothing was deleted, try again`);
        }
        const settled = results;
        const failed: string[] = [];
        settled.forEach((result, index) => {
          const link = primary.links[index];
          if (result.status === 'fulfilled') {
            link.caughtUp(key);
          } else {
            link.markBehind(key);
            failed.push(`${link.label}: ${(result.reason as Error).message}`);
          }
        });
        const done = settled.filter((result) => result.status === 'fulfilled').length;
        primary.afterWrite(done < primary.links.length);
        primary.commitPoint?.assertLeading();
        if (done < required) {
          throw new DfsError(
            'INCOMPLETE',
            `${name} is deleted (generation ${generation}), but only ${done} of the ${required} replicas the write quorum requires confirmed it (${failed.join('; ')}); the others are caught up when they answer.`,
          );
        }
        primary.log(`DELETE ${clientId}/${name} generation ${generation}: ${done}/${primary.links.length} replicas`);
        return { generation, copies: 1 + done, replicasBehind: primary.links.filter((_, index) => settled[index].status === 'rejected').map((link) => link.address.id) };
      } finally {
        release?.();
        primary.issuer.settle(generation);
        closeAll();
      }
    });
    await session.reply(Reply.DELETE_SUCCESS, receipt);
  };
}
