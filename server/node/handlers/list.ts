import type { Handler } from '../../net/session';
import type { Store } from '../../storage/store';

/**
 * The report's LIST: the client's file names, one per line, then the connection
 * closes. Its clients read until the close, so the same bytes serve every client.
 */
export function listHandler(store: Store): Handler {
  return async (session) => {
    if (session.request.verb !== 'LIST') {
      return;
    }
    const { clientId } = session.request;
    const names = store.list(clientId).map((file) => file.name);
    const text = names.length > 0 ? names.join('\n') : `No files stored for client ${clientId}.`;
    await session.conn.write(text);
  };
}
