import type { Handler } from '../../net/session';
import { encodeListing } from '../../protocol';
import type { Store } from '../../storage/store';

/** INVENTORY: what the node's catalog says of itself, then every version and tombstone it holds, for the primary's catch-up. */
export function inventoryHandler(store: Store): Handler {
  return async (session) => {
    const { header, records } = store.inventory();
    await session.conn.write(encodeListing(records, header));
  };
}
