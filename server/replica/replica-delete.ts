import type { Handler } from '../net/session';
import { Reply } from '../protocol';
import { KeyLock, fileKey } from '../storage/key-lock';
import type { Store } from '../storage/store';

/** REPLICA_DELETE: removing a file that is already gone still succeeds, so retries are safe. */
export function replicaDeleteHandler(store: Store, locks: KeyLock): Handler {
  return async (session) => {
    if (session.request.verb !== 'REPLICA_DELETE') {
      return;
    }
    const { clientId, name } = session.request;
    await locks.run(fileKey(clientId, name), () => store.remove(clientId, name));
    await session.reply(Reply.REPLICA_SUCCESS);
  };
}
