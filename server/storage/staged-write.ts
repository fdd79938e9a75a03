import { constants, type promises as fs } from 'fs';
import { DfsError } from '../protocol';
import type { ContainedFs } from './contained-fs';
import type { DiskFailures } from './disk-failures';
import { parentOf } from './disk-layout';
import type { StagedWrite } from './store';
import type { DirectorySyncer } from './sync';

/**
 * Bytes queued by write() and not yet handed to the kernel; write() waits for the
 * queue to drain only above this. 1 MiB keeps a node's peak RSS well under 100 MiB.
 */
const WRITE_BEHIND_BYTES = 1024 * 1024;
/** Chunks in which readBack() replays the staged bytes. */
const READ_BACK_BYTES = 256 * 1024;

/**
 * A file being received into `<root>/.dfs/tmp`. Writes go behind the caller: write()
 * queues the chunk and returns at once while less than WRITE_BEHIND_BYTES are queued,
 * and a single flusher hands everything queued so far to the kernel in one writev, so
 * the receive/hash/forward loop runs while the thread pool writes. A write error
 * surfaces at the next write() or at seal().
 */
export class DiskStagedWrite implements StagedWrite {
  bytesWritten = 0;
  private handle: fs.FileHandle | undefined;
  private sealed: Promise<void> | undefined;
  private settled = false;
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private flushing: Promise<void> | undefined;
  private failure: DfsError | undefined;
  /** The bytes, also kept in memory when they are to travel inside the catalog record. */
  private readonly held: Buffer[] = [];
  /** An inline write's handle after seal(): see takeHandle(). */
  private kept: fs.FileHandle | undefined;

  constructor(
    /** Relative to the node's root. */
    readonly file: string,
    handle: fs.FileHandle,
    private readonly durable: boolean,
    private readonly syncer: DirectorySyncer,
    private readonly files: ContainedFs,
    private readonly failures: DiskFailures,
    /**
     * A small file: its bytes go inside the catalog record, which makes them durable, so
     * seal() syncs nothing (the placed file is synced later, batched, through the handle
     * takeHandle() gives) and may run alongside the record.
     */
    readonly inline = false,
  ) {
    this.handle = handle;
  }

  /** The bytes received, for the catalog record; only for an inline write. */
  inlineBytes(): Buffer {
    if (!this.inline) {
      throw new DfsError('INTERNAL', 'the staged file is not kept inline');
    }
    return Buffer.concat(this.held, this.bytesWritten);
  }

  /** The name a catalog record gives these bytes, so a restart can still place them. */
  get basename(): string {
    return this.file.slice(this.file.lastIndexOf('/') + 1);
  }

  async write(chunk: Buffer): Promise<void> {
    if (!this.handle || this.sealed) {
      throw new DfsError('INTERNAL', 'write after the staged file was sealed or closed');
    }
    if (this.failure) {
      throw this.failure;
    }
    this.queued.push(chunk);
    if (this.inline) {
      this.held.push(chunk);
    }
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
      this.failure = this.failures.of(error, 'write the bytes being received');
    } finally {
      this.flushing = undefined;
    }
  }

  async *readBack(upTo: number): AsyncGenerator<Buffer> {
    // Everything queued so far reaches the file first.
    while (this.flushing) {
      await this.flushing;
    }
    if (this.failure) {
      throw this.failure;
    }
    if (!this.handle || this.sealed || upTo > this.bytesWritten) {
      throw new DfsError('INTERNAL', `cannot read back ${upTo} bytes of a staged file holding ${this.bytesWritten}`);
    }
    // Its own read-only handle: the staging one is write-only, and positional reads leave the appending writes alone.
    const reader = await this.files.openFile(this.file, constants.O_RDONLY).catch((error: Error) => {
      throw this.failures.of(error, 'read back the bytes being received');
    });
    try {
      for (let position = 0; position < upTo; ) {
        const buffer = Buffer.allocUnsafe(Math.min(READ_BACK_BYTES, upTo - position));
        const { bytesRead } = await reader.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) {
          throw new DfsError('INTERNAL', `the staged file ended after ${position} of ${upTo} bytes`);
        }
        position += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    } finally {
      await reader.close();
    }
  }

  /**
   * Puts the bytes and their name in the staging folder on stable storage: a catalog
   * record may name them from then on and count on finding them after a crash. An
   * inline write syncs nothing: its record carries the bytes, and its staged name is
   * never needed after a crash; it only hands every byte to the kernel, so the file
   * may be renamed into place. Calling it again waits for the first call.
   */
  seal(): Promise<void> {
    this.sealed ??= this.sealOnce();
    return this.sealed;
  }

  private async sealOnce(): Promise<void> {
    const handle = this.handle;
    if (!handle) {
      throw new DfsError('INTERNAL', 'seal after the staged file was closed');
    }
    while (this.flushing) {
      await this.flushing;
    }
    if (this.inline && !this.failure) {
      // Every byte is with the kernel; the record is their durable copy. The handle stays
      // open for the placement's own sync, made later, off the answer's path.
      this.handle = undefined;
      this.kept = handle;
      return;
    }
    try {
      if (this.failure) {
        throw this.failure;
      }
      if (this.durable) {
        await Promise.all([handle.sync(), this.syncer.sync(parentOf(this.file))]);
      }
    } catch (error) {
      throw this.failures.of(error, 'flush the bytes received to disk');
    } finally {
      this.handle = undefined;
      await handle.close();
    }
  }

  /**
   * An inline write's handle once sealed, for whoever syncs the placed file later (it
   * then closes it); undefined when there is none to take.
   */
  takeHandle(): fs.FileHandle | undefined {
    const handle = this.kept;
    this.kept = undefined;
    return handle;
  }

  /** The bytes were moved into place: abort() must leave them alone. */
  markPlaced(): void {
    this.settled = true;
  }

  async abort(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    this.queued = [];
    this.queuedBytes = 0;
    this.held.length = 0;
    // The write in flight, if any, finishes before the handle closes under it.
    await this.flushing;
    await this.sealed?.catch(() => undefined);
    await handle?.close().catch(() => undefined);
    await this.takeHandle()?.close().catch(() => undefined);
    if (!this.settled) {
      this.settled = true;
      await this.files.unlink(this.file).catch(() => undefined);
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
