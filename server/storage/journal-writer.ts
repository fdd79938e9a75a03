import type { promises as fs } from 'fs';
import { DfsError } from '../protocol';
import { DiskFailures } from './disk-failures';

interface PendingAppend {
  text: string;
  /** Needs stable storage before it resolves; notes ride along with the next sync. */
  durable: boolean;
  /** Runs once the text is on disk (synced when durable), before the caller hears of it. */
  applied?: () => void;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Appends to one journal file with group commit: whatever callers hand in while a
 * write and sync are under way goes out together in the next write and sync, so
 * concurrent commits share one fsync. Appends apply in the order they were made.
 *
 * A failed write or sync leaves the tail unknown (after a failed fsync the kernel may
 * still write the pages later), so the file is cut back to its last known good
 * length and synced; if even that fails the writer refuses everything from then on,
 * because a change reported as failed must never reappear at the next start.
 */
export class JournalWriter {
  private queue: PendingAppend[] = [];
  private running = false;
  private broken: DfsError | undefined;
  /** Bytes known to be whole in the file; a failed batch is cut back to this. */
  private goodLength: number;
  /** Called between batches; may switch the file (compaction). */
  betweenBatches: (() => Promise<void>) | undefined;
  /** Batches written and syncs made: concurrent appends share both. */
  readonly stats = { batches: 0, syncs: 0 };

  constructor(
    private handle: fs.FileHandle,
    length: number,
    private readonly durable: boolean,
    private readonly describe: string,
    /** Names the node when its disk is full. */
    private readonly failures = new DiskFailures('this node', 'its data folder'),
  ) {
    this.goodLength = length;
  }

  get length(): number {
    return this.goodLength;
  }

  append(text: string, durable: boolean, applied?: () => void): Promise<void> {
    if (this.broken) {
      return Promise.reject(this.broken);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ text, durable, applied, resolve, reject });
      this.start();
    });
  }

  /**
   * The first batch after an idle spell starts on the next turn of the event loop, not
   * at once: commits whose requests arrived in the same poll (a primary answers a whole
   * batch at once, so its COMMITs reach a replica together) then share its sync even
   * where an fsync costs next to nothing and would be over before the second arrived.
   */
  private start(): void {
    if (!this.running) {
      this.running = true;
      setImmediate(() => void this.run());
    }
  }

  /** Moves appends to another file; only call from betweenBatches, when nothing is in flight. */
  switchTo(handle: fs.FileHandle, length: number): fs.FileHandle {
    const previous = this.handle;
    this.handle = handle;
    this.goodLength = length;
    return previous;
  }

  /** Waits for everything queued so far, then closes the file. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (!this.running && this.queue.length === 0) {
        resolve();
        return;
      }
      this.queue.push({ text: '', durable: false, resolve, reject: () => resolve() });
      this.start();
    });
    this.broken ??= new DfsError('STORAGE', `${this.describe} is closed`);
    await this.handle.close().catch(() => undefined);
  }

  private async run(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        await this.write(batch);
        if (this.betweenBatches && !this.broken) {
          await this.betweenBatches().catch(() => undefined);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async write(batch: PendingAppend[]): Promise<void> {
    if (this.broken) {
      batch.forEach((append) => append.reject(this.broken!));
      return;
    }
    const text = batch.map((append) => append.text).join('');
    const bytes = Buffer.from(text, 'utf8');
    try {
      if (bytes.length > 0) {
        let written = 0;
        while (written < bytes.length) {
          const { bytesWritten } = await this.handle.write(bytes, written, bytes.length - written, this.goodLength + written);
          written += bytesWritten;
        }
      }
      this.stats.batches++;
      if (this.durable && batch.some((append) => append.durable)) {
        await this.handle.sync();
        this.stats.syncs++;
      }
    } catch (error) {
      const failure = this.failures.of(error, `write ${this.describe}`);
      await this.cutBack(failure);
      batch.forEach((append) => append.reject(failure));
      return;
    }
    this.goodLength += bytes.length;
    for (const append of batch) {
      try {
        append.applied?.();
        append.resolve();
      } catch (error) {
        append.reject(error as Error);
      }
    }
  }

  private async cutBack(failure: DfsError): Promise<void> {
    try {
      await this.handle.truncate(this.goodLength);
      if (this.durable) {
        await this.handle.sync();
      }
    } catch (error) {
      this.broken = new DfsError(
        'STORAGE',
        `${failure.message}; and the unfinished tail could not be cut off (${(error as Error).message}). Fix the disk and restart this server: it refuses further changes until then.`,
      );
    }
  }
}
