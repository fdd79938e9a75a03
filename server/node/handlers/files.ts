import type { Handler } from '../../net/session';
import { FileRecord, Reply, encodeRecords } from '../../protocol';
import type { Store } from '../../storage/store';

/** FILES: one JSON record per file (name, size, stored time, checksum, copies), then close. */
export function filesHandler(store: Store, copiesOf: (file: FileRecord) => number | undefined = () => undefined): Handler {
  return async (session) => {
    if (session.request.verb !== 'FILES') {
      return;
    }
    const records = store.list(session.request.clientId).map((file) => {
      const copies = copiesOf(file);
      return copies === undefined ? file : { ...file, copies };
    });
    await session.conn.write(Reply.OK + '\n' + encodeRecords(records));
  };
}
