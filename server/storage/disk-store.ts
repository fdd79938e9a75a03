import { createHash, randomBytes } from 'crypto';
import { createReadStream, promises as fs } from 'fs';
import * as path from 'path';
import type { Readable } from 'stream';
import { ClientRecord, DfsError, FileRecord, validateClientId, validateFileName } from '../protocol';
import { caseClash } from './case-folding';
import { ChecksumEntry, ChecksumLog } from './checksum-log';
import { fileKey } from './key-lock';
import type { StagedWrite, Store } from './store';

const STATE_DIR = '.dfs';


export interface DiskStoreOptions {
  /** fsync data and directories before a commit returns; off only for throwaway benchmarks baselines. */
  durable?: boolean;
  log?: (line: string) => void;
}

/**
 * A node's files on the local disk. Checksums are cached in one log per node, keyed by
 * inode, size and mtime, so a crash between rename and log write only costs a rehash.
 */
export class DiskStore implements Store {
  private readonly index = new Map<string, Map<string, FileRecord>>();
  private readonly tmpDir: string;
  private readonly checksums: ChecksumLog;
  /** The bytes each checksum was computed from, to tell the log what it may trust. */
  private readonly onDisk = new Map<string, ChecksumEntry>();
  /** Folders known to exist durably, so a commit into one skips its mkdir. */
  private readonly knownFolders = new Set<string>();
  private readonly pendingFolders = new Map<string, Promise<void>>();
  /** Probed at open(): names differing only in case are then one file on disk. */
  private caseInsensitive = false;
  private readonly durable: boolean;
  private readonly log: (line: string) => void;

  constructor(
    readonly root: string,
    options: DiskStoreOptions = {},
  ) {
    this.root = path.resolve(root);
    this.tmpDir = path.join(this.root, STATE_DIR, 'tmp');
    this.checksums = new ChecksumLog(path.join(this.root, STATE_DIR, 'checksums.log'), options.log ?? (() => undefined));
    this.durable = options.durable ?? true;
    this.log = options.log ?? (() => undefined);
  }

  async open(): Promise<void> {
    // Whatever is staged belongs to a transfer that died with the previous process.
    await fs.rm(this.tmpDir, { recursive: true, force: true });
    await fs.mkdir(this.tmpDir, { recursive: true });
    this.index.clear();
    this.onDisk.clear();
    this.knownFolders.clear();
    const remembered = await this.checksums.read();
    this.caseInsensitive = await probeCaseInsensitive(path.join(this.root, STATE_DIR));
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
      await this.loadClient(entry.name, remembered.get(entry.name));
    }
    if (this.durable) {
      await syncDirectory(this.root);
    }
    // Start the log afresh from what is really on disk: no stale or torn lines survive a restart.
    await this.checksums.rewrite(this.entries());
  }

  async close(): Promise<void> {
    await this.checksums.close();
  }

  async stage(): Promise<StagedWrite> {
    const file = path.join(this.tmpDir, `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`);
    const handle = await fs.open(file, 'wx').catch((error: Error) => {
      throw new DfsError('STORAGE', `cannot stage bytes under ${this.tmpDir}: ${error.message}`);
    });
    return new DiskStagedWrite(file, handle, this.durable);
  }

  async commit(staged: StagedWrite, clientId: string, name: string, sha256: string): Promise<FileRecord> {
    if (!(staged instanceof DiskStagedWrite)) {
      throw new DfsError('INTERNAL', 'staged write belongs to another store');
    }
    await staged.seal();
    const target = this.pathOf(clientId, name);
    const parent = path.dirname(target);
    await this.ensureFolder(parent, clientId);
    try {
      await fs.rename(staged.file, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw conflictOrStorage(error, `cannot store ${name}: a folder of that name exists`);
      }
      // The folder was pruned by a delete since we saw it: make it again, once.
      this.knownFolders.delete(parent);
      await this.ensureFolder(parent, clientId);
      await fs.rename(staged.file, target).catch((again: unknown) => {
        throw conflictOrStorage(again, `cannot store ${name}: a folder of that name exists`);
      });
    }
    staged.markCommitted();
    // From the rename on, the file is on disk: the index says so even if the folder
    // sync fails, so what LIST shows and what catch-up copies never disagree with the disk.
    const syncFailure = this.durable ? await syncDirectory(parent).then(() => undefined, (error: Error) => error) : undefined;
    const stat = await fs.stat(target);
    const record: FileRecord = { clientId, name, size: stat.size, mtimeMs: Math.round(stat.mtimeMs), sha256 };
    const entry: ChecksumEntry = { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, sha256 };
    this.onDisk.set(fileKey(clientId, name), entry);
    await this.checksums.record(clientId, name, entry);
    this.clientIndex(clientId).set(name, record);
    if (syncFailure) {
      throw new DfsError('STORAGE', `${name} is in place but its folder could not be synced to disk (${syncFailure.message}); it may not survive a power loss`);
    }
    await this.compactIfDue();
    return record;
  }

  /** Fails early, before any byte is sent, when a name clashes with a folder or a folder with a file. */
  async assertCanStore(clientId: string, name: string): Promise<void> {
    const target = this.pathOf(clientId, name);
    if (this.caseInsensitive) {
      for (const file of this.index.get(clientId)?.values() ?? []) {
        const clash = caseClash(name, file.name);
        if (clash) {
          throw new DfsError('CONFLICT', `cannot store ${name}: this file system does not tell it apart from ${clash}, which is stored already; rename one of them`);
        }
      }
    }
    const stat = await fs.stat(target).catch(() => undefined);
    if (stat?.isDirectory()) {
      throw new DfsError('CONFLICT', `cannot store ${name}: a folder of that name exists`);
    }
    const clientDir = this.clientDir(clientId);
    for (let dir = path.dirname(target); dir.startsWith(clientDir + path.sep); dir = path.dirname(dir)) {
      const parent = await fs.stat(dir).catch(() => undefined);
      if (parent && !parent.isDirectory()) {
        throw new DfsError('CONFLICT', `cannot store ${name}: ${path.relative(clientDir, dir)} is a file, not a folder`);
      }
    }
  }

  async remove(clientId: string, name: string): Promise<boolean> {
    const target = this.pathOf(clientId, name);
    let removed = true;
    try {
      await fs.unlink(target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new DfsError('STORAGE', `cannot delete ${name}: ${(error as Error).message}`);
      }
      removed = false;
    }
    await this.checksums.forget(clientId, name);
    this.onDisk.delete(fileKey(clientId, name));
    this.index.get(clientId)?.delete(name);
    const survivor = await this.pruneEmptyFolders(path.dirname(target), this.clientDir(clientId));
    if (this.durable && removed) {
      // The removal (of the file, or of the folders pruned above it) lives in the deepest folder left.
      await syncDirectory(survivor);
    }
    return removed;
  }

  get(clientId: string, name: string): FileRecord | undefined {
    return this.index.get(clientId)?.get(name);
  }

  list(clientId: string): FileRecord[] {
    const files = this.index.get(clientId);
    return files ? [...files.values()].sort((a, b) => compareNames(a.name, b.name)) : [];
  }

  clients(): ClientRecord[] {
    const result: ClientRecord[] = [];
    for (const [clientId, files] of this.index) {
      if (files.size === 0) {
        continue;
      }
      let bytes = 0;
      for (const file of files.values()) {
        bytes += file.size;
      }
      result.push({ clientId, files: files.size, bytes });
    }
    return result.sort((a, b) => compareNames(a.clientId, b.clientId));
  }

  all(): FileRecord[] {
    const result: FileRecord[] = [];
    for (const files of this.index.values()) {
      result.push(...files.values());
    }
    return result;
  }

  async openRead(clientId: string, name: string): Promise<Readable> {
    const file = this.pathOf(clientId, name);
    // Opening first turns a missing file into an error here rather than mid-stream.
    const handle = await fs.open(file, 'r').catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOENT' ? new DfsError('NOT_FOUND', `${name} is not stored for client ${clientId}`) : new DfsError('STORAGE', error.message);
    });
    return handle.createReadStream({ highWaterMark: 256 * 1024 });
  }

  async verify(clientId: string, name: string): Promise<boolean> {
    const record = this.get(clientId, name);
    if (!record) {
      return false;
    }
    try {
      const { sha256, size } = await hashFile(this.pathOf(clientId, name));
      return sha256 === record.sha256 && size === record.size;
    } catch (error) {
      // A missing copy is as bad as a corrupted one; any other read error says nothing
      // about the bytes, and must not get a good copy thrown away.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return false;
      }
      throw new DfsError('STORAGE', `cannot read ${clientId}/${name} to verify it: ${(error as Error).message}`);
    }
  }

  /** Where a file lives, after checking it cannot leave the client's folder. */
  pathOf(clientId: string, name: string): string {
    validateClientId(clientId);
    validateFileName(name);
    const clientDir = this.clientDir(clientId);
    const target = path.resolve(clientDir, ...name.split('/'));
    if (!target.startsWith(clientDir + path.sep)) {
      throw new DfsError('BAD_FILE_NAME', `${name} would be stored outside the client's folder`);
    }
    return target;
  }

  private clientDir(clientId: string): string {
    return path.join(this.root, clientId);
  }

  private clientIndex(clientId: string): Map<string, FileRecord> {
    let files = this.index.get(clientId);
    if (!files) {
      files = new Map();
      this.index.set(clientId, files);
    }
    return files;
  }

  /** What the checksum log should say: every stored file, keyed to the bytes it was hashed from. */
  private *entries(): Generator<{ clientId: string; name: string; entry: ChecksumEntry }> {
    for (const [clientId, files] of this.index) {
      for (const [name, record] of files) {
        const entry = this.onDisk.get(fileKey(clientId, name));
        if (entry && entry.sha256 === record.sha256) {
          yield { clientId, name, entry };
        }
      }
    }
  }

  private async compactIfDue(): Promise<void> {
    if (this.checksums.wantsCompaction) {
      await this.checksums.rewrite(this.entries());
    }
  }

  private async loadClient(clientId: string, remembered: Map<string, ChecksumEntry> | undefined): Promise<void> {
    const files = this.clientIndex(clientId);
    const walk = async (dir: string, prefix: string): Promise<void> => {
      let holdsFolders = false;
      for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
        const name = prefix + entry.name;
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          holdsFolders = true;
          this.knownFolders.add(full);
          await walk(full, name + '/');
          continue;
        }
        if (!entry.isFile()) {
          continue;
        }
        try {
          validateFileName(name);
        } catch {
          this.log(`ignoring ${JSON.stringify(name)} of client ${clientId}: not a valid file name`);
          continue;
        }
        const stat = await fs.stat(full);
        const known = remembered?.get(name);
        const sha256 = known && known.ino === stat.ino && known.size === stat.size && known.mtimeMs === stat.mtimeMs ? known.sha256 : (await hashFile(full)).sha256;
        this.onDisk.set(fileKey(clientId, name), { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, sha256 });
        files.set(name, { clientId, name, size: stat.size, mtimeMs: Math.round(stat.mtimeMs), sha256 });
      }
      // A folder made by a commit that died before syncing its entry is made durable now.
      if (holdsFolders && this.durable) {
        await syncDirectory(dir);
      }
    };
    await walk(this.clientDir(clientId), '');
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
          throw conflictOrStorage(error, `cannot create folder ${path.relative(this.clientDir(clientId), folder)}: a file has the name of one of its folders`);
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

/**
 * Bytes queued by write() and not yet handed to the kernel; write() waits for the
 * queue to drain only above this. 1 MiB keeps a node's peak RSS well under 100 MiB.
 */
const WRITE_BEHIND_BYTES = 1024 * 1024;

/**
 * Writes behind the caller: write() queues the chunk and returns at once while less
 * than WRITE_BEHIND_BYTES are queued, and a single flusher hands everything queued so
 * far to the kernel in one writev. The receive/hash/forward loop thus runs while the
 * thread pool writes, instead of waiting for each 64 KiB socket chunk to reach the
 * page cache, and a few large writes replace many small ones (fewer thread-pool
 * round trips and wake-ups). A write error surfaces at the next write() or at seal().
 */
class DiskStagedWrite implements StagedWrite {
  bytesWritten = 0;
  private handle: fs.FileHandle | undefined;
  private committed = false;
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private flushing: Promise<void> | undefined;
  private failure: DfsError | undefined;

  constructor(
    readonly file: string,
    handle: fs.FileHandle,
    private readonly durable: boolean,
  ) {
    this.handle = handle;
  }

  async write(chunk: Buffer): Promise<void> {
    if (!this.handle) {
      throw new DfsError('INTERNAL', 'write after the staged file was closed');
    }
    if (this.failure) {
      throw this.failure;
    }
    this.queued.push(chunk);
    this.queuedBytes += chunk.length;
    this.bytesWritten += chunk.length;
    this.flushing ??= this.flush();
    if (this.queuedBytes >= WRITE_BEHIND_BYTES) {
      await this.flushing;
      if (this.failure) {
        throw this.failure;
      }
    }
  }

  /** Never rejects: a failure is kept for write() and seal() to throw. */
  private async flush(): Promise<void> {
    try {
      while (this.queued.length > 0 && this.handle && !this.failure) {
        const batch = this.queued;
        this.queued = [];
        this.queuedBytes = 0;
        await writeAll(this.handle, batch);
      }
    } catch (error) {
      this.failure = new DfsError('STORAGE', `cannot write to disk: ${(error as Error).message}`);
    } finally {
      this.flushing = undefined;
    }
  }

  async seal(): Promise<void> {
    const handle = this.handle;
    if (!handle) {
      return;
    }
    while (this.flushing) {
      await this.flushing;
    }
    this.handle = undefined;
    try {
      if (this.failure) {
        throw this.failure;
      }
      if (this.durable) {
        await handle.sync();
      }
    } catch (error) {
      throw error instanceof DfsError ? error : new DfsError('STORAGE', `cannot flush to disk: ${(error as Error).message}`);
    } finally {
      await handle.close();
    }
  }

  markCommitted(): void {
    this.committed = true;
  }

  async abort(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    this.queued = [];
    this.queuedBytes = 0;
    // The write in flight, if any, finishes before the handle closes under it.
    await this.flushing;
    await handle?.close().catch(() => undefined);
    if (!this.committed) {
      await fs.rm(this.file, { force: true });
    }
  }
}

/** writev until every byte of `buffers` is written; a short write resumes where it stopped. */
async function writeAll(handle: fs.FileHandle, buffers: Buffer[]): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest);
    let skip = bytesWritten;
    let index = 0;
    while (index < rest.length && skip >= rest[index].length) {
      skip -= rest[index].length;
      index++;
    }
    rest = rest.slice(index);
    if (skip > 0) {
      rest[0] = rest[0].subarray(skip);
    }
  }
}

export async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
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

async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function conflictOrStorage(error: unknown, conflictMessage: string): DfsError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR' || code === 'ENOTEMPTY') {
    return new DfsError('CONFLICT', conflictMessage);
  }
  return new DfsError('STORAGE', (error as Error).message);
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
