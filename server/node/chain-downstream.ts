import type { Connection } from '../net/connection';
import { refuseIfChallenged } from '../net/handshake';
import {
  ChainHop,
  DfsError,
  HopFailures,
  Reply,
  ReplicaStep,
  formatRequest,
  isFailureToken,
  parseHopFailures,
  parseReply,
  replyError,
  toDfsError,
} from '../protocol';

/** How long a hop that broke off a transfer gets to say why, when it has not yet. */
const REASON_GRACE_MS = 500;

export interface ChainDownstreamOptions {
  /** The replicas after this node, in chain order. */
  hops: readonly ChainHop[];
  clientId: string;
  name: string;
  size: number;
  /** An authenticated connection to a hop, speaking for the primary (its role and its epoch). */
  connect(hop: ChainHop): Promise<Connection>;
  /** The first `upTo` bytes already sent down, for a hop that joins mid-transfer; without it a failed hop cuts off the rest. */
  replay?: (upTo: number) => AsyncIterable<Buffer>;
  /** Called once for each hop that fails or is cut out. */
  onFailure?: (hop: ChainHop, error: DfsError) => void;
}

/**
 * One node's view of the rest of a replication chain: the primary's, or a replica's
 * that forwards. It holds one connection, to the next hop that took the upload, and
 * knows which hops below failed (by replica id, with why). It never throws: a hop
 * that fails is recorded and the node carries on with the hops it can still reach.
 *
 * Recovery (pipeline recovery as in HDFS, simplified): a hop that refuses at the
 * start is skipped and the next one tried. A hop that fails mid-body is cut out and
 * the chain is rebuilt from the next live hop, which first gets the bytes already
 * sent, replayed from this node's staged copy. A hop that fails at the checksum or
 * the commit takes the hops below it with it for this upload: they are reported
 * failed, and catch-up brings them in step once the write is decided.
 */
export class ChainDownstream {
  readonly failures: HopFailures = new Map();
  private conn: Connection | undefined;
  /** The live hops the connection reaches, the next one first. */
  private reached: ChainHop[] = [];
  private sent = 0;

  constructor(private readonly options: ChainDownstreamOptions) {}

  /** The hops below that are still in the chain. */
  get live(): ChainHop[] {
    return this.options.hops.filter((hop) => !this.failures.has(hop.id));
  }

  /** Opens the chain from the first live hop that takes the upload; a hop that refuses is cut out and the next one tried. */
  async open(): Promise<void> {
    let remaining = this.live;
    while (remaining.length > 0) {
      const [next, ...rest] = remaining;
      let conn: Connection | undefined;
      try {
        conn = await this.options.connect(next);
        await conn.writeLine(formatRequest({ verb: 'REPLICA_CHAIN', clientId: this.options.clientId, next: rest, name: this.options.name, size: this.options.size }));
        const reply = parseReply(refuseIfChallenged(await conn.readLine()));
        if (reply.token !== Reply.SEND_FILE) {
          throw replyError(reply);
        }
        this.conn = conn;
        this.reached = remaining;
        this.merge(parseHopFailures(reply.payload));
        return;
      } catch (error) {
        conn?.destroy();
        this.fail(next, error);
        remaining = rest;
      }
    }
  }

  /** Forwards one chunk; resolves once the next hop took it (backpressure runs end to end). */
  async send(chunk: Buffer): Promise<void> {
    const offset = this.sent;
    this.sent += chunk.length;
    while (this.conn) {
      const conn = this.conn;
      try {
        if (conn.hasUnreadBytes()) {
          // A hop speaks in the middle of a body only to refuse it.
          throw new DfsError('REPLICA_FAILED', 'the replica answered before the end of the file');
        }
        await conn.write(chunk);
        return;
      } catch (error) {
        const reason = await theHopsReason(conn, error);
        if (!this.options.replay) {
          this.cutAll(reason);
          return;
        }
        this.cutNext(reason);
        await this.rejoin(offset);
        // The rebuilt chain (if any hop is left) now takes this chunk.
      }
    }
  }

  /** A step after the body (CHECKSUM, COMMIT): the next hop answers for itself and for the hops below it. */
  async step(line: string, expected: string, timeoutMs?: number): Promise<void> {
    const conn = this.conn;
    if (!conn) {
      return;
    }
    try {
      await conn.writeLine(line);
      const reply = parseReply(await conn.readLine(timeoutMs));
      if (reply.token !== expected) {
        throw replyError(reply);
      }
      this.merge(parseHopFailures(reply.payload));
    } catch (error) {
      this.cutAll(error);
    }
  }

  /** Makes every live hop drop its staged bytes, and waits (briefly) until the next one answered. */
  async abort(prepared: boolean): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    if (!conn) {
      return;
    }
    try {
      if (prepared) {
        await conn.writeLine(ReplicaStep.ABORT);
        await conn.readLine(2_000);
      } else {
        // Mid-body an ABORT line would read as file bytes; a half-close makes the body short instead.
        await conn.endAndWaitForClose(2_000);
      }
    } catch {
      // Every hop also discards its staged bytes on its own when its connection drops.
    }
    conn.destroy();
  }

  /** After the last step: the connection is no longer needed. */
  close(): void {
    this.conn?.destroy();
    this.conn = undefined;
  }

  /** Rebuilds the chain from the hops still live and replays the first `upTo` bytes to it. */
  private async rejoin(upTo: number): Promise<void> {
    // Each round cuts out a hop or ends: the chain is short.
    for (;;) {
      await this.open();
      const conn = this.conn;
      if (!conn || (await this.replayTo(conn, upTo))) {
        return;
      }
    }
  }

  /** False when the hop failed while taking the replay (it is cut out); true otherwise. */
  private async replayTo(conn: Connection, upTo: number): Promise<boolean> {
    if (upTo === 0) {
      return true;
    }
    const source = this.options.replay!(upTo)[Symbol.asyncIterator]();
    for (;;) {
      let read: IteratorResult<Buffer>;
      try {
        read = await source.next();
      } catch (error) {
        // Our own staged copy cannot be read: no hop below can be fed.
        this.cutAll(new DfsError('REPLICA_FAILED', `could not replay the bytes already sent: ${toDfsError(error).message}`));
        return true;
      }
      if (read.done) {
        return true;
      }
      try {
        await conn.write(read.value);
      } catch (error) {
        this.cutNext(await theHopsReason(conn, error));
        return false;
      }
    }
  }

  private merge(failures: HopFailures): void {
    for (const [id, error] of failures) {
      const hop = this.options.hops.find((candidate) => candidate.id === id);
      if (hop) {
        this.fail(hop, error);
      }
    }
  }

  /** The next hop failed: its connection is dropped, so the hops it fed lost this upload too. */
  private cutNext(error: unknown): void {
    this.conn?.destroy();
    this.conn = undefined;
    const [next] = this.reached.filter((hop) => !this.failures.has(hop.id));
    if (next) {
      this.fail(next, error);
    }
    this.reached = [];
  }

  /** The next hop failed and no other is tried: every live hop below is cut out of this upload. */
  private cutAll(error: unknown): void {
    const reached = this.reached.filter((hop) => !this.failures.has(hop.id));
    this.cutNext(error);
    for (const hop of reached.slice(1)) {
      this.fail(hop, new DfsError('REPLICA_FAILED', `cut out of the chain: replica ${reached[0].id} before it failed (${toDfsError(error).message})`));
    }
  }

  private fail(hop: ChainHop, error: unknown): void {
    if (this.failures.has(hop.id)) {
      return;
    }
    const failure = toDfsError(error, 'REPLICA_FAILED');
    this.failures.set(hop.id, failure);
    this.options.onFailure?.(hop, failure);
  }
}

/**
 * A hop that fails mid-body (its disk filled) answers with its reason and closes, so
 * our next write finds the connection closed: the reason it sent, if any, is the news.
 */
async function theHopsReason(conn: Connection, error: unknown): Promise<unknown> {
  try {
    const reply = parseReply(await conn.readLine(REASON_GRACE_MS));
    return isFailureToken(reply.token) ? replyError(reply) : error;
  } catch {
    return error;
  }
}
