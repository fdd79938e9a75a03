import { createHash, randomBytes } from 'crypto';
import { once } from 'events';
import { createWriteStream, promises as fs } from 'fs';
import * as path from 'path';
import type { Writable } from 'stream';
import { Connection, ConnectionTimeouts, DEFAULT_TIMEOUTS } from '../net/connection';
import { refuseIfChallenged } from '../net/handshake';
import type { Security } from '../net/security';
import {
  ChangeRecord,
  Changes,
  ChangesHeader,
  ClientRecord,
  DeleteReceipt,
  DestinationRule,
  RenameReceipt,
  DfsError,
  ErrorCode,
  FileRecord,
  Listing,
  NodeStatus,
  Precondition,
  Reply,
  Request,
  ScrubReport,
  UploadReceipt,
  VersionInfo,
  decodeListing,
  formatRequest,
  parseFileHeader,
  parseReply,
  replyError,
  validateFileName,
} from '../protocol';
import { ClientConnections, sharedConnections } from './client-connections';
import { acrossPrimaries, defaultFailoverWaitMs } from './failover';
import { HostPort, PrimaryAddresses, formatHostPort } from './primary-addresses';

export interface ClientOptions {
  /** One primary; or give `primaries`. */
  host?: string;
  port?: number;
  /**
   * Several primaries (a leader and standbys): each request goes to the one that
   * answered last and moves on to the next when it cannot connect or the server knows
   * no leader. Pass the same PrimaryAddresses to every client made from the same
   * settings so they all remember which one leads.
   */
  primaries?: PrimaryAddresses | readonly HostPort[];
  /** How long a request keeps trying the primaries when none answers (default: 8 s with several, one try with one). */
  failoverWaitMs?: number;
  clientId: string;
  timeouts?: ConnectionTimeouts;
  connectTimeoutMs?: number;
  security?: Security;
  /** How long to wait for a restarted primary to say whether an upload whose reply was lost committed. */
  outcomeWaitMs?: number;
  /** Where requests find their connection (one multiplexed connection per server); by default the process's shared one. */
  connections?: ClientConnections;
}

export interface TransferOptions {
  signal?: AbortSignal;
  onProgress?: (bytesDone: number, total: number) => void;
}

export interface RenameOptions {
  clientId?: string;
  /** Rename only while the source is at this generation (else CONFLICT). */
  ifGeneration?: number;
  /** true: replace whatever the destination holds; a number: only that generation of it (else EXISTS). Default: refuse an existing destination (EXISTS). */
  replace?: boolean | number;
}

export interface DownloadOptions extends TransferOptions {
  clientId?: string;
  /** A kept older version instead of the current one. */
  generation?: number;
}

export interface DownloadResult {
  size: number;
  sha256: string;
  generation: number;
}

export interface UploadOptions extends TransferOptions {
  /** Store only if the name's current state is this; otherwise CONFLICT with the current generation, and nothing changes. */
  precondition?: Precondition;
}

const ONE_ATTEMPT = { attempts: 1, firstDelayMs: 0, maxDelayMs: 0 };
const MAX_LISTING_BYTES = 256 * 1024 * 1024;
const READ_CHUNK = 256 * 1024;
/** The primary hashes a copy before it serves it (and may repair it first): minutes for a large file. */
const VERIFY_WAIT_MS = 10 * 60_000;

/** Our own client of the primary: line-terminated headers, rich replies, cancellable transfers. */
export class DfsClient {
  readonly clientId: string;
  readonly primaries: PrimaryAddresses;
  private readonly failoverWaitMs: number;

  constructor(private readonly options: ClientOptions) {
    this.clientId = options.clientId;
    if (options.primaries instanceof PrimaryAddresses) {
      this.primaries = options.primaries;
    } else if (options.primaries) {
      this.primaries = new PrimaryAddresses(options.primaries);
    } else if (options.host !== undefined && options.port !== undefined) {
      this.primaries = new PrimaryAddresses([{ host: options.host, port: options.port }]);
    } else {
      throw new DfsError('BAD_HEADER', 'a DFS client needs a primary address (host and port, or a list)');
    }
    this.failoverWaitMs = options.failoverWaitMs ?? defaultFailoverWaitMs(this.primaries.all.length);
  }

  /** The primary that answered last (the first configured one until any has). */
  get address(): string {
    return formatHostPort(this.primaries.current);
  }

  /**
   * Uploads a local file. The last chunk is held back until the file is seen unchanged,
   * so a file edited mid-transfer is refused with nothing stored instead of stored torn.
   */
  async uploadFile(localPath: string, name: string, options: UploadOptions = {}): Promise<UploadReceipt> {
    validateFileName(name);
    const handle = await fs.open(localPath, 'r').catch((error: NodeJS.ErrnoException) => {
      throw new DfsError('NOT_FOUND', `cannot read ${localPath}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
    });
    try {
      const before = await handle.stat();
      if (!before.isFile()) {
        throw new DfsError('BAD_FILE_NAME', `${localPath} is not a regular file`);
      }
      const size = before.size;
      const chunks = async function* (): AsyncGenerator<Buffer> {
        let position = 0;
        while (position < size) {
          const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - position));
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
          if (bytesRead === 0) {
            throw new DfsError('CONFLICT', `${localPath} shrank while it was being uploaded; nothing was stored, try again`);
          }
          position += bytesRead;
          yield buffer.subarray(0, bytesRead);
        }
      };
      const unchanged = async (): Promise<void> => {
        const after = await handle.stat();
        const pathNow = await fs.stat(localPath).catch(() => undefined);
        if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || (pathNow && pathNow.ino !== before.ino)) {
          throw new DfsError('CONFLICT', `${localPath} changed while it was being uploaded; nothing was stored, try again`);
        }
      };
      const checksumOfSource = async (): Promise<string> => {
        await unchanged();
        const hash = createHash('sha256');
        const buffer = Buffer.allocUnsafe(READ_CHUNK);
        for (let position = 0; position < size; ) {
          const { bytesRead } = await handle.read(buffer, 0, Math.min(READ_CHUNK, size - position), position);
          if (bytesRead === 0) {
            break;
          }
          hash.update(buffer.subarray(0, bytesRead));
          position += bytesRead;
        }
        return hash.digest('hex');
      };
      // A transfer cut before its last byte left the primary nothing it could commit: with
      // other primaries to try (a failover), it is sent again once, from the start.
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.upload(name, chunks(), size, { ...options, beforeLastChunk: unchanged, checksumOfSource });
        } catch (error) {
          if (!(error instanceof UploadCutShort) || attempt > 1 || this.primaries.all.length < 2) {
            throw error;
          }
        }
      }
    } finally {
      await handle.close();
    }
  }

  /** Uploads `size` bytes from any source of chunks (an editor buffer, a stream). */
  async upload(
    name: string,
    body: AsyncIterable<Buffer> | Iterable<Buffer>,
    size: number,
    options: UploadOptions & {
      beforeLastChunk?: () => Promise<void>;
      /**
       * Hashes the source again, only if the primary's answer is lost. Without it the
       * bytes are hashed as they are sent, which costs a SHA-256 pass on every upload.
       */
      checksumOfSource?: () => Promise<string>;
    } = {},
  ): Promise<UploadReceipt> {
    validateFileName(name);
    // Cancelling stops the transfer only while bytes are still going out: once all of
    // them are sent the primary may already be committing, and the truth is its answer.
    let allSent = false;
    const transfer = new AbortController();
    const cancel = (): void => {
      if (!allSent) {
        transfer.abort();
      }
    };
    options.signal?.addEventListener('abort', cancel, { once: true });
    if (options.signal?.aborted) {
      cancel();
    }
    const request: Request = options.precondition
      ? { verb: 'UPLOAD_IF', clientId: this.clientId, precondition: options.precondition, name, size }
      : { verb: 'UPLOAD', clientId: this.clientId, name, size };
    // Until SEND_FILE nothing of the body has gone out, so another primary may be asked.
    const opened = await acrossPrimaries(
      this.primaries,
      this.failoverWaitMs,
      async (address) => {
        let conn: Connection | undefined;
        try {
          conn = await this.connectTo(address, request, transfer.signal);
          const ready = parseReply(refuseIfChallenged(await conn.readLine()));
          if (ready.token !== Reply.SEND_FILE) {
            throw replyError(ready);
          }
          return { conn, ready };
        } catch (error) {
          conn?.destroy();
          // The process's connection to a primary killed a moment ago may not have heard
          // of it yet: the request goes out and the reset comes back. With bytes still to
          // send the primary cannot have stored anything, so the next primary is asked.
          if (size > 0 && isConnectionLoss(error) && !transfer.signal.aborted) {
            throw unanswered(address, error, `it answered the upload; nothing of ${name} was sent`);
          }
          throw error;
        }
      },
      transfer.signal,
    ).catch((error: unknown) => {
      options.signal?.removeEventListener('abort', cancel);
      throw this.cancelledOr(error, transfer.signal);
    });
    const { conn, ready } = opened;
    try {
      const { replaces, epoch } = parseSendFile(ready.payload);
      let sent = 0;
      let held: Buffer | undefined;
      let lastChunkGoing = false;
      const hash = options.checksumOfSource ? undefined : createHash('sha256');
      try {
        for await (const chunk of body) {
          if (held) {
            await conn.write(held);
            sent += held.length;
            options.onProgress?.(sent, size);
            if (conn.hasUnreadBytes()) {
              // The primary only speaks mid-body to refuse: stop sending into the void.
              throw new DfsError('PROTOCOL', 'the primary answered before the upload finished');
            }
          }
          held = chunk;
          hash?.update(chunk);
          if (sent + held.length > size) {
            throw new DfsError('CONFLICT', `the source produced more than the ${size} bytes announced; nothing was stored`);
          }
        }
        if (held) {
          await options.beforeLastChunk?.();
          lastChunkGoing = true;
          await conn.write(held);
          sent += held.length;
          options.onProgress?.(sent, size);
        }
        if (sent !== size) {
          throw new DfsError('CONFLICT', `the source produced ${sent} of the ${size} bytes announced; nothing was stored`);
        }
      } catch (error) {
        // The primary may have refused the upload mid-body and closed: its reason has
        // already arrived and says more than the failed write does.
        const refusal = await this.failureAlreadySent(conn);
        if (refusal) {
          throw refusal;
        }
        // Once the last chunk is on its way it may have arrived whole: only a cut before it is certain to have stored nothing.
        if (!lastChunkGoing && !transfer.signal.aborted && isConnectionLoss(error)) {
          throw new UploadCutShort(error as DfsError, sent, size);
        }
        throw error;
      }
      allSent = true;
      const lastByteAt = Date.now();
      let result;
      try {
        // After the last byte the primary may wait on replicas to prepare, then on the
        // file's lock and their commits: allow for each of those steps' timeouts.
        result = parseReply(await conn.readLine(4 * (this.options.timeouts?.idleMs ?? DEFAULT_TIMEOUTS.idleMs)));
      } catch (error) {
        if (!(error instanceof DfsError) || (error.code !== 'PROTOCOL' && error.code !== 'TIMEOUT')) {
          throw error;
        }
        // Every byte went out but the answer never came: the primary may have died
        // after committing. Ask it (once it is back) instead of guessing.
        const sha256 = hash ? hash.digest('hex') : await options.checksumOfSource!();
        const above = Math.max(replaces, options.precondition?.kind === 'generation' ? options.precondition.generation : -1);
        return await this.resolveOutcome(name, sha256, size, error, { lastByteAt, above, epoch });
      }
      if (result.token !== Reply.UPLOAD_SUCCESS) {
        throw replyError(result);
      }
      return JSON.parse(result.payload ?? '{}') as UploadReceipt;
    } catch (error) {
      throw allSent ? error : this.cancelledOr(error, transfer.signal);
    } finally {
      options.signal?.removeEventListener('abort', cancel);
      conn.destroy();
    }
  }

  private async failureAlreadySent(conn: Connection): Promise<DfsError | undefined> {
    if (!conn.hasUnreadBytes()) {
      return undefined;
    }
    try {
      const reply = parseReply(await conn.readLine(1_000));
      return reply.code ? replyError(reply) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Settles an upload whose reply was lost. The primary's catalog record is the commit
   * point, so the truth is in its catalog: our bytes as a version of the name (current,
   * or since replaced and kept as an older one) newer than `above`, the generation the
   * upload replaced (SEND_FILE said which), means it committed. Not there proves nothing
   * while the primary that took the bytes still runs (it may commit later); a primary
   * restarted since can no longer commit them, so with the name unchanged since the
   * upload began they were not stored, and with the name changed the outcome cannot be
   * told (OUTCOME_UNKNOWN). A leadership other than the one that sent SEND_FILE (another
   * epoch) can no longer commit them either: the new leader fences the old one. Every
   * question goes through the primary addresses, so after a failover the new leader
   * answers.
   */
  private async resolveOutcome(name: string, sha256: string, size: number, cause: DfsError, upload: { lastByteAt: number; above: number; epoch?: number }): Promise<UploadReceipt> {
    const { lastByteAt, above } = upload;
    const waitMs = this.options.outcomeWaitMs ?? 15_000;
    const deadline = Date.now() + waitMs;
    let delay = 50;
    for (;;) {
      try {
        const versions = await this.versions(name).catch((error: unknown) => {
          if (error instanceof DfsError && error.code === 'NOT_FOUND') {
            return [] as VersionInfo[];
          }
          throw error;
        });
        // The oldest of our bytes above what the upload replaced is ours: a later version
        // with the same bytes is a restore of it or another upload of the same content
        // (the chaos soak caught the newest being reported, a restore's generation).
        const ours = versions
          .filter((version) => version.sha256 === sha256 && version.size === size && version.generation > above)
          .sort((a, b) => a.generation - b.generation)[0];
        // Only provably ours when the kept versions reach back to what the upload replaced:
        // otherwise ours may have been pushed out, and this is a later restore of the same bytes.
        if (ours && above >= 0 && !versions.some((version) => version.generation <= above)) {
          throw new DfsError(
            'OUTCOME_UNKNOWN',
            `the answer for ${name} was lost (${cause.message}) and its versions no longer reach back to the one it replaced: this upload was stored, as generation ${ours.generation} or an older one since replaced. List your files or dfs versions to see.`,
          );
        }
        if (ours) {
          const record = ours.current ? (await this.files()).find((file) => file.name === name && file.generation === ours.generation) : undefined;
          return { sha256, size, generation: ours.generation, copies: record?.copies ?? 1, replicasBehind: [] };
        }
        const status = await this.status();
        const epochNow = (status as { epoch?: unknown }).epoch;
        const leadershipChanged = upload.epoch !== undefined && typeof epochNow === 'number' && epochNow !== upload.epoch;
        if (leadershipChanged || status.uptimeMs < Date.now() - lastByteAt) {
          const what = leadershipChanged ? `another primary took over (epoch ${upload.epoch} to ${epochNow as number})` : 'the primary restarted';
          // A restarted primary can no longer commit these bytes. Their absence proves
          // they never were committed only if the name is still as the upload found it:
          // a later overwrite can have pushed them out of the kept versions, and a
          // delete removes every version.
          const current = versions.find((version) => version.current)?.generation ?? -1;
          if (current === above && above >= 0) {
            throw new DfsError('REPLICA_FAILED', `${what} (${cause.message}) before storing ${name}; nothing was stored, try again`);
          }
          throw new DfsError(
            'OUTCOME_UNKNOWN',
            `${what} (${cause.message}) before answering, and ${name} has changed since (${current >= 0 ? `it is now generation ${current}` : 'it is not stored now'}): this upload was either not stored, or stored and then replaced or deleted. Upload it again if you still want this content.`,
          );
        }
      } catch (error) {
        if (error instanceof DfsError && (error.code === 'REPLICA_FAILED' || error.code === 'OUTCOME_UNKNOWN')) {
          throw error;
        }
      }
      if (Date.now() + delay > deadline) {
        throw new DfsError('TIMEOUT', `the primary received every byte of ${name} but gave no answer within ${waitMs} ms; whether it was stored is unknown: list your files to see`);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 1_000);
    }
  }

  /** The report's LIST: just names. */
  async list(): Promise<string[]> {
    return this.exchange({ verb: 'LIST', clientId: this.clientId }, async (conn) => {
      const text = refuseIfChallenged((await conn.readToEnd(MAX_LISTING_BYTES)).toString('utf8'));
      if (/^ERROR UNREACHABLE /.test(text)) {
        throw replyError(parseReply(text.split('\n')[0]));
      }
      return text.startsWith('No files stored for client ') ? [] : text.split('\n').filter((name) => name.length > 0);
    });
  }

  /** Files with size, stored time, checksum and number of copies. */
  async files(clientId = this.clientId): Promise<FileRecord[]> {
    return this.records<FileRecord>({ verb: 'FILES', clientId });
  }

  /**
   * What changed of a client's files above `since`: each name whose current version or
   * delete is newer, and `through`, the generation to ask from next. With `complete`
   * false some deletes may be missing: compare with files().
   */
  async changes(since: number, clientId = this.clientId): Promise<Changes> {
    const { header, records } = await this.listing<ChangeRecord, ChangesHeader>({ verb: 'CHANGES', clientId, generation: since });
    if (!header || typeof header.through !== 'number' || typeof header.complete !== 'boolean') {
      throw new DfsError('PROTOCOL', 'CHANGES answered without its {"through","complete"} header; is the primary older than this client?');
    }
    return { header, records };
  }

  async clients(): Promise<ClientRecord[]> {
    return this.records<ClientRecord>({ verb: 'CLIENTS' });
  }

  async status(): Promise<NodeStatus> {
    return this.exchange({ verb: 'STATUS' }, async (conn) => {
      const reply = parseReply(refuseIfChallenged(await conn.readLine()));
      if (reply.token !== Reply.OK || !reply.payload) {
        throw replyError(reply);
      }
      return JSON.parse(reply.payload) as NodeStatus;
    });
  }

  /** Revokes a key (needs the cluster secret): every server refuses it from now on. */
  async revoke(keyId: string): Promise<{ keyId: string; replicas: number; of: number }> {
    return this.exchange({ verb: 'REVOKE', keyId }, async (conn) => {
      const reply = parseReply(refuseIfChallenged(await conn.readLine()));
      if (reply.token !== Reply.OK || !reply.payload) {
        throw replyError(reply);
      }
      return JSON.parse(reply.payload) as { keyId: string; replicas: number; of: number };
    });
  }

  /** Verifies every copy in the cluster now and repairs what fails; resolves with the primary's report. */
  async scrub(): Promise<ScrubReport> {
    return this.exchange({ verb: 'SCRUB' }, async (conn) => {
      const reply = parseReply(await conn.readLine(60 * 60_000));
      if (reply.token !== Reply.OK || !reply.payload) {
        throw replyError(reply);
      }
      return JSON.parse(reply.payload) as ScrubReport;
    });
  }

  /** Deletes a file from every copy; with `ifGeneration`, only while that is its current generation. */
  async delete(name: string, options: { clientId?: string; ifGeneration?: number } = {}): Promise<DeleteReceipt> {
    const clientId = options.clientId ?? this.clientId;
    const request: Request =
      options.ifGeneration === undefined ? { verb: 'DELETE', clientId, name } : { verb: 'DELETE_IF', clientId, generation: options.ifGeneration, name };
    return this.exchange(request, async (conn) => {
      const reply = parseReply(refuseIfChallenged(await conn.readLine(4 * (this.options.timeouts?.idleMs ?? DEFAULT_TIMEOUTS.idleMs))));
      if (reply.token !== Reply.DELETE_SUCCESS) {
        throw replyError(reply);
      }
      return reply.payload ? (JSON.parse(reply.payload) as DeleteReceipt) : { generation: 0, copies: 0, replicasBehind: [] };
    });
  }

  /**
   * Renames (or moves, `/` names folders) a stored file on every copy, atomically: the
   * destination gets a new generation holding the source's bytes, the source is
   * deleted at that generation. With `ifGeneration`, only while that is the source's
   * current generation (else CONFLICT). An existing destination is refused with EXISTS
   * unless `replace` is true (replace whatever is there) or the destination's
   * generation to replace. A missing source is NOT_FOUND.
   */
  async rename(from: string, to: string, options: RenameOptions = {}): Promise<RenameReceipt> {
    const clientId = options.clientId ?? this.clientId;
    const destination: DestinationRule =
      options.replace === undefined || options.replace === false ? { kind: 'absent' } : options.replace === true ? { kind: 'any' } : { kind: 'generation', generation: options.replace };
    const request: Request =
      options.ifGeneration === undefined && destination.kind === 'absent'
        ? { verb: 'RENAME', clientId, from, to }
        : {
            verb: 'RENAME_IF',
            clientId,
            source: options.ifGeneration === undefined ? { kind: 'any' } : { kind: 'generation', generation: options.ifGeneration },
            destination,
            from,
            to,
          };
    return this.exchange(request, async (conn) => {
      const reply = parseReply(refuseIfChallenged(await conn.readLine(4 * (this.options.timeouts?.idleMs ?? DEFAULT_TIMEOUTS.idleMs))));
      if (reply.token !== Reply.RENAME_SUCCESS || !reply.payload) {
        throw replyError(reply);
      }
      return JSON.parse(reply.payload) as RenameReceipt;
    });
  }

  /** The kept versions of a file, newest (the current one) first. */
  async versions(name: string, clientId = this.clientId): Promise<VersionInfo[]> {
    return this.records<VersionInfo>({ verb: 'VERSIONS', clientId, name });
  }

  /** Makes a kept version current again, as a new version (a new generation) with its bytes. */
  async restore(name: string, generation: number, clientId = this.clientId): Promise<UploadReceipt> {
    return this.exchange({ verb: 'RESTORE', clientId, generation, name }, async (conn) => {
      const reply = parseReply(refuseIfChallenged(await conn.readLine(VERIFY_WAIT_MS)));
      if (reply.token !== Reply.RESTORE_SUCCESS) {
        throw replyError(reply);
      }
      return JSON.parse(reply.payload ?? '{}') as UploadReceipt;
    });
  }

  /** Streams a stored file into `sink`, verifying its checksum; the sink must be discarded on failure. */
  async download(name: string, sink: Writable, options: DownloadOptions = {}): Promise<DownloadResult> {
    const clientId = options.clientId ?? this.clientId;
    const request: Request = options.generation === undefined ? { verb: 'DOWNLOAD', clientId, name } : { verb: 'DOWNLOAD_VERSION', clientId, generation: options.generation, name };
    // Nothing reaches the sink before the FILE header, so until then another primary may be asked.
    const { conn, header } = await acrossPrimaries(
      this.primaries,
      this.failoverWaitMs,
      async (address) => {
        const conn = await this.connectTo(address, request, options.signal);
        try {
          const reply = parseReply(refuseIfChallenged(await conn.readLine(VERIFY_WAIT_MS)));
          if (reply.token !== Reply.FILE || !reply.payload) {
            throw replyError(reply);
          }
          return { conn, header: parseFileHeader(reply.payload) };
        } catch (error) {
          conn.destroy();
          throw error;
        }
      },
      options.signal,
    ).catch((error: unknown) => {
      throw this.cancelledOr(error, options.signal);
    });
    try {
      const { size, sha256, generation } = header;
      const hash = createHash('sha256');
      let received = 0;
      try {
        for await (const chunk of conn.readBody(size)) {
          hash.update(chunk);
          received += chunk.length;
          if (!sink.write(chunk)) {
            // once() also rejects on 'error' and removes both listeners: none pile up on a long download.
            await once(sink, 'drain');
          }
          options.onProgress?.(received, size);
        }
      } catch (error) {
        // A server cuts a download whose copy fails its checksum: on a stream of a shared
        // connection that is a RESET, not a close. Either way the transfer came up short.
        if (!options.signal?.aborted && isConnectionLoss(error)) {
          throw new DfsError('SHORT_BODY', `the download of ${name} was cut after ${received} of ${size} bytes (${(error as DfsError).message})`);
        }
        throw error;
      }
      const actual = hash.digest('hex');
      if (actual !== sha256) {
        throw new DfsError('CHECKSUM', `downloaded bytes of ${name} hash to ${actual}, the server recorded ${sha256}; try again`);
      }
      return { size, sha256, generation };
    } catch (error) {
      throw this.cancelledOr(error, options.signal);
    } finally {
      conn.destroy();
    }
  }

  /**
   * Downloads into a file atomically: a failed or cancelled download leaves the
   * destination untouched. A transfer cut short is asked for again once, from the
   * start: a server cuts a download one chunk short when its copy fails its checksum
   * at the end, and serves a repaired or another copy the next time.
   */
  downloadToFile(name: string, destination: string, options: DownloadOptions = {}): Promise<DownloadResult> {
    return askedAgainIfCut(options.signal, () => downloadAtomically(destination, (sink) => this.download(name, sink, options)));
  }

  private async records<T>(request: Request): Promise<T[]> {
    return (await this.listing<T, undefined>(request)).records;
  }

  private async listing<T, H>(request: Request): Promise<Listing<T, H>> {
    return this.exchange(request, async (conn) => {
      // A recovering primary holds listings until it knows the latest versions.
      const text = (await conn.readToEnd(MAX_LISTING_BYTES, 4 * (this.options.timeouts?.idleMs ?? DEFAULT_TIMEOUTS.idleMs))).toString('utf8');
      return decodeListing<T, H>(refuseIfChallenged(text));
    });
  }

  /** One request and its whole answer, on the primary that answers (see acrossPrimaries). */
  private exchange<T>(request: Request, handle: (conn: Connection) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return acrossPrimaries(
      this.primaries,
      this.failoverWaitMs,
      async (address) => {
        let conn: Connection | undefined;
        try {
          conn = await this.connectTo(address, request, signal);
          return await handle(conn);
        } catch (error) {
          // A primary killed as it took the connection (a failover under way) resets it;
          // a question that changes nothing is asked again, of this address or the next.
          if (isConnectionLoss(error) && !signal?.aborted) {
            if (READ_ONLY_VERBS.has(request.verb)) {
              throw unanswered(address, error, 'its answer');
            }
            // A change may have been made before the loss: it is not asked again, and the
            // user is told the outcome is unknown rather than that it failed.
            throw new DfsError(
              'OUTCOME_UNKNOWN',
              `the connection to ${formatHostPort(address)} broke before the answer to ${request.verb} (${(error as DfsError).message}): whether it was carried out is unknown. List your files (or their versions) to see, and try again if it was not.`,
            );
          }
          throw error;
        } finally {
          conn?.destroy();
        }
      },
      signal,
    );
  }

  /**
   * A connection for one request: a stream of the process's one connection to that
   * server (opened on first use), or a connection of its own where the server cannot
   * multiplex. One connection attempt: acrossPrimaries decides what happens next.
   */
  private async connectTo(address: HostPort, request: Request, signal?: AbortSignal): Promise<Connection> {
    const dialer = (this.options.connections ?? sharedConnections).dialerFor({
      address,
      security: this.options.security,
      timeouts: this.options.timeouts,
      connectTimeoutMs: this.options.connectTimeoutMs,
    });
    const conn = await dialer.open(ONE_ATTEMPT, { timeouts: this.options.timeouts ?? DEFAULT_TIMEOUTS, signal });
    try {
      await conn.writeLine(formatRequest(request));
    } catch (error) {
      conn.destroy();
      throw error;
    }
    return conn;
  }

  private cancelledOr(error: unknown, signal: AbortSignal | undefined): unknown {
    return signal?.aborted ? new DfsError('CANCELLED', 'cancelled; nothing was stored') : error;
  }
}

/** The connection broke before the last byte of an upload went out: the primary cannot have stored it. */
export class UploadCutShort extends DfsError {
  constructor(cause: DfsError, sent: number, size: number) {
    super(cause.code, `the connection to the primary broke after ${sent} of ${size} bytes (${cause.message}); nothing was stored, try again`);
  }
}

function isConnectionLoss(error: unknown): boolean {
  return (
    error instanceof DfsError &&
    ((error.code === 'PROTOCOL' && /^connection (failed|closed by the peer|is already closed)/.test(error.message)) || (error.code === 'TIMEOUT' && /^peer did not read/.test(error.message)))
  );
}

/** A connection lost before `what`, as an address that did not answer: acrossPrimaries asks again, there or at the next one. */
function unanswered(address: HostPort, error: unknown, what: string): DfsError {
  return new DfsError('UNREACHABLE', `the connection to ${formatHostPort(address)} broke before ${what} (${(error as DfsError).message})`);
}

/** Requests that change nothing: safe to ask again when the connection breaks before the answer. */
const READ_ONLY_VERBS: ReadonlySet<string> = new Set(['LIST', 'FILES', 'CHANGES', 'CLIENTS', 'STATUS', 'VERSIONS']);

/** A transfer cut short (how a server ends the download of a copy it finds damaged), or bytes that arrived but did not hash right. */
const CUT_SHORT: readonly ErrorCode[] = ['SHORT_BODY', 'CHECKSUM'];

/**
 * Runs a download once more, from the start, when it was cut short (see downloadToFile).
 * `attempt` must start afresh each time (a new sink), so nothing of the cut one is kept.
 */
export async function askedAgainIfCut<T>(signal: AbortSignal | undefined, attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt();
  } catch (error) {
    if (signal?.aborted || !(error instanceof DfsError) || !CUT_SHORT.includes(error.code)) {
      throw error;
    }
    return attempt();
  }
}

/** Streams a download into a temporary file beside `destination` and renames it there only once it is complete and verified. */
export async function downloadAtomically(destination: string, download: (sink: Writable) => Promise<DownloadResult>): Promise<DownloadResult> {
  const temporary = path.join(path.dirname(destination), `.${path.basename(destination)}.dfs-${randomBytes(4).toString('hex')}`);
  const sink = createWriteStream(temporary, { flags: 'wx' });
  const failed = new Promise<never>((_, reject) => sink.once('error', reject));
  failed.catch(() => undefined);
  try {
    const result = await Promise.race([download(sink), failed]);
    await new Promise<void>((resolve, reject) => sink.end((error?: Error | null) => (error ? reject(error) : resolve())));
    await fs.rename(temporary, destination);
    return result;
  } catch (error) {
    sink.destroy();
    await fs.rm(temporary, { force: true });
    throw error;
  }
}

/**
 * From our framing's `SEND_FILE {"replaces":G,"epoch":E}`: the generation an upload
 * replaces (-1 when none, or an older server) and the leadership that took it (when the
 * primaries elect one).
 */
export function parseSendFile(payload: string | undefined): { replaces: number; epoch?: number } {
  let fields: { replaces?: unknown; epoch?: unknown } = {};
  try {
    fields = payload ? (JSON.parse(payload) as typeof fields) : {};
  } catch {
    // A seed-style bare SEND_FILE, or something we do not read: no generation known.
  }
  return { replaces: typeof fields.replaces === 'number' ? fields.replaces : -1, epoch: typeof fields.epoch === 'number' ? fields.epoch : undefined };
}
