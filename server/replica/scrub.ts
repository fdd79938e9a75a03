import type { Handler } from '../net/session';
import { FileRecord, Reply, encodeRecords } from '../protocol';
import { KeyLock, fileKey } from '../storage/key-lock';
import type { Store } from '../storage/store';

/**
 * SCRUB on a replica: hashes every copy again and drops each one that no longer
 * matches its checksum, so the primary's catch-up sees it missing and sends it anew.
 * Replies with the dropped records.
 */
export function replicaScrubHandler(store: Store, locks: KeyLock): Handler {
  return async (session) => {
    const corrupted: FileRecord[] = [];
    for (const record of store.all()) {
      await locks.run(fileKey(record.clientId, record.name), async () => {
        if (store.get(record.clientId, record.name)?.sha256 !== record.sha256) {
          return;
        }
        // A copy that cannot be read now is left alone: the next scrub looks again.
        const intact = await store.verify(record.clientId, record.name).catch(() => true);
        if (!intact) {
          await store.remove(record.clientId, record.name);
          corrupted.push(record);
        }
      });
    }
    await session.conn.write(Reply.OK + '\n' + encodeRecords(corrupted));
  };
}
