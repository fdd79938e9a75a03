import type { VersionRecord } from '../protocol';
import type { CatalogIndex } from './catalog-index';
import type { ApplyOutcome, NameState } from './name-state';

/** What a node's catalog says about the node itself, beside its names. */
export interface CatalogMarks {
  /** Random, made with the catalog: a replaced data folder has a new one. */
  nodeId: string;
  /** The highest generation reserved for a primary to issue; none at or below it is issued again. */
  reserved: number;
  /** On a replica: the generation a primary certified it complete through; -1 when never. */
  synced: number;
  /** On a primary: the generation its own catalog is complete through; -1 when nothing is certain. */
  completeThrough: number;
  /** On a primary: the last `synced` each replica (by id) acknowledged. */
  replicas: Record<string, number>;
  /** The highest generation of any record this node has applied, kept after the record itself is dropped. */
  highest: number;
  /** Ids of client and admin keys no longer honoured. */
  revoked: string[];
  /** On a replica: the newest leadership epoch a primary has shown it; requests under older ones are refused. 0 when none. */
  epoch: number;
}

/** Where a version's bytes sat when they were last checked, so a restart need not hash them again. */
export interface Fingerprint {
  ino: number;
  size: number;
  mtimeMs: number;
}

export type CatalogChange =
  /**
   * A version or a tombstone, applied by the rules in name-state.ts; `staged` names the
   * bytes to place, or `inline` carries them (small files): synced with the record, so
   * a restart can place them again whatever became of the file.
   */
  | { kind: 'record'; record: VersionRecord; keep: number; staged?: string; inline?: Buffer }
  /** A version no longer held (or, with `tombstone`, a tombstone dropped once every copy has it). */
  | { kind: 'drop'; clientId: string; name: string; generation: number; tombstone?: boolean }
  | { kind: 'marks'; marks: Partial<Omit<CatalogMarks, 'nodeId' | 'highest'>> };

export interface CommitOptions {
  /**
   * All the changes or none survive a crash: they are written as one journal record.
   * A rename's tombstone and its destination's version go together this way, so no
   * crash leaves a node holding both names or neither.
   */
  atomic?: boolean;
}

/** A change that may be lost in a crash: it only saves work at the next start. */
export interface FingerprintNote {
  clientId: string;
  name: string;
  generation: number;
  fingerprint: Fingerprint;
}

export interface AppliedChange {
  clientId: string;
  name: string;
  before: NameState | undefined;
  after: NameState | undefined;
  outcome: ApplyOutcome;
}

/** What open() found. */
export interface CatalogOpening {
  /** No catalog existed: a new data folder, or one written before catalogs (to upgrade). */
  created: boolean;
  /** Staged files named by records whose placement was not confirmed, by version key: it may not have happened yet. */
  staged: Map<string, string>;
  /** Bytes carried by records whose placement was not confirmed, by version key: the file may be missing, short or unsynced. */
  inline: Map<string, Buffer>;
  /** Lines that could not be read (a torn tail after a crash is normal and not counted). */
  damagedLines: number;
}

/**
 * A node's durable record of which versions it holds: the single source of truth for
 * what is stored, replacing any inference from the files on disk. The journal on disk
 * is one implementation; the failover work puts the commit records in etcd behind the
 * same interface.
 */
export interface Catalog {
  /** `initial` supplies the changes a new catalog starts with; they become durable together with its creation. */
  open(initial?: () => Promise<readonly CatalogChange[]>): Promise<CatalogOpening>;
  close(): Promise<void>;
  /**
   * Records changes and resolves once they are on stable storage and applied, in
   * order. Concurrent calls share one sync (group commit).
   */
  commit(changes: readonly CatalogChange[], options?: CommitOptions): Promise<AppliedChange[]>;
  /** Records fingerprints without waiting for stable storage. */
  note(notes: readonly FingerprintNote[]): void;
  readonly index: CatalogIndex;
  readonly marks: Readonly<CatalogMarks>;
  fingerprint(clientId: string, name: string, generation: number): Fingerprint | undefined;
}

export function versionKey(clientId: string, name: string, generation: number): string {
  return `${clientId}\u0000${name}\u0000${generation}`;
}
