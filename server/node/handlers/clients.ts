import type { Handler } from '../../net/session';
import { encodeListing } from '../../protocol';
import type { Store } from '../../storage/store';

/** CLIENTS: one JSON record per client that has files, then END. */
export function clientsHandler(store: Store, ready: () => Promise<void> = async () => undefined): Handler {
  return async (session) => {
    await ready();
    await session.conn.write(encodeListing(store.clients()));
  };
}
