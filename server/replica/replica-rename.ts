import type { Handler } from '../net/session';
import { Reply } from '../protocol';
import type { Store } from '../storage/store';

/**
 * REPLICA_RENAME: applies the primary's rename in one catalog record, with the bytes
 * of the source version it names (which this replica must hold intact: otherwise it
 * refuses, nothing changes, and catch-up brings both names to the primary's state).
 * A rename already applied succeeds, so retries are safe.
 */
export function replicaRenameHandler(store: Store): Handler {
  return async (session) => {
    if (session.request.verb !== 'REPLICA_RENAME') {
      return;
    }
    const { clientId, from, to, sourceGeneration, generation, mtimeMs, keep } = session.request;
    const source = store.state(clientId, from)?.versions.find((version) => version.generation === sourceGeneration);
    const tombstone = { clientId, name: from, generation, size: 0, sha256: '', mtimeMs, deleted: true as const };
    const record = { clientId, name: to, generation, size: source?.size ?? 0, sha256: source?.sha256 ?? '', mtimeMs };
    await store.commitRename(sourceGeneration, tombstone, record, keep);
    await session.reply(Reply.REPLICA_SUCCESS);
  };
}
