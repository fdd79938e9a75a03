import { DfsError, validateClientId, validateFileName } from '../protocol';
import { ContainedFs } from './contained-fs';
import { DirectorySyncer } from './sync';

export const STATE_DIR = '.dfs';
export const TMP_DIR = '.dfs/tmp';
export const VERSIONS_DIR = '.dfs/versions';
export const CATALOG_DIR = '.dfs/catalog';
export const ORPHANS_DIR = '.dfs/orphans';

/**
 * Where a node keeps what, as paths relative to its root (`/`-separated), and the
 * folders that must exist durably before a file is renamed into them. Every path
 * goes through the ContainedFs, so none leads through a symbolic link.
 */
export class DiskLayout {
  readonly fs: ContainedFs;
  readonly syncer: DirectorySyncer;
  /** Folders known to exist durably, so a commit into one skips its mkdir. */
  private readonly knownFolders = new Set<string>();
  private readonly pendingFolders = new Map<string, Promise<void>>();

  constructor(
    readonly root: string,
    private readonly durable: boolean,
  ) {
    this.fs = new ContainedFs(root);
    this.syncer = new DirectorySyncer(durable, (folder) => this.fs.syncFolder(folder));
  }

  /** A stored file's current version: `<client>/<name>`, after checking both. */
  live(clientId: string, name: string): string {
    validateClientId(clientId);
    validateFileName(name);
    return `${clientId}/${name}`;
  }

  versionsFolder(clientId: string): string {
    return `${VERSIONS_DIR}/${validateClientId(clientId)}`;
  }

  /** An older version's bytes. */
  version(clientId: string, generation: number): string {
    return `${this.versionsFolder(clientId)}/${generation}`;
  }

  forgetFolders(): void {
    this.knownFolders.clear();
  }

  knownFolder(folder: string): void {
    this.knownFolders.add(folder);
  }

  forgetFolder(folder: string): void {
    this.knownFolders.delete(folder);
  }

  /**
   * Makes a folder exist, with every folder it needed created durably (each new
   * folder's entry synced in its parent) before any file is renamed into it. Commits
   * into the same new folder share the work, so none acknowledges before it is done;
   * the parent is ensured first, so a commit into a sibling folder also waits for a
   * shared new parent's entry to be synced by whichever commit made it.
   */
  ensureFolder(folder: string, clientId?: string): Promise<void> {
    if (this.knownFolders.has(folder)) {
      return Promise.resolve();
    }
    let pending = this.pendingFolders.get(folder);
    if (!pending) {
      pending = (async () => {
        if (folder.includes('/')) {
          await this.ensureFolder(parentOf(folder), clientId);
        }
        let firstCreated: string | undefined;
        try {
          firstCreated = await this.fs.mkdirs(folder);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOTDIR' || code === 'EEXIST') {
            const where = clientId && folder.startsWith(`${clientId}/`) ? folder.slice(clientId.length + 1) : folder;
            throw new DfsError('CONFLICT', `cannot create folder ${where}: a file on this node's disk has the name of one of its folders`);
          }
          throw error instanceof DfsError ? error : new DfsError('STORAGE', (error as Error).message);
        }
        if (this.durable && firstCreated) {
          // Each folder created is an entry in its parent: sync from the deepest new one up.
          for (let created = folder; ; created = parentOf(created)) {
            await this.fs.syncFolder(parentOf(created));
            if (created === firstCreated || !created.includes('/')) {
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

  /**
   * Syncs a folder an entry was removed from. Another commit may have emptied and
   * removed it since (renames out of one folder run at once): then that removal is what
   * must be durable, so the nearest folder still there is synced instead.
   */
  async syncAfterRemoval(folder: string): Promise<void> {
    for (let current = folder; ; current = parentOf(current)) {
      try {
        await this.syncer.sync(current);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || current === '') {
          throw error;
        }
        this.knownFolders.delete(current);
      }
    }
  }

  /** Removes empty folders upwards from `folder` up to (not including) `stopAt`; returns the deepest folder that remains. */
  async pruneEmptyFolders(folder: string, stopAt: string): Promise<string> {
    while (folder.startsWith(stopAt + '/')) {
      try {
        await this.fs.rmdir(folder);
      } catch (error) {
        // Pruned already by a commit emptying the same folder (renames out of one folder
        // run at once): it is gone either way, and its parent must still be synced.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          return folder;
        }
      }
      this.knownFolders.delete(folder);
      folder = parentOf(folder);
    }
    return folder;
  }
}

/** `a/b` for `a/b/c`; '' (the root) for `a`. */
export function parentOf(relative: string): string {
  const slash = relative.lastIndexOf('/');
  return slash === -1 ? '' : relative.slice(0, slash);
}
