import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { Readable } from 'stream';
import {
  ClientRecord,
  DfsError,
  FileRecord,
  InventoryHeader,
  InventoryRecord,
  VersionInfo,
  VersionRecord,
  validateClientId,
  validateFileName,
} from '../protocol';
import { caseClash } from './case-folding';
import { CatalogChange, CatalogMarks, Fingerprint, versionKey } from './catalog';
import { hashFile, hashHandle } from './file-hash';
import { JournalCatalog } from './journal-catalog';
import { LEGACY_CHECKSUM_LOG, LEGACY_JOINED_MARKER, LegacyFile, hasClientFolders, readLegacyFiles } from './legacy-layout';
import { ApplyOutcome, LEGACY_GENERATION, NameState, applyRecord, currentOf, isNewer, liveOf, sameVersion } from './name-state';
import { NameLock } from './name-lock';
import { DiskStagedWrite } from './staged-write';
import type { StagedWrite, Store, StoreOpening } from './store';
import { DirectorySyncer, syncDirectory } from './sync';

const STATE_DIR = '.dfs';

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
}

interface LegacyUpgrade {
  files: LegacyFile[];
  records: VersionRecord[];
  authoritative: boolean;
  changes: CatalogChange[];
}

/** What a version's bytes need to be placed: the staged file holding them. */
interface Supply {
  generation: number;
  staged: DiskStagedWrite;
}

/**
 * A node's storage on the local disk. The catalog (`.dfs/catalog`) says which versions
 * the node holds; the files follow it: the current version of each name at
 * `<root>/<client>/<name>`, older versions at `.dfs/versions/<client>/<generation>`.
 * A change is recorded in the catalog first (that is the node's commit), naming the
 * staged bytes, and placed after; a crash in between is finished at the next open.
 */
export class DiskStore implements Store {
  readonly root: string;
  readonly catalog: JournalCatalog;
  private readonly stateDir: string;
  private readonly tmpDir: string;
  private readonly versionsDir: string;
  private readonly locks = new NameLock();
  private raising: Promise<void> = Promise.resolve();
  /** New at every open: a certification for an inventory of an earlier opening is refused. */
  session = '';
  private readonly syncer: DirectorySyncer;
  /** Versions whose bytes are missing or failed their checksum, with the reason. */
  private readonly damaged = new Map<string, string>();
  /** Folders known to exist durably, so a commit into one skips its mkdir. */
  private readonly knownFolders = new Set<string>();
  private readonly pendingFolders = new Map<string, Promise<void>>();
  /** Probed at open(): names differing only in case are then one file on disk. */
  private caseInsensitive = false;
  private readonly durable: boolean;
  private readonly authoritative: boolean;
  private readonly log: (line: string) => void;

  constructor(root: string, options: DiskStoreOptions = {}) {
    this.root = path.resolve(root);
    this.stateDir = path.join(this.root, STATE_DIR);
    this.tmpDir = path.join(this.stateDir, 'tmp');
    this.versionsDir = path.join(this.stateDir, 'versions');
    this.durable = options.durable ?? true;
    this.authoritative = options.authoritative ?? false;
    this.log = options.log ?? (() => undefined);
    this.syncer = new DirectorySyncer(this.durable);
    this.catalog = new JournalCatalog(path.join(this.stateDir, 'catalog'), { durable: this.durable, log: this.log });
  }

  get marks(): Readonly<CatalogMarks> {
    return this.catalog.marks;
  }

  async open(): Promise<StoreOpening> {
    await fs.mkdir(this.tmpDir, { recursive: true });
    await fs.mkdir(this.versionsDir, { recursive: true });
    this.damaged.clear();
    this.knownFolders.clear();
    this.session = randomBytes(8).toString('hex');
    this.caseInsensitive = await probeCaseInsensitive(this.stateDir);
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
    await this.settleDisk(opening.staged, report);
    // Whatever is still staged belongs to a transfer that died with the previous process.
    for (const entry of await fs.readdir(this.tmpDir)) {
      await fs.rm(path.join(this.tmpDir, entry), { recursive: true, force: true });
    }
    if (this.durable) {
      await syncDirectory(this.tmpDir);
      await syncDirectory(this.root);
    }
    report.damaged = this.damaged.size;
    return report;
  }

  async close(): Promise<void> {
    await this.catalog.close();
  }

  async stage(): Promise<StagedWrite> {
    const file = path.join(this.tmpDir, `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`);
    const handle = await fs.open(file, 'wx').catch((error: Error) => {
      throw new DfsError('STORAGE', `cannot stage bytes under ${this.tmpDir}: ${error.message}`);
    });
    return new DiskStagedWrite(file, handle, this.durable, this.syncer);
  }

  async commitVersion(staged: StagedWrite | undefined, record: VersionRecord, keep: number, onRecorded?: () => Promise<void>): Promise<ApplyOutcome> {
    if (staged !== undefined && !(staged instanceof DiskStagedWrite)) {
      throw new DfsError('INTERNAL', 'staged write belongs to another store');
    }
    const { clientId, name, generation } = record;
    this.livePath(clientId, name);
    try {
      return await this.locks.run(clientId, name, async () => {
        const before = this.catalog.index.get(clientId, name);
        if (before?.versions.some((version) => sameVersion(version, record))) {
          // Already recorded: at most its bytes are missing, and these are them.
          if (staged && this.isDamaged(clientId, name, generation)) {
            await staged.seal();
            await this.place(clientId, name, before, before, { generation, staged });
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
        await staged?.seal();
        const othersBefore = displaced.map((other) => this.catalog.index.get(clientId, other.name));
        const applied = await this.catalog.commit([
          ...displaced.map((other) => ({ kind: 'record' as const, record: other, keep })),
          { kind: 'record', record, keep, staged: staged?.basename },
        ]);
        const mine = applied[applied.length - 1];
        const placing = this.placeRecorded(clientId, name, generation, async () => {
          for (const [index, other] of displaced.entries()) {
            await this.place(clientId, other.name, othersBefore[index], this.catalog.index.get(clientId, other.name));
          }
          await this.place(clientId, name, before, mine.after, staged ? { generation, staged } : undefined);
        });
        const [placed, told] = await Promise.allSettled([placing, onRecorded?.()]);
        if (told.status === 'rejected') {
          throw told.reason;
        }
        if (placed.status === 'rejected') {
          throw placed.reason;
        }
        return mine.outcome;
      });
    } finally {
      await staged?.abort();
    }
  }

  async commitTombstone(record: VersionRecord, onRecorded?: () => Promise<void>): Promise<ApplyOutcome> {
    this.livePath(record.clientId, record.name);
    return this.locks.run(record.clientId, record.name, async () => {
      const before = this.catalog.index.get(record.clientId, record.name);
      if (applyRecord(before, record, 0).outcome === 'stale') {
        return 'stale';
      }
      const [applied] = await this.catalog.commit([{ kind: 'record', record, keep: 0 }]);
      const placing = this.placeRecorded(record.clientId, record.name, record.generation, () => this.place(record.clientId, record.name, before, applied.after));
      const [placed, told] = await Promise.allSettled([placing, onRecorded?.()]);
      if (told.status === 'rejected') {
        throw told.reason;
      }
      if (placed.status === 'rejected') {
        throw placed.reason;
      }
      return applied.outcome;
    });
  }

  async dropVersion(clientId: string, name: string, generation: number, tombstone = false): Promise<void> {
    this.livePath(clientId, name);
    await this.locks.run(clientId, name, async () => {
      const before = this.catalog.index.get(clientId, name);
      const holds = tombstone ? before?.tombstone?.generation === generation : before?.versions.some((version) => version.generation === generation);
      if (!holds) {
        return;
      }
      const [applied] = await this.catalog.commit([{ kind: 'drop', clientId, name, generation, tombstone }]);
      await this.placeRecorded(clientId, name, generation, () => this.place(clientId, name, before, applied.after));
    });
  }

  async setMarks(marks: Partial<Omit<CatalogMarks, 'nodeId' | 'highest'>>): Promise<void> {
    await this.catalog.commit([{ kind: 'marks', marks }]);
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
    this.livePath(clientId, name);
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
        records.push(this.isDamaged(clientId, name, version.generation) ? { ...version, damaged: true } : version);
      }
      if (state.tombstone) {
        records.push(state.tombstone);
      }
    }
    return { header: { nodeId: marks.nodeId, session: this.session, highest: marks.highest, reserved: marks.reserved, synced: marks.synced }, records };
  }

  hasBytes(clientId: string, name: string, generation: number): boolean {
    const state = this.catalog.index.get(clientId, name);
    return Boolean(state?.versions.some((version) => version.generation === generation)) && !this.isDamaged(clientId, name, generation);
  }

  damagedVersions(): { record: VersionRecord; reason: string }[] {
    const result: { record: VersionRecord; reason: string }[] = [];
    for (const { clientId, name, state } of this.catalog.index.all()) {
      for (const version of state.versions) {
        const reason = this.damaged.get(versionKey(clientId, name, version.generation));
        if (reason) {
          result.push({ record: version, reason });
        }
      }
    }
    return result;
  }

  async openRead(clientId: string, name: string, generation?: number): Promise<{ record: VersionRecord; body: Readable }> {
    this.livePath(clientId, name);
    // Shared with other readers, never alongside a commit that is moving this name's bytes.
    return this.locks.run(
      clientId,
      name,
      async () => {
        const { record, file } = this.locate(clientId, name, generation);
        if (this.isDamaged(clientId, name, record.generation)) {
          throw new DfsError('CHECKSUM', `the stored copy of ${name} (generation ${record.generation}) is damaged: ${this.damaged.get(versionKey(clientId, name, record.generation))}`);
        }
        const handle = await fs.open(file, 'r').catch((error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') {
            this.markDamaged(clientId, name, record.generation, 'its file is missing');
            return Promise.reject(new DfsError('CHECKSUM', `the stored copy of ${name} (generation ${record.generation}) is missing from this node's disk`));
          }
          return Promise.reject(new DfsError('STORAGE', error.message));
        });
        return { record, body: handle.createReadStream({ highWaterMark: 256 * 1024 }) };
      },
      'shared',
    );
  }

  async verify(clientId: string, name: string, generation?: number): Promise<boolean> {
    // Opened while no commit moves this name's bytes; hashed from the handle afterwards.
    let opened: { record: VersionRecord; handle: fs.FileHandle } | undefined;
    try {
      opened = await this.locks.run(
        clientId,
        name,
        async () => {
          const { record, file } = this.locate(clientId, name, generation);
          return { record, handle: await fs.open(file, 'r') };
        },
        'shared',
      );
    } catch (error) {
      if (error instanceof DfsError && error.code === 'NOT_FOUND') {
        return false;
      }
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        const record = this.catalog.index.get(clientId, name)?.versions.find((version) => generation === undefined || version.generation === generation);
        if (record) {
          this.markDamaged(clientId, name, record.generation, 'its file is missing');
        }
        return false;
      }
      throw new DfsError('STORAGE', `cannot read ${clientId}/${name} to verify it: ${(error as Error).message}`);
    }
    const { record, handle } = opened;
    try {
      const { sha256, size } = await hashHandle(handle);
      if (sha256 === record.sha256 && size === record.size) {
        this.damaged.delete(versionKey(clientId, name, record.generation));
        return true;
      }
      // Damaged, unless the version was replaced or moved meanwhile (then these bytes say nothing).
      const still = await this.locks.run(
        clientId,
        name,
        async () => {
          try {
            const { file } = this.locate(clientId, name, record.generation);
            return (await fs.lstat(file)).ino === (await handle.stat()).ino;
          } catch {
            return false;
          }
        },
        'shared',
      );
      if (!still) {
        return true;
      }
      this.markDamaged(clientId, name, record.generation, 'its bytes no longer match their checksum');
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
    this.damaged.set(versionKey(clientId, name, generation), reason);
  }

  isDamaged(clientId: string, name: string, generation: number): boolean {
    return this.damaged.has(versionKey(clientId, name, generation));
  }

  /** Where a file lives, after checking it cannot leave the client's folder. */
  livePath(clientId: string, name: string): string {
    validateClientId(clientId);
    validateFileName(name);
    const clientDir = this.clientDir(clientId);
    const target = path.resolve(clientDir, ...name.split('/'));
    if (!target.startsWith(clientDir + path.sep)) {
      throw new DfsError('BAD_FILE_NAME', `${name} would be stored outside the client's folder`);
    }
    return target;
  }

  private versionPath(clientId: string, generation: number): string {
    return path.join(this.versionsDir, clientId, String(generation));
  }

  private clientDir(clientId: string): string {
    return path.join(this.root, clientId);
  }

  /** The version asked for (the current one by default) and the file holding its bytes. */
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
    return { record, file: index === 0 ? this.livePath(clientId, name) : this.versionPath(clientId, record.generation) };
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
   * Makes the files follow a change of one name's state: the outgoing current version
   * is linked into `.dfs/versions` before anything replaces it, the new current one is
   * renamed into place (from the supplied staged bytes, or from the older versions),
   * and versions no longer held are removed. Each folder touched is synced once.
   */
  private async place(clientId: string, name: string, before: NameState | undefined, after: NameState | undefined, supply?: Supply): Promise<void> {
    const live = this.livePath(clientId, name);
    const outgoing = before?.versions[0];
    const incoming = after?.versions[0];
    const historyAfter = after?.versions.slice(1) ?? [];
    const historyBefore = before?.versions.slice(1) ?? [];
    const inHistoryAfter = (generation: number): boolean => historyAfter.some((version) => version.generation === generation);
    const inHistoryBefore = (generation: number): boolean => historyBefore.some((version) => version.generation === generation);
    const touched = new Set<string>();
    let liveHolds = outgoing && !this.isDamaged(clientId, name, outgoing.generation) ? outgoing.generation : undefined;

    if (outgoing && outgoing.generation !== incoming?.generation && inHistoryAfter(outgoing.generation) && liveHolds === outgoing.generation) {
      await this.ensureVersionsFolder(clientId);
      await fs.link(live, this.versionPath(clientId, outgoing.generation)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') {
          this.markDamaged(clientId, name, outgoing.generation, `could not be kept as an older version: ${error.message}`);
        }
      });
      touched.add(path.join(this.versionsDir, clientId));
    }

    if (incoming) {
      if (supply?.generation === incoming.generation) {
        await this.moveIntoLive(supply.staged.file, live, name, clientId);
        supply.staged.markPlaced();
        this.placed(clientId, name, incoming.generation, live);
        liveHolds = incoming.generation;
        touched.add(path.dirname(live));
      } else if (incoming.generation !== outgoing?.generation) {
        if (inHistoryBefore(incoming.generation) && !this.isDamaged(clientId, name, incoming.generation)) {
          await this.moveIntoLive(this.versionPath(clientId, incoming.generation), live, name, clientId);
          liveHolds = incoming.generation;
          touched.add(path.dirname(live));
          touched.add(path.join(this.versionsDir, clientId));
        } else if (!inHistoryBefore(incoming.generation)) {
          this.markDamaged(clientId, name, incoming.generation, 'not copied to this node yet');
        }
      }
    }

    if (outgoing && !(incoming && liveHolds === incoming.generation)) {
      // The live path holds bytes no current version owns (or damaged ones): remove them.
      const removed = await fs.unlink(live).then(
        () => true,
        async (error: NodeJS.ErrnoException) => {
          // Gone already, or a folder of the same name took its place (a newer name under
          // it displaced this file while another did the same): either way it is removed.
          if (error.code === 'ENOENT' || ((error.code === 'EISDIR' || error.code === 'EPERM') && (await fs.lstat(live).catch(() => undefined))?.isDirectory())) {
            return false;
          }
          throw new DfsError('STORAGE', `cannot remove ${name}: ${error.message}`);
        },
      );
      if (removed) {
        touched.add(await this.pruneEmptyFolders(path.dirname(live), this.clientDir(clientId)));
      }
    }

    if (supply && supply.generation !== incoming?.generation && inHistoryAfter(supply.generation)) {
      await this.ensureVersionsFolder(clientId);
      const target = this.versionPath(clientId, supply.generation);
      await this.renameInto(supply.staged.file, target, name);
      supply.staged.markPlaced();
      this.placed(clientId, name, supply.generation, target);
      touched.add(path.join(this.versionsDir, clientId));
    }

    for (const version of historyAfter) {
      if (!inHistoryBefore(version.generation) && version.generation !== outgoing?.generation && supply?.generation !== version.generation) {
        this.markDamaged(clientId, name, version.generation, 'not copied to this node yet');
      }
    }
    for (const version of before?.versions ?? []) {
      if (after?.versions.some((kept) => kept.generation === version.generation)) {
        continue;
      }
      this.damaged.delete(versionKey(clientId, name, version.generation));
      if (version !== outgoing) {
        await fs.rm(this.versionPath(clientId, version.generation), { force: true });
        touched.add(path.join(this.versionsDir, clientId));
      }
    }
    await Promise.all([...touched].map((dir) => this.syncer.sync(dir)));
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
      this.markDamaged(clientId, name, generation, `recorded, but its bytes could not be put in place: ${reason}`);
      // Whatever step failed, the live file may no longer hold the current version's bytes.
      const current = liveOf(this.catalog.index.get(clientId, name));
      if (current) {
        this.markDamaged(clientId, name, current.generation, `a change of this name could not be put in place: ${reason}`);
      }
      this.log(`${clientId}/${name} generation ${generation}: recorded, but its bytes could not be put in place: ${reason}`);
      throw new PlacementError(error instanceof DfsError ? error.code : 'STORAGE', `${name} (generation ${generation}) was recorded on this node, but its bytes could not be put in place: ${reason}`);
    }
  }

  /**
   * Renames bytes into a live path, making its folder first. A delete of the last file
   * in that folder may prune it between the two steps (it holds the folder only
   * shared, as this commit does): then the folder is made again.
   */
  private async moveIntoLive(from: string, live: string, name: string, clientId: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await this.ensureFolder(path.dirname(live), clientId);
      try {
        await this.renameInto(from, live, name);
        return;
      } catch (error) {
        if (attempt >= 4 || !(error instanceof DfsError && error.code === 'STORAGE' && /ENOENT|no such file/.test(error.message)) || !(await exists(from))) {
          throw error;
        }
        this.knownFolders.delete(path.dirname(live));
      }
    }
  }

  private async renameInto(from: string, to: string, name: string): Promise<void> {
    try {
      await fs.rename(from, to);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') {
        throw new DfsError('CONFLICT', `cannot store ${name}: a folder of that name exists on this node's disk`);
      }
      throw new DfsError('STORAGE', `cannot store ${name}: ${(error as Error).message}`);
    }
  }

  /** Bytes now sit at `file`: clear any damage and remember where, so a restart need not hash them. */
  private placed(clientId: string, name: string, generation: number, file: string): void {
    this.damaged.delete(versionKey(clientId, name, generation));
    void fs.stat(file).then(
      (stat) => this.catalog.note([{ clientId, name, generation, fingerprint: { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs } }]),
      () => undefined,
    );
  }

  /**
   * At open, after a crash: finishes placements the catalog recorded (their staged
   * bytes are still in the staging folder), checks every version's bytes (by
   * fingerprint, hashing only what changed), and clears out files the catalog does
   * not hold.
   */
  private async settleDisk(staged: Map<string, string>, report: StoreOpening): Promise<void> {
    // Leftovers of deleted names go first: a file a newer folder displaced (or the
    // reverse) must be out of the way before that folder's placement is finished.
    report.orphans = await this.clearStrays();
    const pending = new Set(await fs.readdir(this.tmpDir));
    for (const { clientId, name, state } of [...this.catalog.index.all()]) {
      for (const [index, version] of state.versions.entries()) {
        const target = index === 0 ? this.livePath(clientId, name) : this.versionPath(clientId, version.generation);
        const stagedName = staged.get(versionKey(clientId, name, version.generation));
        if (stagedName && pending.has(stagedName)) {
          pending.delete(stagedName);
          try {
            await this.redo(clientId, name, state, index, path.join(this.tmpDir, stagedName));
            report.redone++;
          } catch (error) {
            // One file that cannot be placed must not keep the node from starting: its
            // bytes come from another node instead.
            this.log(`${clientId}/${name} generation ${version.generation}: the interrupted placement could not be finished (${(error as Error).message})`);
          }
        }
        await this.check(clientId, name, version, target, index === 0 ? state : undefined);
      }
    }
    await this.sweepVersions();
  }

  /** Puts staged bytes where a recorded version belongs, keeping the bytes they replace if those are history now. */
  private async redo(clientId: string, name: string, state: NameState, index: number, stagedFile: string): Promise<void> {
    const version = state.versions[index];
    if (index > 0) {
      await this.ensureVersionsFolder(clientId);
      await fs.rename(stagedFile, this.versionPath(clientId, version.generation));
      await this.syncer.sync(path.join(this.versionsDir, clientId));
      return;
    }
    const live = this.livePath(clientId, name);
    const previous = state.versions[1];
    if (previous && !(await exists(this.versionPath(clientId, previous.generation))) && (await exists(live))) {
      if ((await hashFile(live)).sha256 === previous.sha256) {
        await this.ensureVersionsFolder(clientId);
        await fs.link(live, this.versionPath(clientId, previous.generation));
        await this.syncer.sync(path.join(this.versionsDir, clientId));
      }
    }
    await this.ensureFolder(path.dirname(live), clientId);
    await fs.rename(stagedFile, live);
    await this.syncer.sync(path.dirname(live));
  }

  /** Verifies a version's bytes at open: the fingerprint if it still matches, the checksum otherwise. */
  private async check(clientId: string, name: string, version: VersionRecord, file: string, currentOfState: NameState | undefined): Promise<void> {
    const stat = await fs.stat(file).catch(() => undefined);
    const print = this.catalog.fingerprint(clientId, name, version.generation);
    if (stat?.isFile() && print && print.ino === stat.ino && print.size === stat.size && print.mtimeMs === stat.mtimeMs) {
      return;
    }
    if (stat?.isFile() && (await hashFile(file)).sha256 === version.sha256) {
      this.catalog.note([{ clientId, name, generation: version.generation, fingerprint: fingerprintOf(stat) }]);
      return;
    }
    // A promotion from the older versions that a crash cut short: the bytes are still there.
    const kept = this.versionPath(clientId, version.generation);
    if (currentOfState && (await exists(kept)) && (await hashFile(kept)).sha256 === version.sha256) {
      await this.ensureFolder(path.dirname(file), clientId);
      await fs.rename(kept, file);
      await Promise.all([this.syncer.sync(path.dirname(file)), this.syncer.sync(path.dirname(kept))]);
      return;
    }
    this.markDamaged(clientId, name, version.generation, stat ? 'its bytes do not match the catalog' : 'its file is missing');
    this.log(`${clientId}/${name} generation ${version.generation}: ${this.damaged.get(versionKey(clientId, name, version.generation))}; it will be copied from another node`);
  }

  /**
   * Files under the client folders that are no current version: a deleted name's
   * leftover is removed; anything the catalog never heard of (a copy made by hand, a
   * restored backup's extra) is moved to `.dfs/orphans` rather than destroyed.
   */
  private async clearStrays(): Promise<number> {
    let orphans = 0;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const walk = async (dir: string, clientId: string, prefix: string): Promise<void> => {
      let holdsFolders = false;
      for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
        const name = prefix + entry.name;
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          holdsFolders = true;
          this.knownFolders.add(full);
          await walk(full, clientId, name + '/');
          continue;
        }
        const state = this.catalog.index.get(clientId, name);
        if (liveOf(state)) {
          continue;
        }
        if (state?.tombstone) {
          await fs.rm(full, { force: true });
          this.log(`removed ${clientId}/${name}: it was deleted (generation ${state.tombstone.generation})`);
        } else {
          const target = path.join(this.stateDir, 'orphans', stamp, clientId, ...name.split('/'));
          await fs.mkdir(path.dirname(target), { recursive: true });
          await fs.rename(full, target);
          orphans++;
          this.log(`moved ${clientId}/${name} to ${path.relative(this.root, target)}: the catalog does not hold it`);
        }
      }
      // A folder made by a commit that died before syncing its entry is made durable now.
      if (holdsFolders && this.durable) {
        await syncDirectory(dir);
      }
      if (prefix !== '' && (await fs.readdir(dir)).length === 0) {
        await fs.rmdir(dir).catch(() => undefined);
        this.knownFolders.delete(dir);
      }
    };
    for (const entry of await fs.readdir(this.root, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) {
        continue;
      }
      try {
        validateClientId(entry.name);
      } catch {
        this.log(`ignoring folder ${JSON.stringify(entry.name)}: not a valid client id`);
        continue;
      }
      await walk(this.clientDir(entry.name), entry.name, '');
    }
    return orphans;
  }

  /** Removes older versions' files the catalog no longer holds (a crash between the record and the removal). */
  private async sweepVersions(): Promise<void> {
    for (const clientId of await fs.readdir(this.versionsDir)) {
      const held = new Set<string>();
      for (const [, state] of this.catalog.index.names(clientId)) {
        state.versions.slice(1).forEach((version) => held.add(String(version.generation)));
      }
      const dir = path.join(this.versionsDir, clientId);
      for (const file of await fs.readdir(dir).catch(() => [] as string[])) {
        if (!held.has(file)) {
          await fs.rm(path.join(dir, file), { force: true });
        }
      }
    }
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
    const joined = await exists(path.join(this.stateDir, LEGACY_JOINED_MARKER));
    if (!joined && !(await exists(path.join(this.stateDir, LEGACY_CHECKSUM_LOG))) && !(await hasClientFolders(this.root))) {
      return undefined;
    }
    const files = await readLegacyFiles(this.root, this.stateDir, this.log);
    const authoritative = this.authoritative && joined;
    const records = files.map((file, index): VersionRecord => ({
      clientId: file.clientId,
      name: file.name,
      generation: authoritative ? index + 1 : LEGACY_GENERATION,
      size: file.size,
      sha256: file.sha256,
      mtimeMs: file.mtimeMs,
    }));
    return {
      files,
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
    await fs.rm(path.join(this.stateDir, LEGACY_CHECKSUM_LOG), { force: true });
    await fs.rm(path.join(this.stateDir, LEGACY_JOINED_MARKER), { force: true });
    this.log(
      `upgraded a data folder of release 0.1 in place: ${files.length} files recorded in the catalog ${authoritative ? `at generations 1..${files.length} (this primary was in step with its replicas, so its files win)` : 'at generation 0 (their order is unknown; the newest time wins where copies differ)'}`,
    );
  }

  private async ensureVersionsFolder(clientId: string): Promise<void> {
    const dir = path.join(this.versionsDir, clientId);
    if (this.knownFolders.has(dir)) {
      return;
    }
    const created = await fs.mkdir(dir, { recursive: true });
    if (created && this.durable) {
      await syncDirectory(this.versionsDir);
    }
    this.knownFolders.add(dir);
  }

  /**
   * Makes a folder exist, with every folder it needed created durably (each new
   * folder's entry synced in its parent) before any file is renamed into it. Commits
   * into the same new folder share the work, so none acknowledges before it is done.
   */
  private ensureFolder(folder: string, clientId: string): Promise<void> {
    if (this.knownFolders.has(folder)) {
      return Promise.resolve();
    }
    let pending = this.pendingFolders.get(folder);
    if (!pending) {
      pending = (async () => {
        let firstCreated: string | undefined;
        try {
          firstCreated = await fs.mkdir(folder, { recursive: true });
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          throw code === 'ENOTDIR' || code === 'EEXIST'
            ? new DfsError('CONFLICT', `cannot create folder ${path.relative(this.clientDir(clientId), folder)}: a file on this node's disk has the name of one of its folders`)
            : new DfsError('STORAGE', (error as Error).message);
        }
        if (this.durable && firstCreated) {
          for (let created = folder; ; created = path.dirname(created)) {
            await syncDirectory(path.dirname(created));
            if (created === firstCreated || created === this.root) {
              break;
            }
          }
        }
        this.knownFolders.add(folder);
      })().finally(() => this.pendingFolders.delete(folder));
      this.pendingFolders.set(folder, pending);
    }
    return pending;
  }

  /** Removes empty folders upwards from `dir`; returns the deepest folder that remains. */
  private async pruneEmptyFolders(dir: string, stopAt: string): Promise<string> {
    while (dir.startsWith(stopAt + path.sep)) {
      try {
        await fs.rmdir(dir);
      } catch {
        return dir;
      }
      this.knownFolders.delete(dir);
      dir = path.dirname(dir);
    }
    return dir;
  }
}

function tombstone(clientId: string, name: string, generation: number, mtimeMs: number): VersionRecord {
  return { clientId, name, generation, size: 0, sha256: '', mtimeMs, deleted: true };
}

function fileRecord(version: VersionRecord): FileRecord {
  return { clientId: version.clientId, name: version.name, size: version.size, mtimeMs: version.mtimeMs, sha256: version.sha256, generation: version.generation };
}

function fingerprintOf(stat: { ino: number; size: number; mtimeMs: number }): Fingerprint {
  return { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs };
}

async function exists(file: string): Promise<boolean> {
  return (await fs.stat(file).catch(() => undefined)) !== undefined;
}

async function probeCaseInsensitive(stateDir: string): Promise<boolean> {
  const probe = path.join(stateDir, `Case-Probe-${process.pid}`);
  await fs.writeFile(probe, '');
  try {
    return (await fs.stat(path.join(stateDir, `case-probe-${process.pid}`)).catch(() => undefined)) !== undefined;
  } finally {
    await fs.rm(probe, { force: true });
  }
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
