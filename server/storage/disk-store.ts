import { createHash, randomBytes } from 'crypto';
import { createReadStream, promises as fs } from 'fs';
import * as path from 'path';
import type { Readable } from 'stream';
import { ClientRecord, DfsError, FileRecord, validateClientId, validateFileName } from '../protocol';
import type { StagedWrite, Store } from './store';

const STATE_DIR = '.dfs';

interface Sidecar {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

export interface DiskStoreOptions {
  /** fsync data and directories before a commit returns; off only for throwaway benchmarks baselines. */
  durable?: boolean;
  log?: (line: string) => void;
}

/**
 * A node's files on the local disk. Checksums are cached in sidecar files keyed by
 * inode, size and mtime, so a crash between rename and sidecar write only costs a rehash.
 */
export class DiskStore implements Store {
  private readonly index = new Map<string, Map<string, FileRecord>>();
  private readonly tmpDir: string;
  private readonly metaDir: string;
  private readonly durable: boolean;
  private readonly log: (line: string) => void;

  constructor(
    readonly root: string,
    options: DiskStoreOptions = {},
  ) {
    this.root = path.resolve(root);
    this.tmpDir = path.join(this.root, STATE_DIR, 'tmp');
    this.metaDir = path.join(this.root, STATE_DIR, 'meta');
    this.durable = options.durable ?? true;
    this.log = options.log ?? (() => undefined);
  }

  async open(): Promise<void> {
    await fs.mkdir(this.metaDir, { recursive: true });
    // Whatever is staged belongs to a transfer that died with the previous process.
    await fs.rm(this.tmpDir, { recursive: true, force: true });
    await fs.mkdir(this.tmpDir, { recursive: true });
    this.index.clear();
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
      await this.loadClient(entry.name);
    }
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
    let firstCreated: string | undefined;
    try {
      firstCreated = await fs.mkdir(parent, { recursive: true });
    } catch (error) {
      throw conflictOrStorage(error, `cannot create folder for ${name}: a file has the name of one of its folders`);
    }
    try {
      await fs.rename(staged.file, target);
    } catch (error) {
      throw conflictOrStorage(error, `cannot store ${name}: a folder of that name exists`);
    }
    staged.markCommitted();
    if (this.durable) {
      await syncDirectory(parent);
      // A new folder's entry is only durable once the folder holding it is synced too.
      if (firstCreated) {
        for (let dir = parent; ; dir = path.dirname(dir)) {
          await syncDirectory(path.dirname(dir));
          if (dir === firstCreated || dir === this.root) {
            break;
          }
        }
      }
    }
    const stat = await fs.stat(target);
    const record: FileRecord = { clientId, name, size: stat.size, mtimeMs: Math.round(stat.mtimeMs), sha256 };
    await this.writeSidecar(clientId, name, { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, sha256 });
    this.clientIndex(clientId).set(name, record);
    return record;
  }

  /** Fails early, before any byte is sent, when a name clashes with a folder or a folder with a file. */
  async assertCanStore(clientId: string, name: string): Promise<void> {
    const target = this.pathOf(clientId, name);
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
    await fs.rm(this.sidecarPath(clientId, name), { force: true });
    this.index.get(clientId)?.delete(name);
    await this.pruneEmptyFolders(path.dirname(target), this.clientDir(clientId));
    if (this.durable && removed) {
      await syncDirectory(path.dirname(target)).catch(() => syncDirectory(this.clientDir(clientId)));
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
    } catch {
      return false;
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

  private sidecarPath(clientId: string, name: string): string {
    return path.join(this.metaDir, clientId, ...name.split('/')) + '.json';
  }

  private async writeSidecar(clientId: string, name: string, sidecar: Sidecar): Promise<void> {
    const file = this.sidecarPath(clientId, name);
    try {
      await fs.mkdir(path.dirname(file), { recursive: true });
      // No fsync: a lost sidecar only means the file is hashed again at the next start.
      await fs.writeFile(file, JSON.stringify(sidecar));
    } catch (error) {
      this.log(`could not cache the checksum of ${clientId}/${name}: ${(error as Error).message}`);
    }
  }

  private async readSidecar(clientId: string, name: string): Promise<Sidecar | undefined> {
    try {
      return JSON.parse(await fs.readFile(this.sidecarPath(clientId, name), 'utf8')) as Sidecar;
    } catch {
      return undefined;
    }
  }

  private async loadClient(clientId: string): Promise<void> {
    const files = this.clientIndex(clientId);
    const walk = async (dir: string, prefix: string): Promise<void> => {
      for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
        const name = prefix + entry.name;
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
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
        const sidecar = await this.readSidecar(clientId, name);
        let sha256 = sidecar?.sha256;
        if (!sidecar || sidecar.ino !== stat.ino || sidecar.size !== stat.size || sidecar.mtimeMs !== stat.mtimeMs) {
          sha256 = (await hashFile(full)).sha256;
          await this.writeSidecar(clientId, name, { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, sha256 });
        }
        files.set(name, { clientId, name, size: stat.size, mtimeMs: Math.round(stat.mtimeMs), sha256: sha256 as string });
      }
    };
    await walk(this.clientDir(clientId), '');
  }

  private async pruneEmptyFolders(dir: string, stopAt: string): Promise<void> {
    while (dir.startsWith(stopAt + path.sep)) {
      try {
        await fs.rmdir(dir);
      } catch {
        return;
      }
      dir = path.dirname(dir);
    }
  }
}

class DiskStagedWrite implements StagedWrite {
  bytesWritten = 0;
  private handle: fs.FileHandle | undefined;
  private committed = false;

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
    let offset = 0;
    while (offset < chunk.length) {
      const { bytesWritten } = await this.handle.write(chunk, offset, chunk.length - offset).catch((error: Error) => {
        throw new DfsError('STORAGE', `cannot write to disk: ${error.message}`);
      });
      offset += bytesWritten;
    }
    this.bytesWritten += chunk.length;
  }

  async seal(): Promise<void> {
    const handle = this.handle;
    if (!handle) {
      return;
    }
    this.handle = undefined;
    try {
      if (this.durable) {
        await handle.sync();
      }
    } catch (error) {
      throw new DfsError('STORAGE', `cannot flush to disk: ${(error as Error).message}`);
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
    await handle?.close().catch(() => undefined);
    if (!this.committed) {
      await fs.rm(this.file, { force: true });
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
