import type { Handler } from '../net/session';
import { Reply } from '../protocol';
import type { PrimaryContext } from './primary-context';

/**
 * REVOKE (from a member: `dfs key revoke`): the key id is recorded as refused, on the
 * primary at once and on every replica it can reach now; catch-up tells the others as
 * they answer, and learns any the primary lacks from them (a new primary disk forgets
 * none).
 */
export function revokeHandler(primary: PrimaryContext): Handler {
  return async (session) => {
    if (session.request.verb !== 'REVOKE') {
      return;
    }
    const { keyId } = session.request;
    await primary.store.revoke([keyId]);
    const told = await Promise.allSettled(primary.links.map((link) => link.revoke(keyId)));
    const reached = told.filter((result) => result.status === 'fulfilled').length;
    primary.log(`REVOKE key ${keyId}: refused by the primary and ${reached} of ${primary.links.length} replicas now; catch-up tells the others`);
    await session.reply(Reply.OK, { keyId, replicas: reached, of: primary.links.length });
  };
}
