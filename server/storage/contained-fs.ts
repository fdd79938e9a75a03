import { constants, promises as fs, readlinkSync } from 'fs';
import * as path from 'path';
import { DfsError } from '../protocol';

/** A symbolic link (or anything else that leads out of the data folder) was met on the way to a path. */
export class ContainmentError extends DfsError {
  constructor(readonly relative: string, detail: string) {
    super('STORAGE', `refusing to go through ${JSON.stringify(relative)} in the data folder: ${detail}; it is left alone`);
  }
}

const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const PROC_FD = '/proc/self/fd';
/** Verified folder handles kept open for the folders used most (the staging folder, version folders). */
const MAX_CACHED_FOLDERS = 32;

/**
 * File system operations confined to one root, never through a symbolic link. Every
 * operation first opens the folder that holds its target and checks where that handle
 * really is; on Linux it then reaches the target through `/proc/self/fd/<handle>`, so
 * no folder swapped for a link between the check and the operation can redirect it.
 * Where there is no `/proc` (macOS, Windows) each folder on the way is checked with
 * lstat instead, which leaves a short window between check and use.
 */
interface CachedFolder {
  handle: fs.FileHandle;
  /** Operations using the handle right now: it is closed only when none is. */
  users: number;
  /** Removed from the cache (forgotten or pushed out): close once unused. */
  retired: boolean;
}

export class ContainedFs {
  private readonly cache = new Map<string, CachedFolder>();
  private procAvailable: boolean | undefined;
  private closed = false;

  private realRoot: string | undefined;

  /**
   * `root` is the data folder as configured. A link on the way to it is the operator's
   * choice (`/data` pointing at a mounted disk) and is resolved once, at open; inside
   * it, nothing is followed.
   */
  constructor(private readonly configuredRoot: string) {}

  /** The data folder's real path, once open. */
  get root(): string {
    if (!this.realRoot) {
      throw new DfsError('INTERNAL', `the data folder ${this.configuredRoot} is not open`);
    }
    return this.realRoot;
  }

  /** Creates the data folder if needed, resolves its real path, and learns how to check handles. */
  async open(): Promise<void> {
    this.closed = false;
    await fs.mkdir(this.configuredRoot, { recursive: true });
    this.realRoot = await fs.realpath(this.configuredRoot);
    this.procAvailable = await fs.readlink(`${PROC_FD}/0`).then(
      () => true,
      () => false,
    );
  }

  /** Later operations are refused: a handle opened after this would never be closed. */
  async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.cache.values()];
    this.cache.clear();
    await Promise.all(entries.map((entry) => entry.handle.close().catch(() => undefined)));
  }

  absolute(relative: string): string {
    return relative === '' ? this.root : path.join(this.root, ...relative.split('/'));
  }

  /** Runs `work` with a path that reaches `relative` through its verified folder. */
  async at<T>(relative: string, work: (target: string) => Promise<T>): Promise<T> {
    const slash = relative.lastIndexOf('/');
    const folder = slash === -1 ? '' : relative.slice(0, slash);
    const base = slash === -1 ? relative : relative.slice(slash + 1);
    if (!this.procAvailable) {
      await this.checkFolders(folder);
      return work(this.absolute(relative));
    }
    return this.withFolder(folder, (handle) => work(`${PROC_FD}/${handle.fd}/${base}`));
  }

  /** Opens a file that is no link, and checks the handle is where it should be. */
  async openFile(relative: string, flags: number, mode = 0o644): Promise<fs.FileHandle> {
    const handle = await this.at(relative, (target) => fs.open(target, flags | constants.O_NOFOLLOW, mode)).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ELOOP' ? new ContainmentError(relative, 'it is a symbolic link') : error;
    });
    await this.assertWhere(handle, relative);
    return handle;
  }

  async rename(from: string, to: string): Promise<void> {
    await this.at(from, (source) => this.at(to, (target) => fs.rename(source, target)));
  }

  /** A hard link `to` for the file at `from` (a link at `from` is itself linked, never followed). */
  async link(from: string, to: string): Promise<void> {
    await this.at(from, (source) => this.at(to, (target) => fs.link(source, target)));
  }

  async unlink(relative: string): Promise<void> {
    await this.at(relative, (target) => fs.unlink(target));
  }

  async rmdir(relative: string): Promise<void> {
    this.forget(relative);
    await this.at(relative, (target) => fs.rmdir(target));
  }

  /** lstat: a link is reported as a link, never followed. */
  async lstat(relative: string): Promise<import('fs').Stats> {
    return this.at(relative, (target) => fs.lstat(target));
  }

  async readdir(relative: string): Promise<import('fs').Dirent[]> {
    if (!this.procAvailable) {
      await this.checkFolders(relative);
      return fs.readdir(this.absolute(relative), { withFileTypes: true });
    }
    return this.withFolder(relative, (handle) => fs.readdir(`${PROC_FD}/${handle.fd}`, { withFileTypes: true }));
  }

  /**
   * Creates `relative` and any missing folder above it, one level at a time, each a
   * real folder; returns the first one created (undefined when all existed).
   */
  async mkdirs(relative: string): Promise<string | undefined> {
    let first: string | undefined;
    const parts = relative.split('/');
    for (let index = 1; index <= parts.length; index++) {
      const folder = parts.slice(0, index).join('/');
      const created = await this.at(folder, (target) => fs.mkdir(target)).then(
        () => true,
        (error: NodeJS.ErrnoException) => {
          if (error.code !== 'EEXIST') {
            throw error;
          }
          return false;
        },
      );
      if (created) {
        first ??= folder;
        continue;
      }
      const stat = await this.lstat(folder);
      if (stat.isSymbolicLink()) {
        throw new ContainmentError(folder, 'it is a symbolic link');
      }
      if (!stat.isDirectory()) {
        const error = new Error(`${folder} is a file, not a folder`) as NodeJS.ErrnoException;
        error.code = 'ENOTDIR';
        throw error;
      }
    }
    return first;
  }

  /** fsync of a folder: its entries (files created, renamed or removed in it) become durable. */
  async syncFolder(relative: string): Promise<void> {
    await this.withFolder(relative, (handle) => handle.sync());
  }

  /** Forgets the handles of a folder and the folders under it (it is being removed). */
  forget(relative: string): void {
    for (const [folder, entry] of [...this.cache]) {
      if (folder === relative || folder.startsWith(relative + '/')) {
        this.retire(folder, entry);
      }
    }
  }

  /** Runs `work` with a verified handle on a folder inside the root, kept open (and checked again) for the next use. */
  private async withFolder<T>(relative: string, work: (handle: fs.FileHandle) => Promise<T>): Promise<T> {
    const entry = await this.folder(relative);
    entry.users++;
    try {
      return await work(entry.handle);
    } finally {
      entry.users--;
      if (entry.retired && entry.users === 0) {
        void entry.handle.close().catch(() => undefined);
      }
    }
  }

  private async folder(relative: string): Promise<CachedFolder> {
    if (this.closed) {
      throw new DfsError('STORAGE', `the data folder ${this.configuredRoot} is closed (the server is stopping)`);
    }
    const cached = this.cache.get(relative);
    if (cached) {
      if ((await this.whereIs(cached.handle, relative)) === 'here') {
        // Most recently used last.
        this.cache.delete(relative);
        this.cache.set(relative, cached);
        return cached;
      }
      this.retire(relative, cached);
    }
    if (!this.procAvailable) {
      await this.checkFolders(relative);
    }
    const handle = await fs.open(this.absolute(relative), DIRECTORY_FLAGS).catch(async (error: NodeJS.ErrnoException) => {
      // Linux answers ENOTDIR, not ELOOP, for a link opened with O_DIRECTORY | O_NOFOLLOW.
      if (error.code === 'ELOOP' || (error.code === 'ENOTDIR' && (await this.isLinkItself(relative)))) {
        throw new ContainmentError(relative, 'it is a symbolic link');
      }
      throw error;
    });
    await this.assertWhere(handle, relative);
    const entry: CachedFolder = { handle, users: 0, retired: false };
    const raced = this.cache.get(relative);
    if (raced) {
      // Another operation opened it meanwhile: keep one.
      void handle.close().catch(() => undefined);
      return raced;
    }
    this.cache.set(relative, entry);
    for (const [folder, old] of [...this.cache]) {
      if (this.cache.size <= MAX_CACHED_FOLDERS) {
        break;
      }
      if (old.users === 0) {
        this.retire(folder, old);
      }
    }
    return entry;
  }

  private retire(folder: string, entry: CachedFolder): void {
    if (this.cache.get(folder) === entry) {
      this.cache.delete(folder);
    }
    entry.retired = true;
    if (entry.users === 0) {
      void entry.handle.close().catch(() => undefined);
    }
  }

  /** 'here'; 'gone' when it was removed since it was opened (a race with a delete, not a link); 'elsewhere' otherwise. */
  private async whereIs(handle: fs.FileHandle, relative: string): Promise<'here' | 'gone' | 'elsewhere'> {
    if (!this.procAvailable) {
      const [opened, named] = await Promise.all([handle.stat(), fs.lstat(this.absolute(relative)).catch(() => undefined)]);
      if (!named) {
        return 'gone';
      }
      return !named.isSymbolicLink() && named.ino === opened.ino && named.dev === opened.dev ? 'here' : 'elsewhere';
    }
    // Synchronous on purpose: /proc answers from memory, never from a disk, and each
    // asynchronous call would cost a thread-pool round trip on every file operation.
    let actual: string | undefined;
    try {
      actual = readlinkSync(`${PROC_FD}/${handle.fd}`);
    } catch {
      actual = undefined;
    }
    if (actual === this.absolute(relative)) {
      return 'here';
    }
    return actual === `${this.absolute(relative)} (deleted)` ? 'gone' : 'elsewhere';
  }

  /** Throws unless the handle is where `relative` says: gone (ENOENT, retried by callers) or a link on the way. */
  private async assertWhere(handle: fs.FileHandle, relative: string): Promise<void> {
    const where = await this.whereIs(handle, relative);
    if (where === 'here') {
      return;
    }
    await handle.close().catch(() => undefined);
    if (where === 'gone') {
      const error = new Error(`ENOENT: ${relative} was removed meanwhile`) as NodeJS.ErrnoException;
      error.code = 'ENOENT';
      throw error;
    }
    throw new ContainmentError(relative, 'a symbolic link on the way leads elsewhere');
  }

  private async isLinkItself(relative: string): Promise<boolean> {
    return (await fs.lstat(this.absolute(relative)).catch(() => undefined))?.isSymbolicLink() ?? false;
  }

  /** Without /proc: every folder from the root down to `relative` is a real folder. */
  private async checkFolders(relative: string): Promise<void> {
    if (relative === '') {
      return;
    }
    const parts = relative.split('/');
    for (let index = 1; index <= parts.length; index++) {
      const folder = parts.slice(0, index).join('/');
      const stat = await fs.lstat(this.absolute(folder));
      if (stat.isSymbolicLink()) {
        throw new ContainmentError(folder, 'it is a symbolic link');
      }
    }
  }
}
