import type { Handler } from '../../net/session';
import { DfsError, encodeListing } from '../../protocol';
import type { Store } from '../../storage/store';

/** VERSIONS: the kept versions of one file, newest (the current one) first, then END. */
export function versionsHandler(store: Store, ready: () => Promise<void> = async () => undefined): Handler {
  return async (session) => {
    if (session.request.verb !== 'VERSIONS') {
      return;
    }
    await ready();
    const { clientId, name } = session.request;
    const versions = store.versions(clientId, name);
    if (versions.length === 0) {
      throw new DfsError('NOT_FOUND', `${name} is not stored for client ${clientId}`);
    }
    await session.conn.write(encodeListing(versions));
  };
}
