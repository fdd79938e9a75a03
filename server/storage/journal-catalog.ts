import { randomBytes } from 'crypto';
import { constants, promises as fs } from 'fs';
import * as path from 'path';
import { DfsError, VersionRecord } from '../protocol';
import { AppliedChange, Catalog, CatalogChange, CatalogMarks, CatalogOpening, CommitOptions, Fingerprint, FingerprintNote, versionKey } from './catalog';
import { CatalogIndex } from './catalog-index';
import { NameState, applyRecord, isEmptyState, withoutVersion } from './name-state';
import { ContainedFs } from './contained-fs';
import type { DiskFailures } from './disk-failures';
import { JournalWriter } from './journal-writer';

const FORMAT = 1;
const SNAPSHOT = 'snapshot.jsonl';
/** A snapshot is written once the journal has this many lines beyond it. */
export const DEFAULT_COMPACT_AFTER_LINES = 20_000;
/**
 * ... or once the current journal file is this long: records carrying small files'
 * bytes make lines long, and replay reads a journal file whole.
 */
export const DEFAULT_COMPACT_AFTER_BYTES = 16 * 1024 * 1024;

interface JournalLine {
  /** A version or tombstone, the `keep` it was applied with, and the staged bytes it names. */
  r?: VersionRecord;
  k?: number;
  s?: string;
  /** The version's bytes, base64, when they travel inside the record (small files). */
  b?: string;
  /** A dropped version: client, name, generation, and 1 when it is a tombstone. */
  d?: [string, string, number, number?];
  m?: Partial<CatalogMarks>;
  /** A fingerprint: client, name, generation, inode, size, mtime. */
  f?: [string, string, number, number, number, number];
  /** Changes committed atomically (a rename): one line, so a crash keeps all of them or none. */
  a?: JournalLine[];
}

interface SnapshotHeader {
  format: number;
  /** The journal file that continues this snapshot. */
  journal: number;
  marks: CatalogMarks;
}

export interface JournalCatalogOptions {
  durable?: boolean;
  log?: (line: string) => void;
  /** Journal lines beyond the snapshot before a new snapshot is written. */
  compactAfterLines?: number;
  /** Bytes of the current journal file before a new snapshot is written. */
  compactAfterBytes?: number;
  /** Names the node when its disk is full. */
  failures?: DiskFailures;
}

/**
 * The catalog as files under `<root>/.dfs/catalog`: a snapshot (JSON lines, replaced
 * atomically) and the journal files after it (append-only JSON lines). Every change is
 * appended and synced before commit() resolves; replay at open applies the same rules
 * the running node applied, so the state after a restart is the state before it.
 */
export class JournalCatalog implements Catalog {
  readonly index = new CatalogIndex();
  private currentMarks: CatalogMarks = { nodeId: '', reserved: 0, synced: -1, completeThrough: -1, replicas: {}, highest: -1, revoked: [], epoch: 0 };
  private readonly fingerprints = new Map<string, Fingerprint>();
  /** Staged files named by records whose placement has not been confirmed (by a fingerprint) yet. */
  private readonly pendingStaged = new Map<string, string>();
  /**
   * Bytes of versions recorded inline whose placed file is not confirmed durable yet (a
   * fingerprint note, written only after the file and its folder were synced). Kept
   * here, and in any snapshot taken meanwhile, because until then the journal holds the
   * only copy this node can count on.
   */
  private readonly pendingInline = new Map<string, Buffer>();
  private writer: JournalWriter | undefined;
  private journalSeq = 1;
  private linesSinceSnapshot = 0;
  private compacting: Promise<void> | undefined;
  private readonly durable: boolean;
  private readonly log: (line: string) => void;
  private readonly compactAfterLines: number;
  private readonly compactAfterBytes: number;
  private readonly failures: DiskFailures | undefined;

  private files: ContainedFs | undefined;
  /** The catalog's folder, relative to the files' root. */
  private dir = '';
  /** Set when the catalog made its own ContainedFs (a bare folder path), so it closes it. */
  private ownsFiles = false;

  /**
   * `location` is a node's ContainedFs and the catalog folder in it, or a bare folder
   * path (tools and tests), which is then confined to its parent folder.
   */
  constructor(
    private readonly location: string | { files: ContainedFs; dir: string },
    options: JournalCatalogOptions = {},
  ) {
    this.durable = options.durable ?? true;
    this.log = options.log ?? (() => undefined);
    this.compactAfterLines = options.compactAfterLines ?? DEFAULT_COMPACT_AFTER_LINES;
    this.compactAfterBytes = options.compactAfterBytes ?? DEFAULT_COMPACT_AFTER_BYTES;
    this.failures = options.failures;
  }

  private get contained(): ContainedFs {
    if (!this.files) {
      throw new DfsError('STORAGE', 'the catalog is not open');
    }
    return this.files;
  }

  private async locate(): Promise<void> {
    if (typeof this.location !== 'string') {
      this.files = this.location.files;
      this.dir = this.location.dir;
      return;
    }
    const absolute = path.resolve(this.location);
    await fs.mkdir(absolute, { recursive: true });
    this.files = new ContainedFs(await fs.realpath(path.dirname(absolute)));
    await this.files.open();
    this.dir = path.basename(absolute);
    this.ownsFiles = true;
  }

  /** Writes and syncs of the journal so far (group commit shares them). */
  get stats(): { batches: number; syncs: number } {
    return this.writer?.stats ?? { batches: 0, syncs: 0 };
  }

  /** Resolves once a compaction under way (if any) has written its snapshot. */
  async settled(): Promise<void> {
    await this.compacting;
  }

  get marks(): Readonly<CatalogMarks> {
    return this.currentMarks;
  }

  async open(initial?: () => Promise<readonly CatalogChange[]>): Promise<CatalogOpening> {
    await this.locate();
    try {
      return await this.openLocated(initial);
    } catch (error) {
      await this.writer?.close().catch(() => undefined);
      this.writer = undefined;
      if (this.ownsFiles) {
        await this.files?.close();
        this.files = undefined;
      }
      throw error;
    }
  }

  private async openLocated(initial?: () => Promise<readonly CatalogChange[]>): Promise<CatalogOpening> {
    await this.contained.mkdirs(this.dir);
    this.index.clearAll();
    this.fingerprints.clear();
    this.pendingStaged.clear();
    this.pendingInline.clear();
    const opening: CatalogOpening = { created: false, staged: new Map(), inline: new Map(), damagedLines: 0 };
    const snapshotFile = `${this.dir}/${SNAPSHOT}`;
    let snapshotText: string | undefined;
    try {
      snapshotText = await this.readText(snapshotFile);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new DfsError('STORAGE', `cannot read the catalog ${this.contained.absolute(snapshotFile)}: ${(error as Error).message}`);
      }
    }
    if (snapshotText === undefined) {
      if ((await this.journalFiles()).length > 0) {
        const where = this.contained.absolute(this.dir);
        throw new DfsError('STORAGE', `the catalog in ${where} has journal files but no snapshot; the node does not start on it. Move ${where} aside to rebuild this node from its peers.`);
      }
      opening.created = true;
      this.currentMarks = { nodeId: randomBytes(8).toString('hex'), reserved: 0, synced: -1, completeThrough: -1, replicas: {}, highest: -1, revoked: [], epoch: 0 };
      this.journalSeq = 1;
      // What the catalog starts with (an upgraded data folder's files) goes into its very
      // first snapshot: a crash before that snapshot is in place leaves no catalog, and
      // the next start does the same again.
      for (const change of (await initial?.()) ?? []) {
        this.apply(change);
      }
      await this.writeSnapshot(this.snapshotText());
    } else {
      this.loadSnapshot(snapshotText, snapshotFile);
    }
    const journals = (await this.journalFiles()).filter((seq) => seq >= this.journalSeq);
    for (const seq of journals) {
      opening.damagedLines += await this.replay(seq, seq === journals.at(-1));
    }
    if (journals.length > 0) {
      this.journalSeq = journals.at(-1)!;
    }
    const file = this.journalFile(this.journalSeq);
    const handle = await this.openForAppend(file);
    const { size } = await handle.stat();
    this.writer = new JournalWriter(handle, size, this.durable, `the catalog journal ${file}`, this.failures);
    this.writer.betweenBatches = () => this.compactIfDue();
    if (this.durable) {
      await this.contained.syncFolder(this.dir);
    }
    if (opening.damagedLines > 0) {
      // A record that could not be read may have held a version this node still has or
      // a delete: missing it, the node no longer knows it is complete through anything,
      // or its gaps would pass for deletes on the other nodes.
      await this.commit([{ kind: 'marks', marks: { synced: -1, completeThrough: -1 } }]);
      this.log(
        `catalog: ${opening.damagedLines} damaged journal lines were skipped; this node no longer claims to be complete through any generation, so catch-up compares all of it with the other nodes again and takes what they hold`,
      );
    }
    opening.staged = new Map(this.pendingStaged);
    opening.inline = new Map(this.pendingInline);
    return opening;
  }

  async close(): Promise<void> {
    await this.writer?.close();
    this.writer = undefined;
    await this.compacting;
    if (this.ownsFiles) {
      await this.files?.close();
      this.files = undefined;
    }
  }

  commit(changes: readonly CatalogChange[], options: CommitOptions = {}): Promise<AppliedChange[]> {
    const writer = this.writer;
    if (!writer) {
      return Promise.reject(new DfsError('STORAGE', 'the catalog is not open'));
    }
    const text = options.atomic
      ? JSON.stringify({ a: changes.map(toLine) } satisfies JournalLine) + '\n'
      : changes.map((change) => JSON.stringify(toLine(change)) + '\n').join('');
    let applied: AppliedChange[] = [];
    this.linesSinceSnapshot += options.atomic ? 1 : changes.length;
    return writer
      .append(text, true, () => {
        applied = changes.map((change) => this.apply(change)).filter((change): change is AppliedChange => change !== undefined);
      })
      .then(() => applied);
  }

  note(notes: readonly FingerprintNote[]): void {
    const writer = this.writer;
    if (!writer || notes.length === 0) {
      return;
    }
    for (const note of notes) {
      const key = versionKey(note.clientId, note.name, note.generation);
      this.fingerprints.set(key, note.fingerprint);
      this.pendingStaged.delete(key);
      this.pendingInline.delete(key);
    }
    const text = notes
      .map((note) => JSON.stringify({ f: [note.clientId, note.name, note.generation, note.fingerprint.ino, note.fingerprint.size, note.fingerprint.mtimeMs] } satisfies JournalLine) + '\n')
      .join('');
    this.linesSinceSnapshot += notes.length;
    // A lost note costs a rehash at the next start, nothing more.
    writer.append(text, false).catch(() => undefined);
  }

  /** The catalog holds this version's bytes itself: its record carried them and no placement of them is confirmed yet. */
  keepsBytes(clientId: string, name: string, generation: number): boolean {
    return this.pendingInline.has(versionKey(clientId, name, generation));
  }

  fingerprint(clientId: string, name: string, generation: number): Fingerprint | undefined {
    return this.fingerprints.get(versionKey(clientId, name, generation));
  }

  /** Applies one change to the in-memory state: the same code at run time and at replay. */
  private apply(change: CatalogChange): AppliedChange | undefined {
    switch (change.kind) {
      case 'record': {
        const { clientId, name, generation } = change.record;
        const before = this.index.get(clientId, name);
        const { state, outcome } = applyRecord(before, change.record, change.keep);
        this.index.set(clientId, name, state);
        this.forgetFingerprints(clientId, name, before, state);
        if (change.staged && outcome !== 'stale') {
          this.pendingStaged.set(versionKey(clientId, name, generation), change.staged);
        }
        if (change.inline && outcome !== 'stale') {
          this.pendingInline.set(versionKey(clientId, name, generation), change.inline);
        }
        if (generation > this.currentMarks.highest) {
          this.currentMarks.highest = generation;
        }
        return { clientId, name, before, after: this.index.get(clientId, name), outcome };
      }
      case 'drop': {
        const before = this.index.get(change.clientId, change.name);
        if (!before) {
          return { clientId: change.clientId, name: change.name, before, after: undefined, outcome: 'stale' };
        }
        const after = withoutVersion(before, change.generation, change.tombstone);
        this.index.set(change.clientId, change.name, isEmptyState(after) ? undefined : after);
        this.forgetFingerprints(change.clientId, change.name, before, after);
        return { clientId: change.clientId, name: change.name, before, after: this.index.get(change.clientId, change.name), outcome: 'current' };
      }
      case 'marks':
        this.currentMarks = { ...this.currentMarks, ...change.marks, nodeId: this.currentMarks.nodeId };
        return undefined;
    }
  }

  private forgetFingerprints(clientId: string, name: string, before: NameState | undefined, after: NameState | undefined): void {
    for (const version of before?.versions ?? []) {
      if (!after?.versions.some((kept) => kept.generation === version.generation)) {
        this.fingerprints.delete(versionKey(clientId, name, version.generation));
        this.pendingStaged.delete(versionKey(clientId, name, version.generation));
        this.pendingInline.delete(versionKey(clientId, name, version.generation));
      }
    }
  }

  private loadSnapshot(text: string, file: string): void {
    const lines = text.split('\n').filter((line) => line.length > 0);
    let header: SnapshotHeader;
    try {
      header = JSON.parse(lines[0] ?? '') as SnapshotHeader;
    } catch {
      header = undefined as unknown as SnapshotHeader;
    }
    if (!header || header.format !== FORMAT || !Number.isInteger(header.journal) || !header.marks?.nodeId) {
      // Starting empty would make this node look new and let catch-up throw away what it holds.
      throw new DfsError(
        'STORAGE',
        `the catalog snapshot ${this.contained.absolute(file)} is damaged or of an unknown format; the node does not start on it. Move ${this.contained.absolute(this.dir)} aside to rebuild this node from its peers.`,
      );
    }
    this.currentMarks = { ...({ replicas: {}, highest: -1, revoked: [], epoch: 0 } as Pick<CatalogMarks, 'replicas' | 'highest' | 'revoked' | 'epoch'>), ...header.marks };
    this.journalSeq = header.journal;
    for (const line of lines.slice(1)) {
      const entry = JSON.parse(line) as { c?: string; n?: string; st?: NameState; f?: JournalLine['f']; p?: [string, string, number, string]; i?: [string, string, number, string] };
      if (entry.c !== undefined && entry.n !== undefined && entry.st) {
        this.index.set(entry.c, entry.n, entry.st);
      } else if (entry.f) {
        this.applyFingerprint(entry.f);
      } else if (entry.p) {
        this.pendingStaged.set(versionKey(entry.p[0], entry.p[1], entry.p[2]), entry.p[3]);
      } else if (entry.i) {
        this.pendingInline.set(versionKey(entry.i[0], entry.i[1], entry.i[2]), Buffer.from(entry.i[3], 'base64'));
      }
    }
  }

  /** Replays one journal file; returns how many lines were damaged. A torn last line is cut off. */
  private async replay(seq: number, last: boolean): Promise<number> {
    const file = this.journalFile(seq);
    const text = await this.readText(file);
    let damaged = 0;
    let offset = 0;
    let goodEnd = 0;
    while (offset < text.length) {
      const newline = text.indexOf('\n', offset);
      if (newline === -1) {
        break; // Torn by a crash mid-append: never acknowledged.
      }
      const line = text.slice(offset, newline);
      offset = newline + 1;
      let parsed: JournalLine;
      try {
        parsed = JSON.parse(line) as JournalLine;
      } catch {
        damaged++;
        goodEnd = offset;
        continue;
      }
      const change = fromLine(parsed);
      if (change) {
        this.apply(change);
        this.linesSinceSnapshot++;
      } else if (parsed.a) {
        for (const part of parsed.a.map(fromLine)) {
          if (part) {
            this.apply(part);
          }
        }
        this.linesSinceSnapshot++;
      } else if (parsed.f) {
        this.applyFingerprint(parsed.f);
      }
      goodEnd = offset;
    }
    if (last && Buffer.byteLength(text.slice(goodEnd)) > 0) {
      const handle = await this.contained.openFile(file, constants.O_RDWR);
      try {
        await handle.truncate(Buffer.byteLength(text.slice(0, goodEnd)));
        if (this.durable) {
          await handle.sync();
        }
      } finally {
        await handle.close();
      }
    }
    return damaged;
  }

  private applyFingerprint(f: NonNullable<JournalLine['f']>): void {
    const [clientId, name, generation, ino, size, mtimeMs] = f;
    if (this.index.get(clientId, name)?.versions.some((version) => version.generation === generation)) {
      this.fingerprints.set(versionKey(clientId, name, generation), { ino, size, mtimeMs });
      this.pendingStaged.delete(versionKey(clientId, name, generation));
      this.pendingInline.delete(versionKey(clientId, name, generation));
    }
  }

  private snapshotText(): string {
    const header: SnapshotHeader = { format: FORMAT, journal: this.journalSeq, marks: this.currentMarks };
    const lines = [JSON.stringify(header)];
    for (const { clientId, name, state } of this.index.all()) {
      lines.push(JSON.stringify({ c: clientId, n: name, st: state }));
      for (const version of state.versions) {
        const print = this.fingerprints.get(versionKey(clientId, name, version.generation));
        if (print) {
          lines.push(JSON.stringify({ f: [clientId, name, version.generation, print.ino, print.size, print.mtimeMs] }));
        }
        // A placement under way when the snapshot is taken must still be finishable after a crash.
        const staged = this.pendingStaged.get(versionKey(clientId, name, version.generation));
        if (staged) {
          lines.push(JSON.stringify({ p: [clientId, name, version.generation, staged] }));
        }
        // Inline bytes not yet confirmed in their placed file: the old journal goes once this snapshot is in place.
        const inline = this.pendingInline.get(versionKey(clientId, name, version.generation));
        if (inline) {
          lines.push(JSON.stringify({ i: [clientId, name, version.generation, inline.toString('base64')] }));
        }
      }
    }
    return lines.join('\n') + '\n';
  }

  private async writeSnapshot(text: string): Promise<void> {
    const file = `${this.dir}/${SNAPSHOT}`;
    const temporary = `${file}.new`;
    const handle = await this.contained.openFile(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC);
    try {
      await handle.writeFile(text);
      if (this.durable) {
        await handle.sync();
      }
    } catch (error) {
      // A snapshot cut short by a full disk must not keep the space it took.
      await handle.close().catch(() => undefined);
      await this.contained.unlink(temporary).catch(() => undefined);
      throw error;
    } finally {
      await handle.close().catch(() => undefined);
    }
    await this.contained.rename(temporary, file);
    if (this.durable) {
      await this.contained.syncFolder(this.dir);
    }
  }

  private async readText(file: string): Promise<string> {
    const handle = await this.contained.openFile(file, constants.O_RDONLY);
    try {
      return await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  }

  private async openForAppend(file: string): Promise<fs.FileHandle> {
    try {
      return await this.contained.openFile(file, constants.O_RDWR);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw error;
      }
      return this.contained.openFile(file, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL);
    }
  }

  /**
   * Between two batches (nothing in flight, the state is exactly what the journal
   * holds): start the next journal file, and write the state so far as the snapshot
   * that continues with it. Until that snapshot is in place, replay reads the old
   * snapshot and both journal files.
   */
  private async compactIfDue(): Promise<void> {
    if (this.compacting || !this.writer || (this.linesSinceSnapshot < this.compactAfterLines && this.writer.length < this.compactAfterBytes)) {
      return;
    }
    const nextSeq = this.journalSeq + 1;
    const handle = await this.openForAppend(this.journalFile(nextSeq));
    if (this.durable) {
      await this.contained.syncFolder(this.dir);
    }
    const previous = this.writer.switchTo(handle, 0);
    this.journalSeq = nextSeq;
    this.linesSinceSnapshot = 0;
    const text = this.snapshotText();
    this.compacting = (async () => {
      await previous.close().catch(() => undefined);
      await this.writeSnapshot(text);
      await this.removeJournalsBefore(nextSeq);
    })()
      .catch((error: Error) => this.log(`catalog: compaction failed, the journal keeps growing until the next try: ${error.message}`))
      .finally(() => {
        this.compacting = undefined;
      });
  }

  private journalFile(seq: number): string {
    return `${this.dir}/journal-${String(seq).padStart(8, '0')}.log`;
  }

  private async journalFiles(): Promise<number[]> {
    const seqs: number[] = [];
    for (const { name } of await this.contained.readdir(this.dir)) {
      const match = /^journal-(\d+)\.log$/.exec(name);
      if (match) {
        seqs.push(Number(match[1]));
      }
    }
    return seqs.sort((a, b) => a - b);
  }

  private async removeJournalsBefore(seq: number): Promise<void> {
    for (const existing of await this.journalFiles()) {
      if (existing < seq) {
        await this.contained.unlink(this.journalFile(existing)).catch(() => undefined);
      }
    }
  }
}

function toLine(change: CatalogChange): JournalLine {
  switch (change.kind) {
    case 'record':
      return {
        r: change.record,
        k: change.keep,
        ...(change.staged ? { s: change.staged } : {}),
        ...(change.inline ? { b: change.inline.toString('base64') } : {}),
      };
    case 'drop':
      return { d: change.tombstone ? [change.clientId, change.name, change.generation, 1] : [change.clientId, change.name, change.generation] };
    case 'marks':
      return { m: change.marks };
  }
}

function fromLine(line: JournalLine): CatalogChange | undefined {
  if (line.r) {
    return { kind: 'record', record: line.r, keep: line.k ?? 0, staged: line.s, inline: line.b === undefined ? undefined : Buffer.from(line.b, 'base64') };
  }
  if (line.d) {
    return { kind: 'drop', clientId: line.d[0], name: line.d[1], generation: line.d[2], tombstone: line.d[3] === 1 };
  }
  if (line.m) {
    return { kind: 'marks', marks: line.m };
  }
  return undefined;
}
