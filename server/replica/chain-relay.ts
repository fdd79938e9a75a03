import { createHash } from 'crypto';
import type { Connection } from '../net/connection';
import type { Handler } from '../net/session';
import { ChainDownstream } from '../node/chain-downstream';
import { ChainHop, DfsError, Reply, ReplicaStep, formatHopFailures, formatReplicaChecksum, parseReplicaChecksum } from '../protocol';
import type { DiskStore } from '../storage/disk-store';
import type { Fence } from './fence';

/** Reaches the next replica in a chain, authenticated as the primary and naming the primary's epoch (if any). */
export type HopConnector = (hop: ChainHop, epoch: number | undefined) => Promise<Connection>;

/**
 * REPLICA_CHAIN: the two-phase REPLICA exchange of pipeline replication. This replica
 * stages the bytes as REPLICA does and forwards each chunk to the next hop as it
 * arrives; CHECKSUM, COMMIT and ABORT travel down the same way. Every reply names,
 * after its token (this replica's own outcome), the hops below that failed, so the
 * primary learns each replica's outcome. Each hop hashes what it received and checks
 * it against the primary's SHA-256 before it answers PREPARED. A failure of this
 * replica is answered as REPLICA does, and dropping the connection below makes the
 * hops after it discard their bytes: the primary counts them failed for this upload.
 */
export function chainRelayHandler(store: DiskStore, fence: Fence, commitTimeoutMs: number, connectHop: HopConnector): Handler {
  return async (session) => {
    if (session.request.verb !== 'REPLICA_CHAIN') {
      return;
    }
    const { clientId, name, size, next } = session.request;
    await fence.admit(session.epoch);
    await store.assertCanPlace(clientId, name);
    await store.assertRoomFor(size);
    const staged = await store.stage();
    const downstream = new ChainDownstream({
      hops: next,
      clientId,
      name,
      size,
      connect: (hop) => connectHop(hop, session.epoch),
      replay: staged.readBack ? (upTo) => staged.readBack!(upTo) : undefined,
    });
    const report = (): string => formatHopFailures(downstream.failures);
    try {
      await downstream.open();
      await session.reply(Reply.SEND_FILE, report());
      const hash = createHash('sha256');
      for await (const chunk of session.conn.readBody(size)) {
        hash.update(chunk);
        await Promise.all([staged.write(chunk), downstream.send(chunk)]);
      }
      const sha256 = hash.digest('hex');
      const step = parseReplicaChecksum(await session.conn.readLine());
      if (step.sha256 !== sha256) {
        throw new DfsError('CHECKSUM', `bytes received hash to ${sha256}, the primary sent ${step.sha256}`);
      }
      await both(staged.seal(), downstream.step(formatReplicaChecksum(step), Reply.REPLICA_PREPARED));
      await session.reply(Reply.REPLICA_PREPARED, report());
      const decision = await session.conn.readLine(commitTimeoutMs);
      if (decision !== ReplicaStep.COMMIT) {
        await Promise.all([staged.abort(), downstream.abort(true)]);
        await session.reply(Reply.REPLICA_ABORTED, report());
        return;
      }
      await both(
        fence.under(session.epoch, () => store.commitVersion(staged, { clientId, name, generation: step.generation, size, sha256, mtimeMs: step.mtimeMs }, step.keep)),
        downstream.step(ReplicaStep.COMMIT, Reply.REPLICA_SUCCESS, commitTimeoutMs),
      );
      await session.reply(Reply.REPLICA_SUCCESS, report());
    } finally {
      downstream.close();
      await staged.abort();
    }
  };
}

/** This node's own part and the forwarding run together; the hops below are answered for before this node's failure is. */
async function both(own: Promise<unknown>, forwarded: Promise<void>): Promise<void> {
  const [ownResult] = await Promise.allSettled([own, forwarded]);
  if (ownResult.status === 'rejected') {
    throw ownResult.reason;
  }
}
