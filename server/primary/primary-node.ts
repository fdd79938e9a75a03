import type { Readable } from 'stream';
import { existsSync, promises as fs } from 'fs';
import * as path from 'path';
import { PRIMARY_ROOT, ReplicaAddress, WriteQuorum, replicasRequired } from '../config/cluster-layout';
import { ConnectionTimeouts } from '../net/connection';
import type { Security } from '../net/security';
import { DEFAULT_RETRY, RetryPolicy } from '../net/tcp';
import { clientsHandler } from '../node/handlers/clients';
import { downloadHandler } from '../node/handlers/download';
import { filesHandler } from '../node/handlers/files';
import { listHandler } from '../node/handlers/list';
import { NodeServer } from '../node/node-server';
import { DfsError, FileRecord, Reply } from '../protocol';
import { DiskStore } from '../storage/disk-store';
import { KeyLock, fileKey } from '../storage/key-lock';
import { CatchUp } from './catch-up';
import { deleteHandler } from './delete';
import type { PrimaryContext } from './primary-context';
import { ReplicaLink } from './replica-link';
import { Scrubber } from './scrub';
import { statusHandler } from './status';
import { uploadHandler } from './upload';

export interface PrimaryNodeOptions {
  host: string;
  port: number;
  dataDir: string;
  replicas: ReplicaAddress[];
  writeQuorum: WriteQuorum;
  timeouts: ConnectionTimeouts;

  retry?: RetryPolicy;
  maxFileSize: number;
  /** Milliseconds between catch-up passes over the replicas. */
  syncIntervalMs?: number;
  /** Milliseconds between scrubs of every copy; 0 turns the background scrub off. */
  scrubIntervalMs?: number;
  durable?: boolean;
  security?: Security;
  maxConnections?: number;
  /** Bytes each client may store in all; undefined means no quota. */
  quotaBytes?: number;
  log: (line: string) => void;
}

/** The primary: serves clients, stores under `<data-dir>/servidor`, and coordinates the replicas. */
export class PrimaryNode implements PrimaryContext {
  readonly store: DiskStore;
  readonly links: ReplicaLink[];
  readonly locks = new KeyLock();
  readonly removedKeys = new Set<string>();
  adopting = false;
  readonly catchUp: CatchUp;
  readonly scrubber: Scrubber;
  private readonly server: NodeServer;
  private readonly startedAt = Date.now();
  private boundAddress = '';

  constructor(private readonly options: PrimaryNodeOptions) {
    // Fails at start-up, not at the first upload, when the quorum cannot be met.
    replicasRequired(options.writeQuorum, options.replicas.length);
    this.store = new DiskStore(path.join(options.dataDir, PRIMARY_ROOT), { durable: options.durable, log: options.log });
    this.links = options.replicas.map(
      (address) =>
        new ReplicaLink(address, {
          // A replica that stops reading is dropped after half the idle timeout: the
          // healthy replicas, waiting on the same stream, must not reach their own
          // idle timeout first.
          timeouts: { ...options.timeouts, drainMs: Math.max(1, Math.floor(options.timeouts.idleMs / 2)) },
          retry: options.retry ?? DEFAULT_RETRY,
          connectTimeoutMs: 3_000,
          security: options.security,
        }),
    );
    this.catchUp = new CatchUp(this, options.syncIntervalMs ?? 5_000);
    this.scrubber = new Scrubber(this, this.catchUp, options.scrubIntervalMs ?? 0);
    this.server = new NodeServer(
      {
        UPLOAD: uploadHandler(this),
        LIST: listHandler(this.store),
        FILES: filesHandler(this.store, (file) => this.copiesOf(file)),
        CLIENTS: clientsHandler(this.store),
        DOWNLOAD: downloadHandler(this.store, (clientId, name) => this.verifiedCopy(clientId, name)),
        SCRUB: async (session) => session.reply(Reply.OK, await this.scrubber.run()),
        DELETE: deleteHandler(this),
        STATUS: statusHandler(this, () => this.boundAddress, this.startedAt),
      },
      {
        host: options.host,
        port: options.port,
        role: 'primary',
        timeouts: options.timeouts,
        maxFileSize: options.maxFileSize,
        log: options.log,
        security: options.security,
        maxConnections: options.maxConnections,
      },
    );
  }

  log(line: string): void {
    this.options.log(line);
  }

  get quotaBytes(): number | undefined {
    return this.options.quotaBytes;
  }

  replicasRequired(): number {
    return replicasRequired(this.options.writeQuorum, this.links.length);
  }

  afterWrite(someBehind: boolean): void {
    if (someBehind) {
      this.catchUp.requestSoon();
    }
  }

  async start(): Promise<{ host: string; port: number }> {
    await this.store.open();
    this.adopting = !existsSync(this.joinedMarker());
    if (this.adopting && this.links.length > 0) {
      this.log(`new data folder: files the replicas hold will be copied here, not deleted from them, until every replica has been reached once`);
    }
    const address = await this.server.listen();
    this.boundAddress = `${address.host}:${address.port}`;
    // Resumes where a previous run left off: replicas that missed writes are caught up first thing.
    this.catchUp.start();
    this.scrubber.start();
    return address;
  }

  async stop(): Promise<void> {
    this.catchUp.stop();
    this.scrubber.stop();
    await this.server.close();
    await this.store.close();
  }

  async finishAdoption(): Promise<void> {
    await fs.writeFile(this.joinedMarker(), `${new Date().toISOString()}\n`);
    this.adopting = false;
    this.log('every replica reached: catch-up now also removes what the primary does not hold');
  }

  /** Present once this data folder has been in step with every replica. */
  private joinedMarker(): string {
    return path.join(this.store.root, '.dfs', 'joined');
  }

  /** Serves only bytes that hash right: a corrupted copy is rewritten from a replica first. */
  private async verifiedCopy(clientId: string, name: string): Promise<{ record: FileRecord; body: Readable }> {
    const record = this.store.get(clientId, name);
    if (!record) {
      throw new DfsError('NOT_FOUND', `${name} is not stored for client ${clientId}`);
    }
    if (!(await this.store.verify(clientId, name))) {
      this.log(`DOWNLOAD ${clientId}/${name}: the primary's copy fails its checksum; repairing from a replica`);
      if (!(await this.scrubber.repairPrimaryCopy(record))) {
        throw new DfsError('CHECKSUM', `the stored copy of ${name} is corrupted and no replica holds a good one`);
      }
    }
    const current = this.store.get(clientId, name);
    if (!current) {
      throw new DfsError('NOT_FOUND', `${name} is not stored for client ${clientId}`);
    }
    return { record: current, body: await this.store.openRead(clientId, name) };
  }

  private copiesOf(file: FileRecord): number {
    const key = fileKey(file.clientId, file.name);
    return 1 + this.links.filter((link) => !link.behind.has(key)).length;
  }
}
