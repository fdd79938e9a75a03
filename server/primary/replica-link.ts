import { Readable } from 'stream';
import { ReplicaAddress } from '../config/cluster-layout';
import { Connection, ConnectionTimeouts } from '../net/connection';
import { refuseIfChallenged } from '../net/handshake';
import type { Security } from '../net/security';
import { RetryPolicy, connectWithRetry } from '../net/tcp';
import { fileKey } from '../storage/key-lock';
import { DfsError, FileRecord, Reply, decodeRecords, formatRequest, parseReply, replyError, toDfsError } from '../protocol';

export interface LinkOptions {
  timeouts: ConnectionTimeouts;
  retry: RetryPolicy;
  connectTimeoutMs: number;
  security?: Security;
}

/** The primary's view of one replica: how to reach it and what it last said. */
export class ReplicaLink {
  reachable: boolean | undefined;
  lastError: string | undefined;
  lastSyncMs: number | undefined;
  repairs = 0;
  /** Files (by key) this replica is known to lack or hold in an older version. */
  readonly behind = new Set<string>();

  constructor(
    readonly address: ReplicaAddress,
    private readonly options: LinkOptions,
  ) {}

  get label(): string {
    return `replica ${this.address.id} (${this.address.host}:${this.address.port})`;
  }

  async connect(retry = this.options.retry): Promise<Connection> {
    try {
      const conn = await connectWithRetry(
        {
          host: this.address.host,
          port: this.address.port,
          timeouts: this.options.timeouts,
          connectTimeoutMs: this.options.connectTimeoutMs,
          security: this.options.security,
          role: 'primary',
        },
        retry,
      );
      this.reachable = true;
      return conn;
    } catch (error) {
      this.noteFailure(error);
      throw error;
    }
  }

  markBehind(clientId: string, name: string): void {
    this.behind.add(fileKey(clientId, name));
  }

  caughtUp(clientId: string, name: string): void {
    this.behind.delete(fileKey(clientId, name));
  }

  noteFailure(error: unknown): void {
    this.reachable = false;
    this.lastError = toDfsError(error).message;
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

  async deleteFile(clientId: string, name: string): Promise<void> {
    const conn = await this.connect();
    try {
      await conn.writeLine(formatRequest({ verb: 'REPLICA_DELETE', clientId, name }));
      const reply = parseReply(refuseIfChallenged(await conn.readLine()));
      if (reply.token !== Reply.REPLICA_SUCCESS) {
        throw replyError(reply);
      }
    } catch (error) {
      this.noteFailure(error);
      throw error;
    } finally {
      conn.destroy();
    }
  }

  /** Every file the replica holds, with the checksum it recorded. */
  async inventory(): Promise<FileRecord[]> {
    const conn = await this.connect();
    try {
      await conn.writeLine(formatRequest({ verb: 'INVENTORY' }));
      const reply = parseReply(refuseIfChallenged(await conn.readLine()));
      if (reply.token !== Reply.OK) {
        throw replyError(reply);
      }
      const records = decodeRecords<FileRecord>((await conn.readToEnd(1024 * 1024 * 1024)).toString('utf8'));
      return records.filter(isFileRecord);
    } catch (error) {
      this.noteFailure(error);
      throw error;
    } finally {
      conn.destroy();
    }
  }

  /** Streams one of the replica's copies, for repairing the primary's. */
  async download(clientId: string, name: string): Promise<{ size: number; sha256: string; body: AsyncIterable<Buffer>; close(): void }> {
    const conn = await this.connect();
    try {
      await conn.writeLine(formatRequest({ verb: 'DOWNLOAD', clientId, name }));
      const line = refuseIfChallenged(await conn.readLine());
      const reply = parseReply(line);
      if (reply.token !== Reply.FILE || !reply.payload) {
        throw replyError(reply);
      }
      const [sizeText, sha256] = reply.payload.split(' ');
      const size = Number(sizeText);
      return { size, sha256, body: conn.readBody(size), close: () => conn.destroy() };
    } catch (error) {
      conn.destroy();
      throw error;
    }
  }

  /** Pushes a stored file through the same two-phase exchange as an upload. */
  async push(record: FileRecord, body: Readable): Promise<void> {
    const upload = await this.openUpload(record.clientId, record.name, record.size);
    try {
      for await (const chunk of body) {
        await upload.send(chunk as Buffer);
        if (upload.failure) {
          throw upload.failure;
        }
      }
      await upload.prepare(record.sha256);
      if (upload.failure) {
        throw upload.failure;
      }
      await upload.commit();
      if (upload.failure) {
        throw upload.failure;
      }
    } finally {
      await upload.abort();
    }
  }
}

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
      await this.conn.write(chunk);
    } catch (error) {
      this.fail(error);
    }
  }

  /** Hands over the checksum; resolves once the replica has the bytes on stable storage. */
  async prepare(sha256: string): Promise<void> {
    await this.step(`CHECKSUM ${sha256}`, Reply.REPLICA_PREPARED);
    this.prepared = this.ok;
  }

  async commit(): Promise<void> {
    await this.step('COMMIT', Reply.REPLICA_SUCCESS);
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
        await this.conn.writeLine('ABORT');
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

  private async step(line: string, expected: string): Promise<void> {
    if (this.failure) {
      return;
    }
    try {
      await this.conn.writeLine(line);
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
function isFileRecord(value: unknown): value is FileRecord {
  const record = value as FileRecord;
  return (
    typeof record === 'object' &&
    record !== null &&
    typeof record.clientId === 'string' &&
    typeof record.name === 'string' &&
    typeof record.sha256 === 'string' &&
    Number.isSafeInteger(record.size)
  );
}
