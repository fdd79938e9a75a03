import { createHash } from 'crypto';
import type { Handler } from '../net/session';
import { DfsError, Reply } from '../protocol';
import { KeyLock, fileKey } from '../storage/key-lock';
import type { Store } from '../storage/store';

/**
 * REPLICA. From the report's primary (unterminated header) it is one step: bytes in,
 * saved, REPLICA_SUCCESS. From ours it is two-phase: bytes, `CHECKSUM <sha256>` ->
 * REPLICA_PREPARED once the bytes are on stable storage, then `COMMIT` makes them
 * visible or `ABORT` (or a dropped connection) throws them away.
 */
export function replicateHandler(store: Store, locks: KeyLock, commitTimeoutMs: number): Handler {
  return async (session) => {
    if (session.request.verb !== 'REPLICA') {
      return;
    }
    const { clientId, name, size } = session.request;
    const staged = await store.stage();
    try {
      await session.reply(Reply.SEND_FILE);
      const hash = createHash('sha256');
      for await (const chunk of session.conn.readBody(size)) {
        hash.update(chunk);
        await staged.write(chunk);
      }
      const sha256 = hash.digest('hex');
      if (session.seed) {
        if (session.conn.hasUnreadBytes()) {
          throw new DfsError('EXTRA_BYTES', `more than the declared ${size} bytes arrived`);
        }
        await locks.run(fileKey(clientId, name), () => store.commit(staged, clientId, name, sha256));
        await session.reply(Reply.REPLICA_SUCCESS);
        return;
      }
      const checksumLine = await session.conn.readLine();
      const expected = /^CHECKSUM ([0-9a-f]{64})$/.exec(checksumLine)?.[1];
      if (!expected) {
        throw new DfsError('PROTOCOL', `expected CHECKSUM <sha256> after the bytes, got ${JSON.stringify(checksumLine.slice(0, 80))}`);
      }
      if (expected !== sha256) {
        throw new DfsError('CHECKSUM', `bytes received hash to ${sha256}, the primary sent ${expected}`);
      }
      await staged.seal();
      await session.reply(Reply.REPLICA_PREPARED);
      const decision = await session.conn.readLine(commitTimeoutMs);
      if (decision === 'COMMIT') {
        await locks.run(fileKey(clientId, name), () => store.commit(staged, clientId, name, sha256));
        await session.reply(Reply.REPLICA_SUCCESS);
      } else {
        await staged.abort();
        await session.reply(Reply.REPLICA_ABORTED);
      }
    } catch (error) {
      await staged.abort();
      throw error;
    }
  };
}
