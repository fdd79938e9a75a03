import type { promises as fs } from 'fs';
import type { Fingerprint } from './catalog';

/** A small file renamed into place with no sync of its own yet: its catalog record, bytes and all, is its durable copy meanwhile. */
export interface UnconfirmedPlacement {
  clientId: string;
  name: string;
  generation: number;
  /** The staged file's handle, still open: it follows the inode wherever the name goes (a later overwrite links it into history). */
  handle: fs.FileHandle;
  /** The folder (relative) it was renamed into. */
  folder: string;
  size: number;
}

export interface PlacementFlusherOptions {
  durable: boolean;
  /** fsync of a folder by its relative path (shared between concurrent callers). */
  syncFolder: (folder: string) => Promise<void>;
  /** The placed file is durable in its folder: the catalog may forget the bytes it kept for it. */
  confirm: (placement: UnconfirmedPlacement, fingerprint: Fingerprint) => void;
  /** Its file or folder could not be synced: the bytes in the catalog stay the durable copy until the next start. */
  failed: (placement: UnconfirmedPlacement, error: Error) => void;
  /** A batch goes this long after its first placement at the latest. */
  delayMs?: number;
  /** ... or as soon as it holds this many placements or bytes. */
  batchPlacements?: number;
  batchBytes?: number;
  /** Beyond this many placements unconfirmed (open handles), new ones wait for a batch to finish. */
  maxUnconfirmed?: number;
}

export const DEFAULT_FLUSH_DELAY_MS = 40;
const DEFAULT_BATCH_PLACEMENTS = 16;
const DEFAULT_BATCH_BYTES = 4 * 1024 * 1024;
/**
 * Each holds a descriptor until its batch is done: under `ulimit -n 256` a node keeps
 * 64 descriptors beyond its connections for files and replica links.
 */
const DEFAULT_MAX_UNCONFIRMED = 48;

/**
 * Makes small files' placements durable off the answer's path, many at once: every
 * so often (or once enough are waiting) each placed file is fsynced through the handle
 * that wrote it and each folder they were renamed into is fsynced once, all
 * concurrently; only then is each placement confirmed (its fingerprint noted), which
 * lets the catalog forget the bytes its record carried. Until then a crash is
 * recovered from those bytes (DiskRecovery.settleInline).
 */
export class PlacementFlusher {
  private pending: UnconfirmedPlacement[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly running = new Set<Promise<void>>();
  private unconfirmed = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly delayMs: number;
  private readonly batchPlacements: number;
  private readonly batchBytes: number;
  private readonly maxUnconfirmed: number;

  constructor(private readonly options: PlacementFlusherOptions) {
    this.delayMs = options.delayMs ?? DEFAULT_FLUSH_DELAY_MS;
    this.batchPlacements = options.batchPlacements ?? DEFAULT_BATCH_PLACEMENTS;
    this.batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
    this.maxUnconfirmed = options.maxUnconfirmed ?? DEFAULT_MAX_UNCONFIRMED;
  }

  /** Placements handed in and not confirmed (or failed) yet. */
  get size(): number {
    return this.unconfirmed;
  }

  /** Takes a placement over (and its handle, which it closes); resolves at once unless too many wait already. */
  add(placement: UnconfirmedPlacement): Promise<void> {
    this.pending.push(placement);
    this.pendingBytes += placement.size;
    this.unconfirmed++;
    if (this.pending.length >= this.batchPlacements || this.pendingBytes >= this.batchBytes) {
      this.startBatch();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.startBatch(), this.delayMs);
      this.timer.unref();
    }
    if (this.unconfirmed <= this.maxUnconfirmed) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Confirms everything handed in so far (close, and a compaction that must not wait for the timer). */
  async flush(): Promise<void> {
    this.startBatch();
    while (this.running.size > 0) {
      await Promise.all([...this.running]);
    }
  }

  private startBatch(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length === 0) {
      return;
    }
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const run = this.confirmBatch(batch).finally(() => {
      this.running.delete(run);
      this.unconfirmed -= batch.length;
      while (this.unconfirmed <= this.maxUnconfirmed && this.waiters.length > 0) {
        this.waiters.shift()!();
      }
    });
    this.running.add(run);
  }

  /** Never rejects: a placement that cannot be confirmed is reported and keeps its bytes in the catalog. */
  private async confirmBatch(batch: UnconfirmedPlacement[]): Promise<void> {
    const { durable, syncFolder, confirm, failed } = this.options;
    // Every file first (their data, concurrently), then every folder they went into, once each.
    const files = await Promise.all(
      batch.map(async (placement) => {
        try {
          const [stat] = await Promise.all([placement.handle.stat(), durable ? placement.handle.sync() : undefined]);
          return { placement, fingerprint: { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs } as Fingerprint };
        } catch (error) {
          failed(placement, error as Error);
          return undefined;
        } finally {
          await placement.handle.close().catch(() => undefined);
        }
      }),
    );
    const synced = files.filter((file) => file !== undefined);
    const folders = new Map<string, Promise<Error | undefined>>();
    for (const { placement } of synced) {
      if (!folders.has(placement.folder)) {
        folders.set(
          placement.folder,
          (durable ? syncFolder(placement.folder) : Promise.resolve()).then(
            () => undefined,
            (error: Error) => error,
          ),
        );
      }
    }
    for (const { placement, fingerprint } of synced) {
      const error = await folders.get(placement.folder);
      if (error) {
        failed(placement, error);
      } else {
        confirm(placement, fingerprint);
      }
    }
  }
}
