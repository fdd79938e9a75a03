import type { Handler } from '../net/session';
import { Reply } from '../protocol';
import type { Store } from '../storage/store';

/** REPLICA_DELETE: records the primary's tombstone; one already applied (or older than what is held) still succeeds, so retries are safe. */
export function replicaDeleteHandler(store: Store): Handler {
  return async (session) => {
    if (session.request.verb !== 'REPLICA_DELETE') {
      return;
    }
    const { clientId, name, generation, mtimeMs } = session.request;
    await store.commitTombstone({ clientId, name, generation, size: 0, sha256: '', mtimeMs, deleted: true });
    await session.reply(Reply.REPLICA_SUCCESS);
  };
}
