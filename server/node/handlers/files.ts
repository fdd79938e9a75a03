import type { Handler } from '../../net/session';
import { FileRecord, encodeListing } from '../../protocol';
import type { Store } from '../../storage/store';

/** FILES: one JSON record per file (name, size, stored time, checksum, generation, copies), then END. */
export function filesHandler(store: Store, copiesOf: (file: FileRecord) => number | undefined = () => undefined, ready: () => Promise<void> = async () => undefined): Handler {
  return async (session) => {
    if (session.request.verb !== 'FILES') {
      return;
    }
    await ready();
    const records = store.list(session.request.clientId).map((file) => {
      const copies = copiesOf(file);
      return copies === undefined ? file : { ...file, copies };
    });
    await session.conn.write(encodeListing(records));
  };
}
