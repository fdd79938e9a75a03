import type { Handler } from '../../net/session';
import { encodeListing } from '../../protocol';
import type { Store } from '../../storage/store';

/** CLIENTS: one JSON record per client that has files, then END; a client key sees only its own. */
export function clientsHandler(store: Store, ready: () => Promise<void> = async () => undefined): Handler {
  return async (session) => {
    await ready();
    const principal = session.principal;
    const clients = store.clients();
    await session.conn.write(encodeListing(principal.kind === 'client' ? clients.filter((client) => client.clientId === principal.clientId) : clients));
  };
}
