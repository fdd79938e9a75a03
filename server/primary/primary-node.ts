import * as path from 'path';
import { PRIMARY_ROOT, ReplicaAddress, WriteQuorum, replicasRequired } from '../config/cluster-layout';
import { ConnectionTimeouts } from '../net/connection';
import { DEFAULT_RETRY, RetryPolicy } from '../net/tcp';
import { clientsHandler } from '../node/handlers/clients';
import { downloadHandler } from '../node/handlers/download';
import { filesHandler } from '../node/handlers/files';
import { listHandler } from '../node/handlers/list';
import { NodeServer } from '../node/node-server';
import { FileRecord } from '../protocol';
import { DiskStore } from '../storage/disk-store';
import { KeyLock, fileKey } from '../storage/key-lock';
import { deleteHandler } from './delete';
import type { PrimaryContext } from './primary-context';
import { ReplicaLink } from './replica-link';
import { statusHandler } from './status';
import { uploadHandler } from './upload';

export interface PrimaryNodeOptions {
  host: string;
  port: number;
  dataDir: string;
  replicas: ReplicaAddress[];
  writeQuorum: WriteQuorum;
  timeouts: ConnectionTimeouts;
  /** Longest wait for a replica to drain a chunk before it is dropped from an upload. */
  replicaTimeouts?: ConnectionTimeouts;
  retry?: RetryPolicy;
  maxFileSize: number;
  /** Milliseconds between catch-up passes over the replicas. */
  syncIntervalMs?: number;
  /** Milliseconds between scrubs of every copy; 0 turns the background scrub off. */
  scrubIntervalMs?: number;
  durable?: boolean;
  log: (line: string) => void;
}

/** The primary: serves clients, stores under `<data-dir>/servidor`, and coordinates the replicas. */
export class PrimaryNode implements PrimaryContext {
  readonly store: DiskStore;
  readonly links: ReplicaLink[];
  readonly locks = new KeyLock();
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
          timeouts: options.replicaTimeouts ?? options.timeouts,
          retry: options.retry ?? DEFAULT_RETRY,
          connectTimeoutMs: 3_000,
        }),
    );
    this.server = new NodeServer(
      {
        UPLOAD: uploadHandler(this),
        LIST: listHandler(this.store),
        FILES: filesHandler(this.store, (file) => this.copiesOf(file)),
        CLIENTS: clientsHandler(this.store),
        DOWNLOAD: downloadHandler(this.store),
        DELETE: deleteHandler(this),
        STATUS: statusHandler(this, () => this.boundAddress, this.startedAt),
      },
      { host: options.host, port: options.port, role: 'primary', timeouts: options.timeouts, maxFileSize: options.maxFileSize, log: options.log },
    );
  }

  log(line: string): void {
    this.options.log(line);
  }

  replicasRequired(): number {
    return replicasRequired(this.options.writeQuorum, this.links.length);
  }

  afterWrite(): void {
    // Catch-up hooks in here.
  }

  async start(): Promise<{ host: string; port: number }> {
    await this.store.open();
    const address = await this.server.listen();
    this.boundAddress = `${address.host}:${address.port}`;
    return address;
  }

  async stop(): Promise<void> {
    await this.server.close();
  }

  private copiesOf(file: FileRecord): number {
    const key = fileKey(file.clientId, file.name);
    return 1 + this.links.filter((link) => !link.behind.has(key)).length;
  }
}
