import type { Handler } from '../../net/session';
import type { Store } from '../../storage/store';

/**
 * The report's LIST: the client's file names, one per line, then the connection
 * closes. Its clients read until the close, so the same bytes serve every client.
 * `ready` holds the request until the node may answer (a recovering primary).
 */
export function listHandler(store: Store, ready: () => Promise<void> = async () => undefined): Handler {
  return async (session) => {
    if (session.request.verb !== 'LIST') {
      return;
    }
    await ready();
    const { clientId } = session.request;
    const names = store.list(clientId).map((file) => file.name);
    const text = names.length > 0 ? names.join('\n') : `No files stored for client ${clientId}.`;
    await session.conn.write(text);
  };
}
