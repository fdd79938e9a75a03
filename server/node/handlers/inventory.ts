import type { Handler } from '../../net/session';
import { Reply, encodeRecords } from '../../protocol';
import type { Store } from '../../storage/store';

/** INVENTORY: every file of every client with its checksum, for the primary's catch-up. */
export function inventoryHandler(store: Store): Handler {
  return async (session) => {
    await session.conn.write(Reply.OK + '\n' + encodeRecords(store.all()));
  };
}
