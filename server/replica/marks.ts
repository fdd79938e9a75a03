import type { Handler } from '../net/session';
import { DfsError, Reply } from '../protocol';
import type { Store } from '../storage/store';

/** RESERVE: the primary is about to issue generations up to this one; a later primary must start above it. */
export function reserveHandler(store: Store): Handler {
  return async (session) => {
    if (session.request.verb !== 'RESERVE') {
      return;
    }
    await store.raiseMarks({ reserved: session.request.generation });
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
    if (session.request.session !== store.session) {
      // The primary compared an inventory of an earlier start: what this node holds now
      // (an old copy of its folder put back, say) was never compared.
      throw new DfsError('CONFLICT', 'this replica restarted since the inventory that was compared; nothing was certified');
    }
    await store.raiseMarks({ synced: session.request.generation });
    const synced = store.marks.synced;
    // Each drop names the tombstone that was listed: one a newer delete replaced meanwhile stays.
    for (const { clientId, name, generation } of store.tombstonesThrough(synced)) {
      await store.dropVersion(clientId, name, generation, true);
    }
    await session.reply(Reply.OK);
  };
}

/** REVOKE (from the primary): the key id is refused from now on, on this node too. */
export function revokeHandler(store: Store): Handler {
  return async (session) => {
    if (session.request.verb !== 'REVOKE') {
      return;
    }
    await store.revoke([session.request.keyId]);
    await session.reply(Reply.OK);
  };
}
