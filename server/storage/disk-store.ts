import { randomBytes } from 'crypto';
import { constants, promises as fsPromises } from 'fs';
import {
  ClientRecord,
  DfsError,
  FileRecord,
  InventoryHeader,
  InventoryRecord,
  VersionInfo,
  VersionRecord,
} from '../protocol';
import { caseClash } from './case-folding';
import { AppliedChange, CatalogChange, CatalogMarks } from './catalog';
import { ContainmentError } from './contained-fs';
import { DamageMarks } from './damage';
import { DiskFailures } from './disk-failures';
import { CATALOG_DIR, DiskLayout, STATE_DIR, TMP_DIR, VERSIONS_DIR } from './disk-layout';
import { DiskRecovery } from './disk-recovery';
import { hashHandle } from './file-hash';
import { JournalCatalog } from './journal-catalog';
import { LEGACY_CHECKSUM_LOG, LEGACY_JOINED_MARKER, LegacyFile, hasClientFolders, readLegacyFiles } from './legacy-layout';
import { ApplyOutcome, LEGACY_GENERATION, NameState, applyRecord, currentOf, isNewer, liveOf, sameVersion } from './name-state';
import { NameLock } from './name-lock';
import { Placement } from './placement';
import { PlacementFlusher, UnconfirmedPlacement } from './placement-flusher';
import { DiskStagedWrite } from './staged-write';
import type { OpenedCopy, StagedWrite, Store, StoreOpening } from './store';

/** A change the catalog recorded (so it stands) whose bytes could not be put in place on this node. */
export class PlacementError extends DfsError {
  readonly recorded = true;
}

export interface DiskStoreOptions {
  /** fsync data, folders and the catalog before a commit returns; off only for throwaway benchmark baselines. */
  durable?: boolean;
  log?: (line: string) => void;
  /**
   * A primary's store: when it upgrades a data folder of release 0.1 that was in step
   * with its replicas (`.dfs/joined`), its files were the cluster's, so they get fresh
   * generations that win over the replicas' copies, as that release's catch-up did.
   */
  authoritative?: boolean;
  /** How messages name this node ("the primary", "replica 2"): a full disk is reported with it. */
  node?: string;
  /** Bytes of the disk a new file must leave free (--min-free); refused with NO_SPACE otherwise. */
  minFreeBytes?: number;
  /** Catalog journal lines beyond the snapshot before a new snapshot is written. */
  compactAfterLines?: number;
  /**
   * Files of at most this many bytes travel inside their catalog record (MinIO keeps
   * small objects inline with their metadata the same way): one journal sync, shared by
   * every concurrent commit, makes bytes and record durable together. 0 turns it off.
   */
  inlineMaxBytes?: number;
  /** How long a placed small file may wait for its own sync and its folder's (batched with others). */
  confirmDelayMs?: number;
}

/** A measure of free space stands this long for assertRoomFor ... */
const ROOM_MEASURE_MS = 1000;
/** ... while it leaves at least this much beyond the reserve, whatever else fills the disk meanwhile. */
const ROOM_MARGIN_BYTES = 256 * 1024 * 1024;

/** Files up to this size travel inside their catalog record unless the store is told otherwise. */
export const DEFAULT_INLINE_MAX_BYTES = 64 * 1024;

interface LegacyUpgrade {
  files: LegacyFile[];
  records: VersionRecord[];
  authoritative: boolean;
  changes: CatalogChange[];
}

/**
 * A node's storage on the local disk. The catalog (`.dfs/catalog`) says which versions
 * the node holds; the files follow it: the current version of each name at
 * `<root>/<client>/<name>`, older versions at `.dfs/versions/<client>/<generation>`.
 * A change is recorded in the catalog first (that is the node's commit), naming the
 * staged bytes, and placed after; a crash in between is finished at the next open.
 * Every file operation goes through a ContainedFs: none follows a symbolic link or
 * leaves the data folder.
 */
export class DiskStore implements Store {
  readonly root: string;
  readonly catalog: JournalCatalog;
  private readonly layout: DiskLayout;
  private readonly damage = new DamageMarks();
  private readonly placement: Placement;
  /** Syncs placed small files and their folders in batches, off the answer's path. */
  private readonly flusher: PlacementFlusher;
  private readonly locks = new NameLock();
  private raising: Promise<void> = Promise.resolve();
  /** New at every open: a certification for an inventory of an earlier opening is refused. */
  session = '';
  /** Probed at open(): names differing only in case are then one file on disk. */
  private caseInsensitive = false;
  private readonly durable: boolean;
  private readonly authoritative: boolean;
  private readonly log: (line: string) => void;
  private readonly failures: DiskFailures;
  private readonly minFreeBytes: number;
  private readonly inlineMaxBytes: number;
  /** The last measure of free space, and the bytes admitted since (see assertRoomFor). */
  private room: { free: number; measuredAt: number; admitted: number } | undefined;

  /** `root` must be the real path of the data folder (the CLI resolves it). */
  constructor(root: string, options: DiskStoreOptions = {}) {
    this.root = root;
    this.durable = options.durable ?? true;
    this.authoritative = options.authoritative ?? false;
    this.log = options.log ?? (() => undefined);
    this.failures = new DiskFailures(options.node ?? 'this node', root);
    this.minFreeBytes = options.minFreeBytes ?? 0;
    this.inlineMaxBytes = options.inlineMaxBytes ?? DEFAULT_INLINE_MAX_BYTES;
    this.layout = new DiskLayout(root, this.durable);
    this.placement = new Placement(
      this.layout,
      this.damage,
      (clientId, name, generation, file) => this.placed(clientId, name, generation, file),
      (clientId, name, generation) => this.catalog.keepsBytes(clientId, name, generation),
      (placement) => this.flusher.add(placement),
      this.durable,
    );
    this.flusher = new PlacementFlusher({
      durable: this.durable,
      syncFolder: (folder) => this.layout.syncer.sync(folder),
      confirm: (placement, fingerprint) => {
        if (this.holds(placement)) {
          this.catalog.note([{ clientId: placement.clientId, name: placement.name, generation: placement.generation, fingerprint }]);
        }
      },
      failed: (placement, error) => {
        if (this.holds(placement)) {
          this.damage.mark(placement.clientId, placement.name, placement.generation, `its placed file could not be synced: ${error.message}`);
        }
        this.log(`${placement.clientId}/${placement.name} generation ${placement.generation}: its placed file could not be synced (${error.message}); the bytes its catalog record carries stay its durable copy`);
      },
      delayMs: options.confirmDelayMs,
    });
    this.catalog = new JournalCatalog({ files: this.layout.fs, dir: CATALOG_DIR }, { durable: this.durable, log: this.log, failures: this.failures, compactAfterLines: options.compactAfterLines });
  }

  get marks(): Readonly<CatalogMarks> {
    return this.catalog.marks;
  }

  async open(): Promise<StoreOpening> {
    try {
      return await this.openFiles();
    } catch (error) {
      await this.catalog.close().catch(() => undefined);
      await this.layout.fs.close();
      throw error;
    }
  }

  private async openFiles(): Promise<StoreOpening> {
    const files = this.layout.fs;
    await files.open();
    for (const folder of [STATE_DIR, TMP_DIR, VERSIONS_DIR]) {
      await files.mkdirs(folder).catch((error: unknown) => {
        throw error instanceof ContainmentError
          ? new DfsError('STORAGE', `${files.absolute(folder)} is a symbolic link: this node keeps its own state only in real folders inside its data folder; replace it with a folder (or move it aside) and start again`)
          : error;
      });
    }
    this.damage.clearAll();
    this.layout.forgetFolders();
    this.session = randomBytes(8).toString('hex');
    this.caseInsensitive = await this.probeCaseInsensitive();
    const report: StoreOpening = { redone: 0, damaged: 0, orphans: 0 };
    let upgrade: LegacyUpgrade | undefined;
    const opening = await this.catalog.open(async () => {
      upgrade = await this.legacyUpgrade();
      return upgrade?.changes ?? [];
    });
    if (upgrade) {
      await this.finishUpgrade(upgrade);
      report.upgraded = { files: upgrade.files.length, authoritative: upgrade.authoritative };
    }
    await new DiskRecovery(this.layout, this.catalog, this.damage, this.log, this.durable).settle(opening.staged, opening.inline, report);
    // Whatever is still staged belongs to a transfer that died with the previous process.
    for (const entry of await files.readdir(TMP_DIR)) {
      if (!entry.isSymbolicLink() && !entry.isDirectory()) {
        await files.unlink(`${TMP_DIR}/${entry.name}`).catch(() => undefined);
      }
    }
    if (this.durable) {
      await files.syncFolder(TMP_DIR);
      await files.syncFolder('');
    }
    report.damaged = this.damage.size;
    return report;
  }

  async close(): Promise<void> {
    // Placed small files are synced and confirmed before the catalog closes: a clean stop
    // leaves nothing for the next start to write again.
    await this.flusher.flush();
    await this.catalog.close();
    await this.layout.fs.close();
  }

  /** `size`, when known before the first byte, lets a small file's bytes travel inside its record. */
  async stage(size?: number): Promise<DiskStagedWrite> {
    const file = `${TMP_DIR}/${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    const handle = await this.layout.fs.openFile(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL).catch((error: Error) => {
      throw this.failures.of(error, `stage bytes under ${this.layout.fs.absolute(TMP_DIR)}`);
    });
    const inline = size !== undefined && size <= this.inlineMaxBytes;
    return new DiskStagedWrite(file, handle, this.durable, this.layout.syncer, this.layout.fs, this.failures, inline);
  }

  /**
   * Refuses, before any byte is sent, a file of `size` bytes that would leave the disk
   * with less than the reserve: a disk that fills mid-transfer costs the whole transfer,
   * and a little room must stay for the catalog and for deletes.
   */
  async assertRoomFor(size: number): Promise<void> {
    // Far from the reserve, a recent measure less what was admitted since will do (one
    // statfs per upload was a few per cent of a small upload's CPU); near it, or to
    // refuse, the disk is asked every time.
    const now = Date.now();
    const room = this.room;
    if (room && now - room.measuredAt < ROOM_MEASURE_MS && room.free - room.admitted - size - this.minFreeBytes >= ROOM_MARGIN_BYTES) {
      room.admitted += size;
      return;
    }
    const free = await freeBytes(this.root);
    this.room = free === undefined ? undefined : { free, measuredAt: now, admitted: size };
    if (free !== undefined && free - size < this.minFreeBytes) {
      throw this.failures.noRoom(free, size, this.minFreeBytes);
    }
  }

  async commitVersion(staged: StagedWrite | undefined, record: VersionRecord, keep: number, onRecorded?: () => Promise<void>): Promise<ApplyOutcome> {
    if (staged !== undefined && !(staged instanceof DiskStagedWrite)) {
      throw new DfsError('INTERNAL', 'staged write belongs to another store');
    }
    const { clientId, name, generation } = record;
    this.layout.live(clientId, name);
    try {
      return await this.locks.run(clientId, name, async () => {
        const before = this.catalog.index.get(clientId, name);
        if (before?.versions.some((version) => sameVersion(version, record))) {
          // Already recorded: at most its bytes are missing, and these are them.
          if (staged && this.isDamaged(clientId, name, generation)) {
            await staged.seal();
            await this.placement.place(clientId, name, before, before, { generation, staged });
          }
          return 'stale';
        }
        if (applyRecord(before, record, keep).outcome === 'stale') {
          return 'stale';
        }
        // A file where this name needs a folder, or files under this name: whichever
        // is newer wins, on every node alike, whatever order the changes arrive in.
        const displaced: VersionRecord[] = [];
        for (const other of this.structureConflicts(clientId, name)) {
          const live = liveOf(this.catalog.index.get(clientId, other))!;
          if (isNewer(live, record)) {
            return 'stale';
          }
          displaced.push(tombstone(clientId, other, generation, record.mtimeMs));
        }
        const othersBefore = displaced.map((other) => this.catalog.index.get(clientId, other.name));
        const recording = (own: CatalogChange): Promise<AppliedChange[]> => this.catalog.commit([...displaced.map((other) => ({ kind: 'record' as const, record: other, keep })), own]);
        let applied: AppliedChange[];
        let sealing: PromiseSettledResult<void> = { status: 'fulfilled', value: undefined };
        if (staged?.inline) {
          // The record carries the bytes: it need not wait for the staged file's sync,
          // which only has to finish before the file is renamed into place.
          const [sealed, recorded] = await Promise.allSettled([staged.seal(), recording({ kind: 'record', record, keep, inline: staged.inlineBytes() })]);
          if (recorded.status === 'rejected') {
            throw recorded.reason;
          }
          applied = recorded.value;
          sealing = sealed;
        } else {
          await staged?.seal();
          applied = await recording({ kind: 'record', record, keep, staged: staged?.basename });
        }
        const mine = applied[applied.length - 1];
        const placing = this.placeRecorded(clientId, name, generation, async () => {
          if (sealing.status === 'rejected') {
            throw sealing.reason;
          }
          for (const [index, other] of displaced.entries()) {
            await this.placement.place(clientId, other.name, othersBefore[index], this.catalog.index.get(clientId, other.name));
          }
          await this.placement.place(clientId, name, before, mine.after, staged ? { generation, staged } : undefined);
        });
        await alongside(placing, onRecorded);
        return mine.outcome;
      });
    } finally {
      await staged?.abort();
    }
  }

  async commitTombstone(record: VersionRecord, onRecorded?: () => Promise<void>): Promise<ApplyOutcome> {
    this.layout.live(record.clientId, record.name);
    return this.locks.run(record.clientId, record.name, async () => {
      const before = this.catalog.index.get(record.clientId, record.name);
      if (applyRecord(before, record, 0).outcome === 'stale') {
        return 'stale';
      }
      const [applied] = await this.catalog.commit([{ kind: 'record', record, keep: 0 }]);
      const placing = this.placeRecorded(record.clientId, record.name, record.generation, () => this.placement.place(record.clientId, record.name, before, applied.after));
      await alongside(placing, onRecorded);
      return applied.outcome;
    });
  }

  /**
   * Renames a stored file: `tombstone` deletes its source and `record` (same client,
   * same generation, the source's bytes) becomes the destination's current version,
   * both in one catalog record, so a crash leaves this node with the old state or the
   * new one, never both names or neither. The bytes are not copied: the source's file
   * is linked into the staging folder (synced) before the record, which names the
   * link as its staged bytes; after the record the link is renamed into place and the
   * source's file removed, as for any staged bytes, and a crash in between is finished
   * at the next open. Throws NOT_FOUND unless this node holds generation
   * `sourceGeneration` of the source as its current version, intact. A rename already
   * applied is 'stale', so a retry succeeds.
   */
  async commitRename(sourceGeneration: number, tombstone: VersionRecord, record: VersionRecord, keep: number, onRecorded?: () => Promise<void>): Promise<ApplyOutcome> {
    const { clientId, name: to, generation } = record;
    const from = tombstone.name;
    const source = this.layout.live(clientId, from);
    this.layout.live(clientId, to);
    if (tombstone.clientId !== clientId || tombstone.generation !== generation || !tombstone.deleted) {
      throw new DfsError('INTERNAL', `a rename's tombstone and version must share client and generation (${from} -> ${to})`);
    }
    return this.locks.runAll(clientId, [from, to], async () => {
      const fromBefore = this.catalog.index.get(clientId, from);
      const toBefore = this.catalog.index.get(clientId, to);
      // Applied already (generations are never reused): a retry, or a replica told twice.
      if (toBefore?.versions.some((version) => version.generation === generation) && (fromBefore?.tombstone?.generation ?? -1) >= generation) {
        return 'stale';
      }
      const live = liveOf(fromBefore);
      if (!live || live.generation !== sourceGeneration || this.damage.has(clientId, from, live.generation)) {
        throw new DfsError(
          'NOT_FOUND',
          `this node does not hold generation ${sourceGeneration} of ${from} intact (it holds ${live ? `generation ${live.generation}${this.damage.has(clientId, from, live.generation) ? ', damaged' : ''}` : 'no current version'}); nothing was renamed here`,
        );
      }
      if (live.sha256 !== record.sha256 || live.size !== record.size) {
        throw new DfsError('INTERNAL', `the rename of ${from} to ${to} names bytes other than generation ${sourceGeneration}'s`);
      }
      if (applyRecord(toBefore, record, keep).outcome !== 'current') {
        throw new DfsError('CONFLICT', `${to} holds a state newer than generation ${generation} on this node; nothing was renamed here`);
      }
      const clash = this.structureConflicts(clientId, to).find((other) => other !== from);
      if (clash !== undefined) {
        throw new DfsError('CONFLICT', `cannot rename ${from} to ${to}: ${clash.length < to.length ? `${clash} is a file, not a folder` : `a folder of that name holds files (such as ${clash})`}; nothing was renamed`);
      }
      const staged = `${TMP_DIR}/${Date.now().toString(36)}-${randomBytes(6).toString('hex')}-rename`;
      const bytes = { file: staged, placed: false, markPlaced(): void { bytes.placed = true; } };
      try {
        await this.layout.fs.link(source, staged).catch((error: Error) => {
          throw this.failures.of(error, `link ${from} into ${this.layout.fs.absolute(TMP_DIR)} to rename it`);
        });
        if (this.durable) {
          await this.layout.fs.syncFolder(TMP_DIR);
        }
        const [fromApplied, toApplied] = await this.catalog.commit(
          [
            { kind: 'record', record: tombstone, keep: 0 },
            { kind: 'record', record, keep, staged: staged.slice(staged.lastIndexOf('/') + 1) },
          ],
          { atomic: true },
        );
        const placing = this.placeRecorded(clientId, to, generation, async () => {
          await this.placement.place(clientId, to, toBefore, toApplied.after, { generation, staged: bytes });
          await this.placement.place(clientId, from, fromBefore, fromApplied.after);
        });
        await alongside(placing, onRecorded);
        return toApplied.outcome;
      } finally {
        if (!bytes.placed) {
          await this.layout.fs.unlink(staged).catch(() => undefined);
        }
      }
    });
  }

  async dropVersion(clientId: string, name: string, generation: number, tombstone = false): Promise<void> {
    this.layout.live(clientId, name);
    await this.locks.run(clientId, name, async () => {
      const before = this.catalog.index.get(clientId, name);
      const holds = tombstone ? before?.tombstone?.generation === generation : before?.versions.some((version) => version.generation === generation);
      if (!holds) {
        return;
      }
      const [applied] = await this.catalog.commit([{ kind: 'drop', clientId, name, generation, tombstone }]);
      await this.placeRecorded(clientId, name, generation, () => this.placement.place(clientId, name, before, applied.after));
    });
  }

  async setMarks(marks: Partial<Omit<CatalogMarks, 'nodeId' | 'highest'>>): Promise<void> {
    await this.catalog.commit([{ kind: 'marks', marks }]);
  }

  /** Adds key ids to the revoked ones, durably; the list only grows. */
  revoke(keyIds: readonly string[]): Promise<void> {
    const next = this.raising.then(async () => {
      const fresh = keyIds.filter((keyId) => !this.marks.revoked.includes(keyId));
      if (fresh.length > 0) {
        await this.setMarks({ revoked: [...this.marks.revoked, ...fresh] });
      }
    });
    this.raising = next.catch(() => undefined);
    return next;
  }

  /** Raises `reserved` and `synced`, never lowers them, whatever order concurrent requests arrive in. */
  raiseMarks(marks: { reserved?: number; synced?: number }): Promise<void> {
    const next = this.raising.then(async () => {
      const change: { reserved?: number; synced?: number } = {};
      if (marks.reserved !== undefined && marks.reserved > this.marks.reserved) {
        change.reserved = marks.reserved;
      }
      if (marks.synced !== undefined && marks.synced > this.marks.synced) {
        change.synced = marks.synced;
      }
      if (change.reserved !== undefined || change.synced !== undefined) {
        await this.setMarks(change);
      }
    });
    this.raising = next.catch(() => undefined);
    return next;
  }

  /** Fails early, before any byte is sent, when a name clashes with a folder or a folder with a file. */
  assertCanStore(clientId: string, name: string): void {
    this.layout.live(clientId, name);
    if (this.caseInsensitive) {
      for (const file of this.catalog.index.live(clientId)) {
        const clash = caseClash(name, file.name);
        if (clash) {
          throw new DfsError('CONFLICT', `cannot store ${name}: this file system does not tell it apart from ${clash}, which is stored already; rename one of them`);
        }
      }
    }
    for (const other of this.structureConflicts(clientId, name)) {
      throw other.length < name.length
        ? new DfsError('CONFLICT', `cannot store ${name}: ${other} is a file, not a folder; delete or rename it first`)
        : new DfsError('CONFLICT', `cannot store ${name}: a folder of that name holds files (such as ${other}); delete them first or choose another name`);
    }
  }

  state(clientId: string, name: string): NameState | undefined {
    return this.catalog.index.get(clientId, name);
  }

  current(clientId: string, name: string): VersionRecord | undefined {
    return currentOf(this.catalog.index.get(clientId, name));
  }

  get(clientId: string, name: string): FileRecord | undefined {
    const live = liveOf(this.catalog.index.get(clientId, name));
    return live ? fileRecord(live) : undefined;
  }

  list(clientId: string): FileRecord[] {
    return this.catalog.index
      .live(clientId)
      .map(fileRecord)
      .sort((a, b) => compareNames(a.name, b.name));
  }

  clients(): ClientRecord[] {
    const result: ClientRecord[] = [];
    for (const clientId of this.catalog.index.clientIds()) {
      const { files, bytes } = this.catalog.index.summary(clientId);
      if (files > 0) {
        result.push({ clientId, files, bytes });
      }
    }
    return result.sort((a, b) => compareNames(a.clientId, b.clientId));
  }

  all(): FileRecord[] {
    const result: FileRecord[] = [];
    for (const clientId of this.catalog.index.clientIds()) {
      result.push(...this.catalog.index.live(clientId).map(fileRecord));
    }
    return result;
  }

  versions(clientId: string, name: string): VersionInfo[] {
    const state = this.catalog.index.get(clientId, name);
    return (state?.versions ?? []).map((version, index) => ({
      generation: version.generation,
      size: version.size,
      sha256: version.sha256,
      mtimeMs: version.mtimeMs,
      current: index === 0,
    }));
  }

  usage(clientId: string): number {
    return this.catalog.index.summary(clientId).storedBytes;
  }

  inventory(): { header: InventoryHeader; records: InventoryRecord[] } {
    const marks = this.catalog.marks;
    const records: InventoryRecord[] = [];
    for (const { clientId, name, state } of this.catalog.index.all()) {
      for (const version of state.versions) {
        records.push(this.damage.has(clientId, name, version.generation) ? { ...version, damaged: true } : version);
      }
      if (state.tombstone) {
        records.push(state.tombstone);
      }
    }
    return { header: { nodeId: marks.nodeId, session: this.session, highest: marks.highest, reserved: marks.reserved, synced: marks.synced, revoked: marks.revoked }, records };
  }

  hasBytes(clientId: string, name: string, generation: number): boolean {
    const state = this.catalog.index.get(clientId, name);
    return Boolean(state?.versions.some((version) => version.generation === generation)) && !this.damage.has(clientId, name, generation);
  }

  damagedVersions(): { record: VersionRecord; reason: string }[] {
    const result: { record: VersionRecord; reason: string }[] = [];
    for (const { clientId, name, state } of this.catalog.index.all()) {
      for (const version of state.versions) {
        const reason = this.damage.reason(clientId, name, version.generation);
        if (reason) {
          result.push({ record: version, reason });
        }
      }
    }
    return result;
  }

  /** Refuses a name whose place on this node's disk is, or lies behind, a symbolic link: nothing would ever be put there. */
  async assertCanPlace(clientId: string, name: string): Promise<void> {
    const live = this.layout.live(clientId, name);
    // Usually one lstat: the folder's verified handle (cached) shows no link leads to it,
    // and the name itself is no link. Anything else (a folder missing, a link on the
    // way) is looked at level by level, to name the link.
    const direct = await this.layout.fs.lstat(live).then(
      (stat) => !stat.isSymbolicLink(),
      // Not there, in a folder reached and verified: nothing on the way is a link.
      (error: NodeJS.ErrnoException) => error.code === 'ENOENT' && error.syscall === 'lstat',
    );
    if (direct) {
      return;
    }
    const parts = live.split('/');
    for (let index = 1; index <= parts.length; index++) {
      const relative = parts.slice(0, index).join('/');
      const stat = await this.layout.fs.lstat(relative).catch((error: unknown) => {
        if (error instanceof ContainmentError) {
          throw error;
        }
        return undefined;
      });
      if (!stat) {
        return;
      }
      if (stat.isSymbolicLink()) {
        this.log(`refused ${clientId}/${name}: ${relative} is a symbolic link in the data folder (left alone)`);
        throw new DfsError('STORAGE', `cannot store ${name}: ${relative} is a symbolic link in this node's data folder, which is never followed; an administrator must replace it with a real folder or remove it`);
      }
    }
  }

  async openRead(clientId: string, name: string, generation?: number): Promise<OpenedCopy> {
    this.layout.live(clientId, name);
    // Shared with other readers, never alongside a commit that is moving this name's bytes.
    return this.locks.run(
      clientId,
      name,
      async () => {
        const { record, file } = this.locate(clientId, name, generation);
        if (this.damage.has(clientId, name, record.generation)) {
          throw new DfsError('CHECKSUM', `the stored copy of ${name} (generation ${record.generation}) is damaged: ${this.damage.reason(clientId, name, record.generation)}`);
        }
        const handle = await this.layout.fs.openFile(file, constants.O_RDONLY).catch((error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') {
            this.damage.mark(clientId, name, record.generation, 'its file is missing');
            return Promise.reject(new DfsError('CHECKSUM', `the stored copy of ${name} (generation ${record.generation}) is missing from this node's disk`));
          }
          if (error instanceof ContainmentError) {
            this.damage.mark(clientId, name, record.generation, 'a symbolic link stands where its bytes belong (left alone)');
            this.log(error.message);
          }
          return Promise.reject(error instanceof DfsError ? error : new DfsError('STORAGE', error.message));
        });
        const stat = await handle.stat().catch(() => undefined);
        const print = this.catalog.fingerprint(clientId, name, record.generation);
        const unchanged = Boolean(stat && print && stat.ino === print.ino && stat.size === print.size && stat.mtimeMs === print.mtimeMs);
        return { record, body: handle.createReadStream({ highWaterMark: 1024 * 1024 }), unchanged };
      },
      'shared',
    );
  }

  async verify(clientId: string, name: string, generation?: number): Promise<boolean> {
    // Opened while no commit moves this name's bytes; hashed from the handle afterwards.
    let opened: { record: VersionRecord; handle: import('fs').promises.FileHandle } | undefined;
    try {
      opened = await this.locks.run(
        clientId,
        name,
        async () => {
          const { record, file } = this.locate(clientId, name, generation);
          return { record, handle: await this.layout.fs.openFile(file, constants.O_RDONLY) };
        },
        'shared',
      );
    } catch (error) {
      if (error instanceof DfsError && error.code === 'NOT_FOUND') {
        return false;
      }
      const record = this.catalog.index.get(clientId, name)?.versions.find((version) => generation === undefined || version.generation === generation);
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || error instanceof ContainmentError) {
        if (record) {
          this.damage.mark(clientId, name, record.generation, error instanceof ContainmentError ? 'a symbolic link stands where its bytes belong (left alone)' : 'its file is missing');
        }
        return false;
      }
      throw new DfsError('STORAGE', `cannot read ${clientId}/${name} to verify it: ${(error as Error).message}`);
    }
    const { record, handle } = opened;
    try {
      const { sha256, size } = await hashHandle(handle);
      if (sha256 === record.sha256 && size === record.size) {
        this.damage.clear(clientId, name, record.generation);
        // A placement not synced yet is confirmed by the flusher, never by a read.
        if (!this.catalog.keepsBytes(clientId, name, record.generation)) {
          const stat = await handle.stat();
          this.catalog.note([{ clientId, name, generation: record.generation, fingerprint: { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs } }]);
        }
        return true;
      }
      // Damaged, unless the version was replaced or moved meanwhile (then these bytes say nothing).
      const still = await this.locks.run(
        clientId,
        name,
        async () => {
          try {
            const { file } = this.locate(clientId, name, record.generation);
            return (await this.layout.fs.lstat(file)).ino === (await handle.stat()).ino;
          } catch {
            return false;
          }
        },
        'shared',
      );
      if (!still) {
        return true;
      }
      this.damage.mark(clientId, name, record.generation, 'its bytes no longer match their checksum');
      return false;
    } catch (error) {
      throw new DfsError('STORAGE', `cannot read ${clientId}/${name} to verify it: ${(error as Error).message}`);
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  tombstonesThrough(generation: number): { clientId: string; name: string; generation: number }[] {
    const result: { clientId: string; name: string; generation: number }[] = [];
    for (const { clientId, name, state } of this.catalog.index.all()) {
      if (state.tombstone && state.tombstone.generation <= generation) {
        result.push({ clientId, name, generation: state.tombstone.generation });
      }
    }
    return result;
  }

  markDamaged(clientId: string, name: string, generation: number, reason: string): void {
    this.damage.mark(clientId, name, generation, reason);
  }

  isDamaged(clientId: string, name: string, generation: number): boolean {
    return this.damage.has(clientId, name, generation);
  }

  /** The version asked for (the current one by default) and the file (relative) holding its bytes. */
  private locate(clientId: string, name: string, generation: number | undefined): { record: VersionRecord; file: string } {
    const state = this.catalog.index.get(clientId, name);
    const index = generation === undefined ? 0 : (state?.versions ?? []).findIndex((version) => version.generation === generation);
    const record = index >= 0 ? state?.versions[index] : undefined;
    if (!record) {
      throw new DfsError(
        'NOT_FOUND',
        generation === undefined ? `${name} is not stored for client ${clientId}` : `generation ${generation} of ${name} is not kept for client ${clientId} (dfs versions lists the kept ones)`,
      );
    }
    return { record, file: index === 0 ? this.layout.live(clientId, name) : this.layout.version(clientId, record.generation) };
  }

  /** Live names that occupy a folder this name needs, or live names inside a folder of this name. */
  private structureConflicts(clientId: string, name: string): string[] {
    const conflicts: string[] = [];
    for (let slash = name.indexOf('/'); slash !== -1; slash = name.indexOf('/', slash + 1)) {
      const folder = name.slice(0, slash);
      if (liveOf(this.catalog.index.get(clientId, folder))) {
        conflicts.push(folder);
      }
    }
    conflicts.push(...this.catalog.index.namesUnder(clientId, name));
    return conflicts;
  }

  /**
   * Runs the file moves that follow a recorded change. The record stands whatever
   * happens here, so a failure marks the bytes damaged (catch-up supplies them from
   * another node) and surfaces as a PlacementError, which callers tell apart from a
   * change that was never recorded.
   */
  private async placeRecorded(clientId: string, name: string, generation: number, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      const reason = (error as Error).message;
      this.damage.mark(clientId, name, generation, `recorded, but its bytes could not be put in place: ${reason}`);
      // Whatever step failed, the live file may no longer hold the current version's bytes.
      const current = liveOf(this.catalog.index.get(clientId, name));
      if (current) {
        this.damage.mark(clientId, name, current.generation, `a change of this name could not be put in place: ${reason}`);
      }
      this.log(`${clientId}/${name} generation ${generation}: recorded, but its bytes could not be put in place: ${reason}`);
      throw new PlacementError(error instanceof DfsError ? error.code : 'STORAGE', `${name} (generation ${generation}) was recorded on this node, but its bytes could not be put in place: ${reason}`);
    }
  }

  private holds({ clientId, name, generation }: UnconfirmedPlacement): boolean {
    return this.catalog.index.get(clientId, name)?.versions.some((version) => version.generation === generation) ?? false;
  }

  /** Bytes now sit at `file`: clear any damage and remember where, so a restart need not hash them. */
  private placed(clientId: string, name: string, generation: number, file: string): void {
    this.damage.clear(clientId, name, generation);
    void this.layout.fs.lstat(file).then(
      (stat) => this.catalog.note([{ clientId, name, generation, fingerprint: { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs } }]),
      () => undefined,
    );
  }

  /**
   * A data folder of release 0.1 (client folders, its checksum log or its "joined"
   * marker, and no catalog): every file becomes a record of the new catalog's first
   * snapshot, at generation 0, or (an authoritative primary that was in step with its
   * replicas) at fresh generations 1..n with the catalog complete through n, so that
   * catch-up removes from replicas what it does not hold, as that release did.
   * Undefined when the folder is simply new.
   */
  private async legacyUpgrade(): Promise<LegacyUpgrade | undefined> {
    const files = this.layout.fs;
    const isThere = async (relative: string): Promise<boolean> => (await files.lstat(relative).catch(() => undefined)) !== undefined;
    const joined = await isThere(LEGACY_JOINED_MARKER);
    if (!joined && !(await isThere(LEGACY_CHECKSUM_LOG)) && !(await hasClientFolders(files))) {
      return undefined;
    }
    const found = await readLegacyFiles(files, this.log);
    const authoritative = this.authoritative && joined;
    const records = found.map((file, index): VersionRecord => ({
      clientId: file.clientId,
      name: file.name,
      generation: authoritative ? index + 1 : LEGACY_GENERATION,
      size: file.size,
      sha256: file.sha256,
      mtimeMs: file.mtimeMs,
    }));
    return {
      files: found,
      records,
      authoritative,
      changes: [
        ...records.map((record) => ({ kind: 'record' as const, record, keep: 0 })),
        ...(authoritative ? [{ kind: 'marks' as const, marks: { reserved: records.length, completeThrough: records.length } }] : []),
      ],
    };
  }

  /** Once the upgraded catalog is on disk: the old release's files go, and the log says what happened. */
  private async finishUpgrade(upgrade: LegacyUpgrade): Promise<void> {
    const { files, records, authoritative } = upgrade;
    this.catalog.note(records.map((record, index) => ({ clientId: record.clientId, name: record.name, generation: record.generation, fingerprint: files[index].fingerprint })));
    await this.layout.fs.unlink(LEGACY_CHECKSUM_LOG).catch(() => undefined);
    await this.layout.fs.unlink(LEGACY_JOINED_MARKER).catch(() => undefined);
    this.log(
      `upgraded a data folder of release 0.1 in place: ${files.length} files recorded in the catalog ${authoritative ? `at generations 1..${files.length} (this primary was in step with its replicas, so its files win)` : 'at generation 0 (their order is unknown; the newest time wins where copies differ)'}`,
    );
  }

  private async probeCaseInsensitive(): Promise<boolean> {
    const probe = `${STATE_DIR}/Case-Probe-${process.pid}`;
    const handle = await this.layout.fs.openFile(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC);
    await handle.close();
    try {
      return (await this.layout.fs.lstat(`${STATE_DIR}/case-probe-${process.pid}`).catch(() => undefined)) !== undefined;
    } finally {
      await this.layout.fs.unlink(probe).catch(() => undefined);
    }
  }
}

/** Bytes an unprivileged process may still write on the disk holding `folder`; undefined where statfs is missing. */
async function freeBytes(folder: string): Promise<number | undefined> {
  if (typeof fsPromises.statfs !== 'function') {
    return undefined;
  }
  const stats = await fsPromises.statfs(folder);
  return stats.bavail * stats.bsize;
}

/**
 * Waits for a recorded change's placement and for what the caller does once it is
 * recorded (a primary telling its replicas), run together; the caller's failure is
 * reported first, since the record stands either way.
 */
async function alongside(placing: Promise<void>, onRecorded: (() => Promise<void>) | undefined): Promise<void> {
  const [placed, told] = await Promise.allSettled([placing, onRecorded?.()]);
  if (told.status === 'rejected') {
    throw told.reason;
  }
  if (placed.status === 'rejected') {
    throw placed.reason;
  }
}

function tombstone(clientId: string, name: string, generation: number, mtimeMs: number): VersionRecord {
  return { clientId, name, generation, size: 0, sha256: '', mtimeMs, deleted: true };
}

function fileRecord(version: VersionRecord): FileRecord {
  return { clientId: version.clientId, name: version.name, size: version.size, mtimeMs: version.mtimeMs, sha256: version.sha256, generation: version.generation };
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
