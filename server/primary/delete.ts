import type { Handler } from '../net/session';
import { DfsError, Reply } from '../protocol';
import { fileKey } from '../storage/key-lock';
import type { PrimaryContext } from './primary-context';

/**
 * DELETE. The primary's removal is the commit point; replicas follow in parallel and
 * any that miss it are recorded as behind, so catch-up removes their copy later and a
 * stale replica can never bring the file back.
 */
export function deleteHandler(primary: PrimaryContext): Handler {
  return async (session) => {
    if (session.request.verb !== 'DELETE') {
      return;
    }
    const { clientId, name } = session.request;
    if (!primary.store.get(clientId, name)) {
      throw new DfsError('NOT_FOUND', `${name} is not stored for client ${clientId}`);
    }
    const required = primary.replicasRequired();
    await primary.locks.run(fileKey(clientId, name), async () => {
      await primary.store.remove(clientId, name);
      primary.removedKeys.add(fileKey(clientId, name));
      const results = await Promise.allSettled(primary.links.map((link) => link.deleteFile(clientId, name)));
      results.forEach((result, index) => {
        const link = primary.links[index];
        if (result.status === 'fulfilled') {
          link.caughtUp(clientId, name);
        } else {
          link.markBehind(clientId, name);
        }
      });
      const done = results.filter((result) => result.status === 'fulfilled').length;
      primary.log(`DELETE ${clientId}/${name}: removed, ${done}/${primary.links.length} replicas`);
      primary.afterWrite(done < primary.links.length);
      if (done < required) {
        primary.log(`DELETE ${clientId}/${name}: only ${done} replicas confirmed; the others will be caught up`);
      }
    });
    await session.reply(Reply.DELETE_SUCCESS);
  };
}
