import * as path from 'path';
import { PRIMARY_ROOT, ReplicaAddress, ReplicationMode, WriteQuorum, replicasRequired } from '../config/cluster-layout';
import { resolveReplication } from './replica-transfer';
import { ConnectionTimeouts } from '../net/connection';
import type { Security } from '../net/security';
import { DEFAULT_RETRY, RetryPolicy } from '../net/tcp';
import { clientsHandler } from '../node/handlers/clients';
import { DownloadHooks, DownloadSource, downloadHandler } from '../node/handlers/download';
import { filesHandler } from '../node/handlers/files';
import { listHandler } from '../node/handlers/list';
import { versionsHandler } from '../node/handlers/versions';
import { NodeServer } from '../node/node-server';
import { DfsError, FileRecord, HaStatus, InventoryHeader, Reply, VersionRecord } from '../protocol';
import type { Duplex } from 'stream';
import type { CommitPoint } from './commit-point';
import { DiskStore } from '../storage/disk-store';
import { KeyLock, fileKey } from '../storage/key-lock';
import { CatchUp, CatchUpHost } from './catch-up';
import { changesHandler } from './changes';
import { repairVersion } from './copy-from-replica';
import { deleteHandler } from './delete';
import { renameHandler } from './rename';
import { GenerationIssuer } from './generation-issuer';
import { Readiness } from './readiness';
import { ReplicaLink } from './replica-link';
import { restoreHandler } from './restore';
import { revokeHandler } from './revoke';
import { Scrubber } from './scrub';
import { statusHandler } from './status';
import { uploadHandler } from './upload';
import { WriteGate } from './write-gate';

export const DEFAULT_KEEP_VERSIONS = 5;

export interface PrimaryNodeOptions {
  host: string;
  port: number;
  dataDir: string;
  replicas: ReplicaAddress[];
  writeQuorum: WriteQuorum;
  /** How uploads reach the replicas; fan-out when unset. */
  replication?: ReplicationMode;
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
  /** Bytes of its disk the primary keeps free: an upload that would eat into them is refused with NO_SPACE before SEND_FILE. */
  minFreeBytes?: number;
  /** Bytes each client may store in all (older versions included); undefined means no quota. */
  quotaBytes?: number;
  /** Older versions kept of each file on every copy; 0 keeps none. */
  keepVersions?: number;
  /** Catalog journal lines beyond the snapshot before a new snapshot is written. */
  compactAfterLines?: number;
  /** Files up to this many bytes travel inside their catalog record; 0 turns it off. */
  inlineMaxBytes?: number;
  log: (line: string) => void;
  /** Elected through etcd: the leadership this node serves under. Without it, it is the only primary. */
  leadership?: LeadershipTerm;
}

/** What a primary elected through etcd is given by whoever runs the election (server/ha). */
export interface LeadershipTerm {
  /** Its address, as clients and standbys reach it: the listener is the election's, not this node's. */
  address: { host: string; port: number };
  epoch: number;
  commitPoint: CommitPoint;
  /** Runs once enough replicas were compared and before anything is served: the commit records are settled here. */
  takeOver(node: PrimaryNode): Promise<void>;
  /** Who leads and who stands by, for STATUS. */
  describe(): Promise<HaStatus>;
}

/** The primary: serves clients, stores under `<data-dir>/servidor`, and coordinates the replicas. */
export class PrimaryNode implements CatchUpHost {
  readonly store: DiskStore;
  readonly links: ReplicaLink[];
  readonly locks = new KeyLock();
  readonly issuer: GenerationIssuer;
  readonly gate: WriteGate;
  readonly readiness: Readiness;
  readonly keepVersions: number;
  readonly replication: 'fanout' | 'pipeline';
  readonly catchUp: CatchUp;
  readonly scrubber: Scrubber;
  private readonly server: NodeServer;
  private readonly startedAt = Date.now();
  private boundAddress = '';
  /** The completeness this catalog had when the primary started: all it may claim until every replica was compared. */
  private recoveredMark = -1;
  /** The highest generation any replica said was reserved or recorded. */
  private learnedFloor = 0;
  private takingOver = false;
  private readonly repairs = new Map<string, Promise<void>>();
  /** CHANGES knows every delete above this: it started (or took over) here, and rises as tombstones are dropped. */
  private deletesKnownAbove = Number.MAX_SAFE_INTEGER;

  constructor(private readonly options: PrimaryNodeOptions) {
    // Fails at start-up, not at the first upload, when the quorum cannot be met.
    replicasRequired(options.writeQuorum, options.replicas.length);
    this.keepVersions = options.keepVersions ?? DEFAULT_KEEP_VERSIONS;
    this.replication = resolveReplication(options.replication, options.replicas.map((replica) => replica.host));
    this.store = new DiskStore(path.join(options.dataDir, PRIMARY_ROOT), {
      durable: options.durable,
      log: options.log,
      authoritative: true,
      node: 'the primary',
      minFreeBytes: options.minFreeBytes,
      compactAfterLines: options.compactAfterLines,
      inlineMaxBytes: options.inlineMaxBytes,
    });
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
          epoch: options.leadership ? () => options.leadership!.epoch : undefined,
        }),
    );
    this.issuer = new GenerationIssuer({
      recordLocally: (through) => this.store.setMarks({ reserved: Math.max(through, this.store.marks.reserved) }),
      recordOnReplicas: (through) => this.reserveOnReplicas(through),
    });
    this.gate = new WriteGate(this.store, options.quotaBytes, this.keepVersions);
    this.readiness = new Readiness(Math.max(options.timeouts.headerMs, 1_000));
    this.catchUp = new CatchUp(this, options.syncIntervalMs ?? 5_000);
    this.scrubber = new Scrubber(this, this.catchUp, options.scrubIntervalMs ?? 0);
    const ready = (): Promise<void> => this.readiness.whenReady();
    const downloads: DownloadHooks = {
      resolve: (clientId, name, generation) => this.servableCopy(clientId, name, generation),
      onDamaged: (record) => this.repairInBackground(record),
    };
    this.server = new NodeServer(
      {
        UPLOAD: uploadHandler(this),
        UPLOAD_IF: uploadHandler(this),
        LIST: listHandler(this.store, ready),
        FILES: filesHandler(this.store, (file) => this.copiesOf(file), ready),
        CHANGES: changesHandler(
          {
            names: (clientId) => this.store.catalog.index.names(clientId),
            settledThrough: () => this.issuer.settledThrough,
            deletesKnownAbove: () => this.deletesKnownAbove,
          },
          ready,
        ),
        CLIENTS: clientsHandler(this.store, ready),
        VERSIONS: versionsHandler(this.store, ready),
        DOWNLOAD: downloadHandler(this.store, downloads),
        DOWNLOAD_VERSION: downloadHandler(this.store, downloads),
        RESTORE: restoreHandler(this),
        SCRUB: async (session) => {
          await ready();
          await session.reply(Reply.OK, await this.scrubber.run());
        },
        DELETE: deleteHandler(this),
        DELETE_IF: deleteHandler(this),
        RENAME: renameHandler(this),
        RENAME_IF: renameHandler(this),
        REVOKE: revokeHandler(this),
        STATUS: statusHandler(this, () => this.boundAddress, this.startedAt, options.leadership ? () => options.leadership!.describe() : undefined, () => this.server.connections),
      },
      {
        host: options.host,
        port: options.port,
        role: 'primary',
        node: 'primary',
        isRevoked: (keyId) => this.store.marks.revoked.includes(keyId),
        timeouts: options.timeouts,
        maxFileSize: options.maxFileSize,
        log: options.log,
        security: options.security,
        maxConnections: options.maxConnections,
        // Our clients run every request over one connection (DfsClient); the report's never ask.
        multiplex: true,
      },
    );
  }

  log(line: string): void {
    this.options.log(line);
  }

  get commitPoint(): CommitPoint | undefined {
    return this.options.leadership?.commitPoint;
  }

  get epoch(): number | undefined {
    return this.options.leadership?.epoch;
  }

  /** Serves a connection accepted by someone else (the election's listener). */
  handle(stream: Duplex): Promise<void> {
    return this.server.handle(stream);
  }

  /** Generations below this were issued by an earlier leader: new ones start above it. */
  raiseFloor(generation: number): void {
    this.learnedFloor = Math.max(this.learnedFloor, generation);
  }

  replicasRequired(): number {
    return replicasRequired(this.options.writeQuorum, this.links.length);
  }

  /**
   * How many replicas the primary must compare its catalog with before it serves: as
   * many as guarantee that one of them holds every acknowledged write (any set this
   * large meets every set of `required` replicas). With a write quorum of 0 nothing
   * short of every replica would do.
   */
  replicasToRecover(): number {
    const count = this.links.length;
    return count === 0 ? 0 : Math.min(count, count - this.replicasRequired() + 1);
  }

  afterWrite(someBehind: boolean): void {
    if (someBehind) {
      this.catchUp.requestSoon();
    }
  }

  completeThrough(): number {
    if (!this.issuer.isStarted) {
      return this.recoveredMark;
    }
    const settled = this.issuer.settledThrough;
    // Until every replica was compared, one of them may hold a version (committed by an
    // earlier primary, never acknowledged) that this catalog has not seen.
    return this.links.every((link) => link.merged) ? settled : Math.min(this.recoveredMark, settled);
  }

  merged(link: ReplicaLink, header: InventoryHeader): void {
    this.learnedFloor = Math.max(this.learnedFloor, header.reserved, header.highest);
    // The replica holds the cluster's latest state of every name at or below what it is
    // certified through, and this catalog now holds at least what it holds: so this
    // catalog is complete through that too, and a stale copy met later, of a name
    // deleted at or below it, is known to be dead.
    this.recoveredMark = Math.max(this.recoveredMark, header.synced);
    if (this.readiness.isReady) {
      // Only a reservation this primary did not make (another primary's) raises the floor.
      if (this.learnedFloor > Math.max(this.issuer.reserved, this.issuer.highest)) {
        this.issuer.start(this.learnedFloor);
      }
      return;
    }
    if (this.links.filter((candidate) => candidate.merged).length >= this.replicasToRecover()) {
      this.finishRecovery();
      return;
    }
    this.readiness.description = this.recoveryProgress();
  }

  /** What a recovering primary waits for, in words for STATUS and refusals. */
  private recoveryProgress(): string {
    const missing = this.links.filter((link) => !link.merged).map((link) => `${link.label}: ${link.lastError ?? 'not asked yet'}`);
    return `it must compare its catalog with ${this.replicasToRecover()} of the ${this.links.length} replicas to know every acknowledged version, and has reached ${this.links.length - missing.length} (not yet: ${missing.join('; ')}); start the missing replicas`;
  }

  async passEnded(): Promise<void> {
    if (!this.readiness.isReady) {
      this.readiness.description = this.recoveryProgress();
      this.catchUp.requestSoon(250);
      return;
    }
    const completeThrough = this.completeThrough();
    const replicas = Object.fromEntries(this.links.map((link) => [String(link.address.id), link.synced]));
    const marks = this.store.marks;
    if (completeThrough !== marks.completeThrough || JSON.stringify(replicas) !== JSON.stringify(marks.replicas)) {
      await this.store.setMarks({ completeThrough, replicas });
    }
    await this.dropAppliedTombstones();
  }

  async start(): Promise<{ host: string; port: number }> {
    const opening = await this.store.open();
    if (opening.redone > 0 || opening.damaged > 0 || opening.orphans > 0) {
      this.log(`opened ${this.store.root}: ${opening.redone} interrupted placements finished, ${opening.damaged} versions to repair from the replicas, ${opening.orphans} files the catalog does not hold moved to .dfs/orphans`);
    }
    this.recoveredMark = this.store.marks.completeThrough;
    this.presumeBehind();
    this.readiness.description = this.recoveryProgress();
    const address = this.options.leadership?.address ?? (await this.server.listen());
    this.boundAddress = `${address.host}:${address.port}`;
    if (this.links.length === 0) {
      this.finishRecovery();
    }
    this.catchUp.start();
    this.scrubber.start();
    return address;
  }

  async stop(): Promise<void> {
    this.catchUp.stop();
    this.scrubber.stop();
    await this.server.close();
    await Promise.all(this.repairs.values());
    await this.store.close();
    // Last: whatever was still running (a repair reading from a replica) needed them.
    for (const link of this.links) {
      link.close();
    }
  }

  private finishRecovery(): void {
    const leadership = this.options.leadership;
    if (!leadership) {
      this.becomeReady();
      return;
    }
    if (this.takingOver) {
      return;
    }
    // The commit records in etcd say what an earlier leader committed: settled before
    // anything is served, with the generations it issued out of reach.
    this.takingOver = true;
    this.readiness.description = 'settling what the previous leader committed (its records in etcd)';
    leadership
      .takeOver(this)
      .then(
        () => this.becomeReady(),
        (error: unknown) => {
          this.log(`taking over: ${(error as Error).message}; trying again`);
          this.readiness.description = `settling what the previous leader committed failed (${(error as Error).message}); trying again`;
          this.catchUp.requestSoon(500);
        },
      )
      .finally(() => (this.takingOver = false));
  }

  /** Starts issuing generations above every one known, so an earlier leader's are never issued again. */
  startIssuing(): number {
    const floor = Math.max(this.learnedFloor, this.store.marks.reserved, this.store.marks.highest);
    if (!this.issuer.isStarted || floor > Math.max(this.issuer.reserved, this.issuer.highest)) {
      this.issuer.start(floor);
    }
    return floor;
  }

  private becomeReady(): void {
    const floor = this.startIssuing();
    // What an earlier life of the primary (or another leader) deleted at or below the floor may be forgotten.
    this.deletesKnownAbove = floor;
    this.readiness.markReady();
    this.log(`ready: catalog compared with ${this.links.filter((link) => link.merged).length} of ${this.links.length} replicas; new generations start above ${floor}`);
  }

  /**
   * After a restart, before a replica answers: it lacks at least every name changed
   * since it last acknowledged being complete (what this primary recorded of it).
   */
  private presumeBehind(): void {
    for (const link of this.links) {
      const synced = this.store.marks.replicas[String(link.address.id)] ?? -1;
      link.synced = synced;
      for (const { clientId, name, state } of this.store.catalog.index.all()) {
        const latest = state.versions[0] ?? state.tombstone;
        if (latest && latest.generation > synced) {
          link.markBehind(fileKey(clientId, name));
        }
      }
    }
  }

  /** Records `through` on as many replicas as the write quorum requires; the others are told in the background. */
  private reserveOnReplicas(through: number): Promise<void> {
    const required = this.replicasRequired();
    return new Promise((resolve, reject) => {
      let ok = 0;
      const failures: string[] = [];
      if (required === 0) {
        resolve();
      }
      for (const link of this.links) {
        link.reserve(through).then(
          () => {
            ok++;
            if (ok === required) {
              resolve();
            }
          },
          (error: Error) => {
            failures.push(`${link.label}: ${error.message}`);
            if (this.links.length - failures.length < required) {
              reject(
                new DfsError(
                  'QUORUM',
                  `cannot reserve new generations: ${ok} of ${this.links.length} replicas answered, ${required} required (${failures.join('; ')}). Nothing was stored. Start the missing replicas or lower the write quorum.`,
                ),
              );
            }
          },
        );
      }
    });
  }

  /** A tombstone can go once every replica acknowledged being complete past it, and this catalog too. */
  private async dropAppliedTombstones(): Promise<void> {
    const everyone = Math.min(this.store.marks.completeThrough, ...this.links.map((link) => link.synced));
    for (const { clientId, name, state } of [...this.store.catalog.index.all()]) {
      if (state.tombstone && state.tombstone.generation <= everyone) {
        this.deletesKnownAbove = Math.max(this.deletesKnownAbove, state.tombstone.generation);
        await this.store.dropVersion(clientId, name, state.tombstone.generation, true);
      }
    }
  }

  /**
   * The copy to serve. One unchanged since it was placed or last checked streams at
   * once (the download handler checks its hash as it sends it, for bit rot); one
   * written over since is hashed first; a damaged one is rewritten from a replica first.
   */
  private async servableCopy(clientId: string, name: string, generation?: number): Promise<DownloadSource> {
    await this.readiness.whenReady();
    for (;;) {
      const state = this.store.state(clientId, name);
      const record = generation === undefined ? state?.versions[0] : state?.versions.find((version) => version.generation === generation);
      if (!record) {
        throw new DfsError(
          'NOT_FOUND',
          generation === undefined ? `${name} is not stored for client ${clientId}` : `generation ${generation} of ${name} is not kept for client ${clientId} (dfs versions lists the kept ones)`,
        );
      }
      if (this.store.hasBytes(clientId, name, record.generation)) {
        const opened = await this.store.openRead(clientId, name, record.generation).catch((error: unknown) => {
          // Missing on disk (now marked damaged): repaired below, like a copy found damaged before.
          if (error instanceof DfsError && error.code === 'CHECKSUM') {
            return undefined;
          }
          throw error;
        });
        if (opened?.unchanged) {
          return opened;
        }
        // Written over since it was placed or checked (or never fingerprinted): hash it before the first byte goes.
        opened?.body.destroy();
        if (opened && (await this.store.verify(clientId, name, record.generation))) {
          return this.store.openRead(clientId, name, record.generation);
        }
      }
      // A delete or an overwrite that committed while this was being checked moves or
      // removes those bytes: that is no damage, the name simply has a newer state.
      if (this.store.state(clientId, name) !== state) {
        continue;
      }
      this.log(`DOWNLOAD ${clientId}/${name}: the primary's copy of generation ${record.generation} is missing or fails its checksum; copying it from a replica`);
      if (!(await repairVersion(this, record))) {
        throw new DfsError('CHECKSUM', `the stored copy of ${name} is damaged and no replica holds a good one`);
      }
      return this.store.openRead(clientId, name, record.generation);
    }
  }

  /** One repair per damaged version at a time, so a burst of downloads of it does not copy it once each. */
  private repairInBackground(record: VersionRecord): void {
    const key = `${fileKey(record.clientId, record.name)}#${record.generation}`;
    if (this.repairs.has(key)) {
      return;
    }
    this.log(`DOWNLOAD ${record.clientId}/${record.name}: the primary's copy of generation ${record.generation} failed its checksum while being sent; copying it from a replica`);
    const repair = repairVersion(this, record)
      .then((repaired) => {
        if (!repaired) {
          this.log(`repair: no replica holds a good copy of ${record.clientId}/${record.name} generation ${record.generation}`);
        }
      })
      .catch((error: unknown) => this.log(`repair of ${record.clientId}/${record.name} generation ${record.generation} failed: ${(error as Error).message}`))
      .finally(() => this.repairs.delete(key));
    this.repairs.set(key, repair);
  }

  private copiesOf(file: FileRecord): number {
    const key = fileKey(file.clientId, file.name);
    const here = this.store.hasBytes(file.clientId, file.name, file.generation) ? 1 : 0;
    return here + this.links.filter((link) => !link.behind.has(key)).length;
  }
}
