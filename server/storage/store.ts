import type { Readable } from 'stream';
import type { ClientRecord, FileRecord, InventoryHeader, InventoryRecord, VersionInfo, VersionRecord } from '../protocol';
import type { CatalogMarks } from './catalog';
import type { ApplyOutcome, NameState } from './name-state';

/** Bytes being received: invisible to every listing until committed. */
export interface StagedWrite {
  readonly bytesWritten: number;
  /** A small file whose bytes travel inside its catalog record: seal() need not come before that record. */
  readonly inline: boolean;
  /** May keep `chunk` until seal(): the caller must not reuse or modify it afterwards. */
  write(chunk: Buffer): Promise<void>;
  /** Flushes the bytes (and their staging entry) to stable storage; an inline write's only to the kernel (its record makes them durable). */
  seal(): Promise<void>;
  /** Throws the bytes away; safe to call more than once and after a commit. */
  abort(): Promise<void>;
  /**
   * The first `upTo` bytes written, read back before seal(): pipeline replication
   * replays them to a replica that joins the chain mid-transfer. Optional: without it
   * a hop that fails mid-transfer cuts off the rest of the chain for that upload.
   */
  readBack?(upTo: number): AsyncIterable<Buffer>;
}

/** A version's bytes, opened for reading. */
export interface OpenedCopy {
  record: VersionRecord;
  body: Readable;
  /**
   * The file is the one placed or last verified, unchanged since (same inode, size and
   * modification time). Bit rot changes none of these, so the bytes must still be
   * checked as they are read; a file written over in place changes them.
   */
  unchanged: boolean;
}

/** What open() found and did, for the log. */
export interface StoreOpening {
  /** Files of a data folder written before catalogs, now recorded (at generation 0, or fresh ones on an authoritative primary). */
  upgraded?: { files: number; authoritative: boolean };
  /** Placements a crash interrupted, finished now. */
  redone: number;
  /** Versions whose bytes are missing or do not match: repaired from other nodes. */
  damaged: number;
  /** Files on disk the catalog does not hold, moved to `.dfs/orphans`. */
  orphans: number;
}

/**
 * A node's storage: its catalog (which versions it holds, durably) and their bytes.
 * Current versions are plain files at `<root>/<client_id>/<name>`, so the report's
 * layout holds; older versions, staged bytes and the catalog live under `<root>/.dfs`,
 * which no client id can name.
 */
export interface Store {
  readonly root: string;
  open(): Promise<StoreOpening>;
  /** Releases what open() took; the store can be opened again. */
  close(): Promise<void>;
  /** `size`, when known before the first byte, lets a small file's bytes travel inside its catalog record. */
  stage(size?: number): Promise<StagedWrite>;
  /**
   * Records a version (durably, in the catalog) and puts its bytes in place; without
   * staged bytes the version is recorded as damaged until they are supplied. A version
   * that is not newer than what the node holds becomes history or is dropped.
   * `onRecorded` runs once the record is on disk, alongside the placement (a primary
   * tells its replicas to commit then); both are awaited.
   */
  commitVersion(staged: StagedWrite | undefined, record: VersionRecord, keep: number, onRecorded?: () => Promise<void>): Promise<ApplyOutcome>;
  /** Records a delete: the current file and its older versions go. */
  commitTombstone(record: VersionRecord, onRecorded?: () => Promise<void>): Promise<ApplyOutcome>;
  /**
   * Renames a stored file: the tombstone of its source and the destination's version
   * (same generation, the source's bytes) are recorded together, atomically.
   */
  commitRename(sourceGeneration: number, tombstone: VersionRecord, record: VersionRecord, keep: number, onRecorded?: () => Promise<void>): Promise<ApplyOutcome>;
  /** Stops holding one version (or, with `tombstone`, a tombstone every copy has applied). */
  dropVersion(clientId: string, name: string, generation: number, tombstone?: boolean): Promise<void>;
  /** Records marks durably. */
  setMarks(marks: Partial<Omit<CatalogMarks, 'nodeId' | 'highest'>>): Promise<void>;
  /** Adds key ids to the revoked ones, durably. */
  revoke(keyIds: readonly string[]): Promise<void>;
  /** Raises `reserved` and `synced` (never lowers them), in order. */
  raiseMarks(marks: { reserved?: number; synced?: number }): Promise<void>;
  /** New at every open: what a certification must name to be taken. */
  readonly session: string;
  readonly marks: Readonly<CatalogMarks>;
  /** Throws CONFLICT when the name clashes with a stored folder or file, or (case-insensitive disks) another name. */
  assertCanStore(clientId: string, name: string): void;
  state(clientId: string, name: string): NameState | undefined;
  /** The current version, or the tombstone of a deleted name. */
  current(clientId: string, name: string): VersionRecord | undefined;
  /** The current version of a stored file. */
  get(clientId: string, name: string): FileRecord | undefined;
  list(clientId: string): FileRecord[];
  clients(): ClientRecord[];
  all(): FileRecord[];
  versions(clientId: string, name: string): VersionInfo[];
  /** Bytes a client's versions take, older ones included: what the quota counts. */
  usage(clientId: string): number;
  inventory(): { header: InventoryHeader; records: InventoryRecord[] };
  /** True when the version is held and its bytes are in place (not known to be damaged). */
  hasBytes(clientId: string, name: string, generation: number): boolean;
  openRead(clientId: string, name: string, generation?: number): Promise<OpenedCopy>;
  /** Hashes a version's bytes again; false (and marked damaged) when missing or changed, throws when unreadable. */
  verify(clientId: string, name: string, generation?: number): Promise<boolean>;
  markDamaged(clientId: string, name: string, generation: number, reason: string): void;
  /** Names whose tombstone is at or below `generation`, with the tombstone's generation. */
  tombstonesThrough(generation: number): { clientId: string; name: string; generation: number }[];
}
