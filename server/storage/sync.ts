import { promises as fs } from 'fs';

/** Makes a folder's entries (files created, renamed or removed in it) durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface FolderSyncs {
  /** The sync under way, if any. */
  running?: Promise<void>;
  /** The next sync, not started yet: every request made before it starts joins it. */
  queued?: Promise<void>;
}

/**
 * Folder syncs shared between concurrent commits. A request is only satisfied by a
 * sync that starts after it (the one under way may predate the change), so it joins
 * the queued one; all requests made meanwhile share that single sync.
 */
export class DirectorySyncer {
  private readonly folders = new Map<string, FolderSyncs>();

  constructor(private readonly durable: boolean) {}

  sync(dir: string): Promise<void> {
    if (!this.durable) {
      return Promise.resolve();
    }
    let folder = this.folders.get(dir);
    if (!folder) {
      folder = {};
      this.folders.set(dir, folder);
    }
    if (folder.queued) {
      return folder.queued;
    }
    const entry = folder;
    const previous = entry.running ?? Promise.resolve();
    entry.queued = previous
      .catch(() => undefined)
      .then(() => {
        entry.queued = undefined;
        const run = syncDirectory(dir);
        entry.running = run;
        return run.finally(() => {
          if (entry.running === run) {
            entry.running = undefined;
          }
          if (!entry.running && !entry.queued) {
            this.folders.delete(dir);
          }
        });
      });
    return entry.queued;
  }
}
