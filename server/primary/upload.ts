import type { Handler } from '../net/session';
import { DfsError, Reply } from '../protocol';
import { liveOf } from '../storage/name-state';
import type { PrimaryContext } from './primary-context';
import { replicatedPut } from './replicated-write';

/** UPLOAD (the report's) and UPLOAD_IF (ours: with a precondition on the current generation). */
export function uploadHandler(primary: PrimaryContext): Handler {
  return async (session) => {
    const request = session.request;
    if (request.verb !== 'UPLOAD' && request.verb !== 'UPLOAD_IF') {
      return;
    }
    const receipt = await replicatedPut(primary, {
      clientId: request.clientId,
      name: request.name,
      size: request.size,
      precondition: request.verb === 'UPLOAD_IF' ? request.precondition : undefined,
      source: {
        // Our clients learn the generation the upload replaces: should the answer be
        // lost, only a version newer than it can be theirs.
        // With etcd, also the leadership's epoch: once another leads, this upload can no longer commit.
        begin: () =>
          session.reply(Reply.SEND_FILE, {
            replaces: liveOf(primary.store.state(request.clientId, request.name))?.generation ?? null,
            ...(primary.epoch !== undefined ? { epoch: primary.epoch } : {}),
          }),
        chunks: () => session.conn.readBody(request.size),
        finish: () => {
          if (session.conn.hasUnreadBytes()) {
            throw new DfsError('EXTRA_BYTES', `more than the declared ${request.size} bytes arrived`);
          }
        },
      },
    });
    await session.reply(Reply.UPLOAD_SUCCESS, receipt);
  };
}
