import type { Handler } from '../../net/session';
import { Reply, encodeRecords } from '../../protocol';
import type { Store } from '../../storage/store';

/** CLIENTS: one JSON record per client that has files, then close. */
export function clientsHandler(store: Store): Handler {
  return async (session) => {
    await session.conn.write(Reply.OK + '\n' + encodeRecords(store.clients()));
  };
}
