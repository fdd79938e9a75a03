import * as path from 'path';
import { ReplicaAddress, replicaRoot } from '../config/cluster-layout';
import { Connection, ConnectionTimeouts } from '../net/connection';
import type { Security } from '../net/security';
import { Reply, ReplicaNodeStatus, formatFence } from '../protocol';
import { clientsHandler } from '../node/handlers/clients';
import { downloadHandler } from '../node/handlers/download';
import { filesHandler } from '../node/handlers/files';
import { inventoryHandler } from '../node/handlers/inventory';
import { listHandler } from '../node/handlers/list';
import { versionsHandler } from '../node/handlers/versions';
import { NodeServer } from '../node/node-server';
import type { Handler } from '../net/session';
import { DiskStore } from '../storage/disk-store';
import { dropVersionHandler } from './drop-version';
import { Fence } from './fence';
import { reserveHandler, revokeHandler, syncedHandler } from './marks';
import { replicaDeleteHandler } from './replica-delete';
import { replicaRenameHandler } from './replica-rename';
import { replicateHandler } from './replicate';
import { chainRelayHandler } from './chain-relay';
import { connectWithRetry } from '../net/tcp';
import { replicaScrubHandler } from './scrub';

export interface ReplicaNodeOptions {
  id: number;
  host: string;
  port: number;
  dataDir: string;
  timeouts: ConnectionTimeouts;
  maxFileSize: number;
  durable?: boolean;
  security?: Security;
  maxConnections?: number;
  /** Bytes of its disk the replica keeps free: a file that would eat into them is refused with NO_SPACE before any byte is sent. */
  minFreeBytes?: number;
  /** Catalog journal lines beyond the snapshot before a new snapshot is written. */
  compactAfterLines?: number;
  /** Files up to this many bytes travel inside their catalog record; 0 turns it off. */
  inlineMaxBytes?: number;
  log: (line: string) => void;
}

/** A hop that does not answer is cut out quickly: the chain goes on without it. */
const HOP_RETRY = { attempts: 2, firstDelayMs: 50, maxDelayMs: 200 };

/** A replica: stores what the primary sends under `<data-dir>/replica<id>`, by generation. */
export class ReplicaNode {
  readonly store: DiskStore;
  readonly fence: Fence;
  private readonly server: NodeServer;
  private readonly startedAt = Date.now();
  private address: ReplicaAddress | undefined;

  constructor(private readonly options: ReplicaNodeOptions) {
    this.store = new DiskStore(path.join(options.dataDir, replicaRoot(options.id)), {
      durable: options.durable,
      log: options.log,
      node: `replica ${options.id}`,
      minFreeBytes: options.minFreeBytes,
      compactAfterLines: options.compactAfterLines,
      inlineMaxBytes: options.inlineMaxBytes,
    });
    const store = this.store;
    this.fence = new Fence({
      get epoch() {
        return store.marks.epoch;
      },
      persist: (epoch) => store.setMarks({ epoch }),
    });
    // Every change a primary asks for applies under the fence; a primary's first
    // contact (its inventory, its scrub) raises it without changing anything.
    const fenced = (handler: Handler): Handler => (session) => this.fence.under(session.epoch, () => handler(session));
    const admitted = (handler: Handler): Handler => async (session) => {
      await this.fence.admit(session.epoch);
      await handler(session);
    };
    // COMMIT follows the primary's catalog record, which may wait on an earlier write of the same name.
    const commitTimeoutMs = Math.max(10 * options.timeouts.idleMs, 60_000);
    this.server = new NodeServer(
      {
        REPLICA: replicateHandler(this.store, this.fence, commitTimeoutMs),
        REPLICA_CHAIN: chainRelayHandler(this.store, this.fence, commitTimeoutMs, (hop, epoch) => this.connectHop(hop, epoch)),
        REPLICA_DELETE: fenced(replicaDeleteHandler(this.store)),
        REPLICA_RENAME: fenced(replicaRenameHandler(this.store)),
        DROP_VERSION: fenced(dropVersionHandler(this.store)),
        INVENTORY: admitted(inventoryHandler(this.store)),
        RESERVE: fenced(reserveHandler(this.store)),
        SYNCED: fenced(syncedHandler(this.store)),
        REVOKE: fenced(revokeHandler(this.store)),
        SCRUB: admitted(replicaScrubHandler(this.store)),
        DOWNLOAD: downloadHandler(this.store),
        DOWNLOAD_VERSION: downloadHandler(this.store),
        LIST: listHandler(this.store),
        FILES: filesHandler(this.store),
        CLIENTS: clientsHandler(this.store),
        VERSIONS: versionsHandler(this.store),
        STATUS: async (session) => session.reply(Reply.OK, this.status()),
      },
      {
        host: options.host,
        port: options.port,
        role: `replica ${options.id}`,
        timeouts: options.timeouts,
        maxFileSize: options.maxFileSize,
        log: options.log,
        security: options.security,
        node: 'replica',
        isRevoked: (keyId) => this.store.marks.revoked.includes(keyId),
        maxConnections: options.maxConnections,
        multiplex: true,
      },
    );
  }

  /** The next replica of a chain, reached as the primary would: its role, its epoch, and a drain timeout below our own idle timeout. */
  private async connectHop(hop: { host: string; port: number }, epoch: number | undefined): Promise<Connection> {
    const timeouts = { ...this.options.timeouts, drainMs: Math.max(1, Math.floor(this.options.timeouts.idleMs / 2)) };
    const conn = await connectWithRetry({ host: hop.host, port: hop.port, timeouts, connectTimeoutMs: 3_000, security: this.options.security, role: 'primary' }, HOP_RETRY);
    if (epoch !== undefined) {
      await conn.writeLine(formatFence(epoch)).catch((error: unknown) => {
        conn.destroy();
        throw error;
      });
    }
    return conn;
  }

  async start(): Promise<ReplicaAddress> {
    const opening = await this.store.open();
    if (opening.redone > 0 || opening.damaged > 0 || opening.orphans > 0) {
      this.options.log(`opened ${this.store.root}: ${opening.redone} interrupted placements finished, ${opening.damaged} versions to get from the primary, ${opening.orphans} files the catalog does not hold moved to .dfs/orphans`);
    }
    const { host, port } = await this.server.listen();
    this.address = { id: this.options.id, host, port };
    return this.address;
  }

  async stop(): Promise<void> {
    await this.server.close();
    await this.store.close();
  }

  status(): ReplicaNodeStatus {
    const files = this.store.all();
    return {
      role: 'replica',
      id: this.options.id,
      address: `${this.address?.host ?? this.options.host}:${this.address?.port ?? this.options.port}`,
      files: files.length,
      bytes: files.reduce((sum, file) => sum + file.size, 0),
      uptimeMs: Date.now() - this.startedAt,
      generation: this.store.marks.highest,
      synced: this.store.marks.synced,
      epoch: this.store.marks.epoch,
    };
  }
}
