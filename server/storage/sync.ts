import { promises as fs } from 'fs';

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

  /** `syncOne` makes one folder's entries durable (an fsync of the folder). */
  constructor(
    private readonly durable: boolean,
    private readonly syncOne: (folder: string) => Promise<void>,
  ) {}

  sync(folder: string): Promise<void> {
    if (!this.durable) {
      return Promise.resolve();
    }
    let entry = this.folders.get(folder);
    if (!entry) {
      entry = {};
      this.folders.set(folder, entry);
    }
    if (entry.queued) {
      return entry.queued;
    }
    const syncs = entry;
    const previous = syncs.running ?? Promise.resolve();
    syncs.queued = previous
      .catch(() => undefined)
      .then(() => {
        syncs.queued = undefined;
        const run = this.syncOne(folder);
        syncs.running = run;
        return run.finally(() => {
          if (syncs.running === run) {
            syncs.running = undefined;
          }
          if (!syncs.running && !syncs.queued) {
            this.folders.delete(folder);
          }
        });
      });
    return syncs.queued;
  }
}

/** Makes a folder's entries durable, by path: for tools outside a node's store (its own folders go through its ContainedFs). */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
