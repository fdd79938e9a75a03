import type { Readable } from 'stream';
import type { ClientRecord, FileRecord } from '../protocol';

/** Bytes being received: invisible to every listing until committed. */
export interface StagedWrite {
  readonly bytesWritten: number;
  /** May keep `chunk` until seal(): the caller must not reuse or modify it afterwards. */
  write(chunk: Buffer): Promise<void>;
  /** Flushes the bytes to stable storage; a sealed write survives a crash only in the staging area. */
  seal(): Promise<void>;
  /** Throws the bytes away; safe to call more than once and after a failed commit. */
  abort(): Promise<void>;
}

/**
 * What the servers need from a node's storage. Stored files are plain files at
 * `<root>/<client_id>/<name>`, so the report's layout holds; everything else lives
 * under `<root>/.dfs`, which no client id can name.
 */
export interface Store {
  readonly root: string;
  open(): Promise<void>;
  /** Releases what open() took; the store can be opened again. */
  close(): Promise<void>;
  stage(): Promise<StagedWrite>;
  /** Atomically replaces (or creates) the file with the staged bytes. */
  commit(staged: StagedWrite, clientId: string, name: string, sha256: string): Promise<FileRecord>;
  /** Throws CONFLICT when the name clashes with an existing folder or file. */
  assertCanStore(clientId: string, name: string): Promise<void>;
  /** Returns false when there was nothing to remove. */
  remove(clientId: string, name: string): Promise<boolean>;
  get(clientId: string, name: string): FileRecord | undefined;
  list(clientId: string): FileRecord[];
  clients(): ClientRecord[];
  all(): FileRecord[];
  openRead(clientId: string, name: string): Promise<Readable>;
  /** Hashes the bytes on disk again; false when they are missing or no longer match, throws when they cannot be read. */
  verify(clientId: string, name: string): Promise<boolean>;
}
