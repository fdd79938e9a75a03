import type { Handler } from '../net/session';
import { Reply } from '../protocol';
import type { Store } from '../storage/store';

/** DROP_VERSION: the primary found a version this replica keeps dead (pushed out of the history, or superseded). */
export function dropVersionHandler(store: Store): Handler {
  return async (session) => {
    if (session.request.verb !== 'DROP_VERSION') {
      return;
    }
    const { clientId, name, generation } = session.request;
    await store.dropVersion(clientId, name, generation);
    await session.reply(Reply.REPLICA_SUCCESS);
  };
}
