import { ReplicaAddress } from '../config/cluster-layout';
import { Connection, ConnectionTimeouts } from '../net/connection';
import { refuseIfChallenged } from '../net/handshake';
import type { Security } from '../net/security';
import { MuxDialer } from '../net/mux-dialer';
import type { RetryPolicy } from '../net/tcp';
import {
  DfsError,
  InventoryHeader,
  InventoryRecord,
  Reply,
  ReplicaChecksum,
  ReplicaStep,
  Request,
  VersionRecord,
  decodeListing,
  formatReplicaChecksum,
  formatFence,
  formatRequest,
  isFailureToken,
  parseFileHeader,
  parseReply,
  replyError,
  toDfsError,
} from '../protocol';

export interface LinkOptions {
  timeouts: ConnectionTimeouts;
  retry: RetryPolicy;
  connectTimeoutMs: number;
  security?: Security;
  /** This primary's leadership epoch when it was elected through etcd: named on every connection (FENCE). */
  epoch?: () => number | undefined;
}

export interface ReplicaInventory {
  header: InventoryHeader;
  records: InventoryRecord[];
}

/** The primary's view of one replica: how to reach it, what it last said, what it lacks. */
export class ReplicaLink {
  reachable: boolean | undefined;
  lastError: string | undefined;
  /** When lastError was noted: a catch-up pass that began before it says nothing about it. */
  lastErrorMs = 0;
  /** When a catch-up pass last brought this replica fully in step. */
  lastSyncMs: number | undefined;
  repairs = 0;
  /**
   * Names (by key) whose newest state this replica is known or presumed to lack: since
   * when, and the reason when the last attempt to settle one failed.
   */
  readonly behind = new Map<string, { sinceMs: number; reason?: string }>();
  /** The completeness the replica last acknowledged (SYNCED), and the catalog it belongs to. */
  synced = -1;
  nodeId: string | undefined;
  /** Its catalog has been compared with ours since this primary started. */
  merged = false;

  /** Every request to the replica runs on a stream of one long-lived connection (where the replica can multiplex). */
  readonly dialer: MuxDialer;

  constructor(
    readonly address: ReplicaAddress,
    private readonly options: LinkOptions,
  ) {
    this.dialer = new MuxDialer(
      {
        host: address.host,
        port: address.port,
        timeouts: options.timeouts,
        connectTimeoutMs: options.connectTimeoutMs,
        security: options.security,
        role: 'primary',
      },
      this.label,
    );
  }

  get label(): string {
    return `replica ${this.address.id} (${this.address.host}:${this.address.port})`;
  }

  /** A connection for one request (a stream of the shared connection), with this primary's epoch named first. */
  async connect(retry = this.options.retry): Promise<Connection> {
    try {
      const conn = await this.dialer.open(retry);
      const epoch = this.options.epoch?.();
      if (epoch !== undefined) {
        await conn.writeLine(formatFence(epoch));
      }
      this.reachable = true;
      return conn;
    } catch (error) {
      this.noteFailure(error);
      throw error;
    }
  }

  /** Ends the shared connection: requests still on it fail as if their connections broke. */
  close(): void {
    this.dialer.close();
  }

  /** Without a reason, the last failure to settle the name (if any) stays its reason: it is still the latest known. */
  markBehind(key: string, reason?: string): void {
    const known = this.behind.get(key);
    this.behind.set(key, { sinceMs: known?.sinceMs ?? Date.now(), reason: reason ?? known?.reason });
  }

  /** The names that failed to settle, with why (for STATUS). */
  failing(limit: number): { key: string; reason: string }[] {
    const result: { key: string; reason: string }[] = [];
    for (const [key, entry] of this.behind) {
      if (entry.reason && result.length < limit) {
        result.push({ key, reason: entry.reason });
      }
    }
    return result;
  }

  caughtUp(key: string): void {
    this.behind.delete(key);
  }

  noteFailure(error: unknown): void {
    const failure = toDfsError(error);
    this.lastErrorMs = Date.now();
    // A replica that refused for a full disk or its connection limit answered: it is up.
    this.reachable = failure.code === 'NO_SPACE' || failure.code === 'LIMIT';
    this.lastError = failure.message;
  }

  /** Starts the two-phase REPLICA exchange; resolves once the replica said SEND_FILE. */
  async openUpload(clientId: string, name: string, size: number): Promise<ReplicaUpload> {
    const conn = await this.connect();
    try {
      await conn.writeLine(formatRequest({ verb: 'REPLICA', clientId, name, size }));
      const reply = parseReply(refuseIfChallenged(await conn.readLine()));
      if (reply.token !== Reply.SEND_FILE) {
        throw replyError(reply);
      }
      return new ReplicaUpload(this, conn);
    } catch (error) {
      conn.destroy();
      this.noteFailure(error);
      throw error;
    }
  }

  /** A connection ready to carry one change: opened before a delete is decided, so the decision knows who is reachable. */
  async openChange(): Promise<Connection> {
    return this.connect();
  }

  /** Sends a tombstone over a connection from openChange (or a fresh one). */
  async sendTombstone(record: VersionRecord, conn?: Connection): Promise<void> {
    await this.request({ verb: 'REPLICA_DELETE', clientId: record.clientId, generation: record.generation, mtimeMs: record.mtimeMs, name: record.name }, Reply.REPLICA_SUCCESS, conn);
  }

  /** Sends a rename (generation `sourceGeneration` of the tombstone's name becomes `record`) over a connection from openChange. */
  async sendRename(sourceGeneration: number, tombstone: VersionRecord, record: VersionRecord, keep: number, conn?: Connection): Promise<void> {
    await this.request(
      { verb: 'REPLICA_RENAME', clientId: record.clientId, sourceGeneration, generation: record.generation, mtimeMs: record.mtimeMs, keep, from: tombstone.name, to: record.name },
      Reply.REPLICA_SUCCESS,
      conn,
    );
  }

  async dropVersion(clientId: string, name: string, generation: number): Promise<void> {
    await this.request({ verb: 'DROP_VERSION', clientId, generation, name }, Reply.REPLICA_SUCCESS);
  }

  async revoke(keyId: string): Promise<void> {
    await this.request({ verb: 'REVOKE', keyId }, Reply.OK);
  }

  async reserve(through: number): Promise<void> {
    await this.request({ verb: 'RESERVE', generation: through }, Reply.OK);
  }

  /** Certifies the replica complete through `through`, for the start (session) whose inventory was compared. */
  async certify(through: number, session: string): Promise<void> {
    await this.request({ verb: 'SYNCED', generation: through, session }, Reply.OK);
    this.synced = Math.max(this.synced, through);
  }

  /**
   * Every version and tombstone the replica holds, with what its catalog says of
   * itself. One connection attempt: passes repeat, and one replica that is down must
   * not hold up the pass for the others.
   */
  async inventory(): Promise<ReplicaInventory> {
    const conn = await this.connect({ attempts: 1, firstDelayMs: 0, maxDelayMs: 0 });
    try {
      await conn.writeLine(formatRequest({ verb: 'INVENTORY' }));
      const text = (await conn.readToEnd(1024 * 1024 * 1024)).toString('utf8');
      const listing = decodeListing<InventoryRecord, InventoryHeader>(refuseIfChallenged(text));
      if (!listing.header || typeof listing.header.synced !== 'number') {
        throw new DfsError('PROTOCOL', `${this.label} sent an inventory without its header`);
      }
      return { header: listing.header, records: listing.records.filter(isVersionRecord) };
    } catch (error) {
      this.noteFailure(error);
      throw error;
    } finally {
      conn.destroy();
    }
  }

  /** Streams one of the replica's copies (the current one, or a kept older version). */
  async download(clientId: string, name: string, generation?: number): Promise<{ size: number; sha256: string; generation: number; body: AsyncIterable<Buffer>; close(): void }> {
    const conn = await this.connect();
    try {
      await conn.writeLine(formatRequest(generation === undefined ? { verb: 'DOWNLOAD', clientId, name } : { verb: 'DOWNLOAD_VERSION', clientId, generation, name }));
      const reply = parseReply(refuseIfChallenged(await conn.readLine()));
      if (reply.token !== Reply.FILE || !reply.payload) {
        throw replyError(reply);
      }
      const header = parseFileHeader(reply.payload);
      return { ...header, body: conn.readBody(header.size), close: () => conn.destroy() };
    } catch (error) {
      conn.destroy();
      throw error;
    }
  }

  /**
   * Pushes a version the primary holds through the same two-phase exchange as an
   * upload. `commitUnder` runs the COMMIT (catch-up runs it holding the name, so it
   * cannot land in the middle of a change of that name in flight).
   */
  async push(record: VersionRecord, body: AsyncIterable<Buffer>, keep: number, commitUnder: (commit: () => Promise<void>) => Promise<void> = (commit) => commit()): Promise<void> {
    const upload = await this.openUpload(record.clientId, record.name, record.size);
    try {
      for await (const chunk of body) {
        await upload.send(chunk);
        if (upload.failure) {
          throw upload.failure;
        }
      }
      await upload.prepare({ sha256: record.sha256, generation: record.generation, mtimeMs: record.mtimeMs, keep });
      if (upload.failure) {
        throw upload.failure;
      }
      await commitUnder(() => upload.commit());
      if (upload.failure) {
        throw upload.failure;
      }
    } finally {
      await upload.abort();
    }
  }

  private async request(request: Request, expected: string, given?: Connection): Promise<void> {
    const conn = given ?? (await this.connect());
    try {
      await conn.writeLine(formatRequest(request));
      const reply = parseReply(refuseIfChallenged(await conn.readLine()));
      if (reply.token !== expected) {
        throw replyError(reply);
      }
    } catch (error) {
      this.noteFailure(error);
      throw error;
    } finally {
      conn.destroy();
    }
  }
}

/** How long a replica that broke off a transfer gets to say why, when it has not yet. */
const REASON_GRACE_MS = 500;

/**
 * The primary's half of one REPLICA exchange. It never throws into the upload's
 * pipeline: a failure is recorded and the others carry on without this replica.
 */
export class ReplicaUpload {
  failure: DfsError | undefined;
  private finished = false;
  private prepared = false;

  constructor(
    readonly link: ReplicaLink,
    private readonly conn: Connection,
  ) {}

  get ok(): boolean {
    return this.failure === undefined;
  }

  async send(chunk: Buffer): Promise<void> {
    if (this.failure) {
      return;
    }
    try {
      if (this.conn.hasUnreadBytes()) {
        // A replica speaks in the middle of a body only to refuse it.
        throw new DfsError('REPLICA_FAILED', 'the replica answered before the end of the file');
      }
      await this.conn.write(chunk);
    } catch (error) {
      this.fail(await this.theReplicasReason(error));
    }
  }

  /** Hands over the checksum and the version; resolves once the replica has the bytes on stable storage. */
  async prepare(step: ReplicaChecksum): Promise<void> {
    await this.step(formatReplicaChecksum(step), Reply.REPLICA_PREPARED);
    this.prepared = this.ok;
  }

  /** Sent only once the primary's catalog holds the version: the replica then records and places it. */
  async commit(): Promise<void> {
    // COMMIT is the last thing this exchange sends: half-closing with it puts the END in
    // the same write, instead of a write of its own per upload and replica after the answer.
    await this.step(ReplicaStep.COMMIT, Reply.REPLICA_SUCCESS, { last: true });
    this.finished = true;
    this.conn.destroy();
  }

  /**
   * Makes the replica drop its staged bytes and waits (briefly) until it has, so a
   * failure reply to the client is only sent once no replica holds anything.
   */
  async abort(): Promise<void> {
    if (this.finished) {
      return;
    }
    this.finished = true;
    try {
      if (this.prepared) {
        await this.conn.writeLine(ReplicaStep.ABORT);
        await this.conn.readLine(2_000);
      } else {
        // Mid-body an ABORT line would read as file bytes; a half-close makes the body short instead.
        await this.conn.endAndWaitForClose(2_000);
      }
    } catch {
      // The replica also discards staged bytes on its own when the connection drops.
    }
    this.conn.destroy();
  }

  fail(error: unknown): void {
    if (!this.failure) {
      this.failure = toDfsError(error, 'REPLICA_FAILED');
      this.link.noteFailure(this.failure);
    }
    this.finished = true;
    this.conn.destroy();
  }

  /**
   * A replica that fails mid-body (its disk filled) answers with its reason and closes,
   * so our next write finds the connection closed: the reason it sent, if it sent one,
   * is what the user must hear, not the broken connection.
   */
  private async theReplicasReason(error: unknown): Promise<unknown> {
    try {
      const reply = parseReply(await this.conn.readLine(REASON_GRACE_MS));
      return isFailureToken(reply.token) ? replyError(reply) : error;
    } catch {
      return error;
    }
  }

  private async step(line: string, expected: string, options: { last?: boolean } = {}): Promise<void> {
    if (this.failure) {
      return;
    }
    try {
      await this.conn.writeLine(line);
      if (options.last) {
        this.conn.stream.end();
      }
      const reply = parseReply(await this.conn.readLine());
      if (reply.token !== expected) {
        throw replyError(reply);
      }
    } catch (error) {
      this.fail(error);
    }
  }
}

/** A replica's word is checked before catch-up acts on it. */
function isVersionRecord(value: unknown): value is InventoryRecord {
  const record = value as InventoryRecord;
  return (
    typeof record === 'object' &&
    record !== null &&
    typeof record.clientId === 'string' &&
    typeof record.name === 'string' &&
    typeof record.sha256 === 'string' &&
    Number.isSafeInteger(record.size) &&
    Number.isSafeInteger(record.generation) &&
    Number.isSafeInteger(record.mtimeMs)
  );
}
