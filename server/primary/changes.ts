import type { Handler } from '../net/session';
import { ChangeRecord, Changes, encodeListing } from '../protocol';
import { NameState, currentOf } from '../storage/name-state';

export interface ChangeFeedSource {
  /** Every name of a client the catalog holds, deleted ones (tombstones) included. */
  names(clientId: string): Iterable<[string, NameState]>;
  /** Every generation at or below this is settled (GenerationIssuer.settledThrough). */
  settledThrough(): number;
  /**
   * The primary knows every delete above this generation: tombstones at or below it
   * may have been dropped (after every copy applied them), or were never seen by this
   * primary (it started, or took over, above it).
   */
  deletesKnownAbove(): number;
}

/**
 * The names whose current state has a generation above `since`, oldest first. Cheap
 * for a watcher that asks every second: one pass over the client's names in memory,
 * and an answer the size of what changed.
 */
export function changesSince(source: ChangeFeedSource, clientId: string, since: number): Changes {
  const through = source.settledThrough();
  const records: ChangeRecord[] = [];
  for (const [, state] of source.names(clientId)) {
    const current = currentOf(state);
    if (current && current.generation > since) {
      records.push(current);
    }
  }
  records.sort((a, b) => a.generation - b.generation);
  return { header: { through, complete: since >= source.deletesKnownAbove() && since <= through }, records };
}

/** CHANGES <client_id> <generation>: see PROTOCOL.md. Held while the primary recovers, as FILES is. */
export function changesHandler(source: ChangeFeedSource, ready: () => Promise<void>): Handler {
  return async (session) => {
    if (session.request.verb !== 'CHANGES') {
      return;
    }
    await ready();
    const { header, records } = changesSince(source, session.request.clientId, session.request.generation);
    await session.conn.write(encodeListing(records, header));
  };
}
