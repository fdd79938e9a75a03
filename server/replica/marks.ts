import type { Handler } from '../net/session';
import { Reply } from '../protocol';
import type { Store } from '../storage/store';

/** RESERVE: the primary is about to issue generations up to this one; a later primary must start above it. */
export function reserveHandler(store: Store): Handler {
  return async (session) => {
    if (session.request.verb !== 'RESERVE') {
      return;
    }
    if (session.request.generation > store.marks.reserved) {
      await store.setMarks({ reserved: session.request.generation });
    }
    await session.reply(Reply.OK);
  };
}

/**
 * SYNCED: the primary certifies this replica complete through a generation. Once it
 * is, a tombstone at or below it says nothing its absence would not (a version at or
 * below it that the replica lacks is dead), so such tombstones go.
 */
export function syncedHandler(store: Store): Handler {
  return async (session) => {
    if (session.request.verb !== 'SYNCED') {
      return;
    }
    const synced = Math.max(store.marks.synced, session.request.generation);
    if (synced !== store.marks.synced) {
      await store.setMarks({ synced });
    }
    for (const { clientId, name } of store.tombstonesThrough(synced)) {
      await store.dropVersion(clientId, name, store.state(clientId, name)!.tombstone!.generation, true);
    }
    await session.reply(Reply.OK);
  };
}
