import type { Handler } from '../net/session';
import { InventoryRecord, encodeListing } from '../protocol';
import type { Store } from '../storage/store';

/**
 * SCRUB on a replica: hashes every kept version again and marks each one that no
 * longer matches its checksum as damaged (its record stays: the version is still
 * this node's, only its bytes need replacing), so the primary's catch-up sends it
 * anew. Replies with the damaged versions.
 */
export function replicaScrubHandler(store: Store): Handler {
  return async (session) => {
    const corrupted: InventoryRecord[] = [];
    for (const record of store.inventory().records) {
      if (record.deleted || record.damaged) {
        continue;
      }
      // A copy that cannot be read now is left alone: the next scrub looks again.
      const intact = await store.verify(record.clientId, record.name, record.generation).catch(() => true);
      if (!intact) {
        corrupted.push({ ...record, damaged: true });
      }
    }
    await session.conn.write(encodeListing(corrupted));
  };
}
