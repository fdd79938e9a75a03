import { createHash } from 'crypto';
import type { Handler } from '../net/session';
import { DfsError, Reply, ReplicaStep, VersionRecord, parseReplicaChecksum } from '../protocol';
import type { DiskStore } from '../storage/disk-store';
import type { Fence } from './fence';

/**
 * REPLICA. From the report's primary (unterminated header) it is one step: bytes in,
 * stored, REPLICA_SUCCESS; such a primary knows no generations, so the replica gives
 * the version the next one of its own. From ours it is two-phase: bytes, then
 * `CHECKSUM <sha256> <generation> <time> <keep>` -> REPLICA_PREPARED once the bytes
 * are checked and (above the inline size) on stable storage (nothing visible yet), then `COMMIT`, sent only after the
 * primary's catalog holds the version, records and places it, or `ABORT` (or a
 * dropped connection) throws the bytes away.
 */
export function replicateHandler(store: DiskStore, fence: Fence, commitTimeoutMs: number): Handler {
  return async (session) => {
    if (session.request.verb !== 'REPLICA') {
      return;
    }
    const { clientId, name, size } = session.request;
    // A deposed primary is refused before it sends a byte, and again at the commit:
    // it may have been deposed while the bytes streamed.
    await fence.admit(session.epoch);
    // Refused before any byte is sent: a link where the file would go is never followed.
    await store.assertCanPlace(clientId, name);
    await store.assertRoomFor(size);
    const staged = await store.stage(size);
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
        await fence.under(undefined, () =>
          store.commitVersion(staged, { clientId, name, generation: store.marks.highest + 1, size, sha256, mtimeMs: Date.now() } satisfies VersionRecord, 0),
        );
        await session.reply(Reply.REPLICA_SUCCESS);
        return;
      }
      const step = parseReplicaChecksum(await session.conn.readLine());
      if (step.sha256 !== sha256) {
        throw new DfsError('CHECKSUM', `bytes received hash to ${sha256}, the primary sent ${step.sha256}`);
      }
      // A small file's bytes are made durable by the commit record that carries them
      // (one journal sync shared with every concurrent commit): nothing a crash before
      // that record could lose is ever used, as staged bytes never outlive a restart.
      // Its own sync starts now, alongside the primary's commit; the rename into place waits for it.
      const sealing = staged.seal();
      if (staged.inline) {
        sealing.catch(() => undefined);
      } else {
        await sealing;
      }
      await session.reply(Reply.REPLICA_PREPARED);
      // The primary sends COMMIT after its own catalog record, which may wait on an
      // earlier write of the same name: allow well past the idle timeout for it.
      const decision = await session.conn.readLine(commitTimeoutMs);
      if (decision !== ReplicaStep.COMMIT) {
        await staged.abort();
        await session.reply(Reply.REPLICA_ABORTED);
        return;
      }
      await fence.under(session.epoch, () => store.commitVersion(staged, { clientId, name, generation: step.generation, size, sha256, mtimeMs: step.mtimeMs }, step.keep));
      await session.reply(Reply.REPLICA_SUCCESS);
    } finally {
      await staged.abort();
    }
  };
}
