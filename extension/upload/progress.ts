export interface BatchProgress {
  doneBytes: number;
  totalBytes: number;
  /** 0..100; a batch of empty files still moves from 0 to 100. */
  percent: number;
  filesDone: number;
  filesTotal: number;
}

/**
 * Adds per-file byte counts into one figure for the whole batch. A file that is
 * skipped or fails counts as done, so the bar still reaches the end.
 */
export class ProgressTracker {
  private readonly done: number[];
  private readonly settled: boolean[];
  readonly totalBytes: number;

  constructor(private readonly sizes: readonly number[]) {
    this.done = sizes.map(() => 0);
    this.settled = sizes.map(() => false);
    this.totalBytes = sizes.reduce((sum, size) => sum + size, 0);
  }

  update(index: number, bytes: number): BatchProgress {
    this.done[index] = Math.min(bytes, this.sizes[index]);
    return this.snapshot();
  }

  settle(index: number): BatchProgress {
    this.done[index] = this.sizes[index];
    this.settled[index] = true;
    return this.snapshot();
  }

  snapshot(): BatchProgress {
    const doneBytes = this.done.reduce((sum, bytes) => sum + bytes, 0);
    const filesDone = this.settled.filter((settled) => settled).length;
    const filesTotal = this.sizes.length;
    const percent =
      this.totalBytes > 0 ? Math.floor((doneBytes / this.totalBytes) * 100) : filesTotal > 0 ? Math.floor((filesDone / filesTotal) * 100) : 100;
    return { doneBytes, totalBytes: this.totalBytes, percent, filesDone, filesTotal };
  }
}

/** Turns absolute percentages into the increments VS Code's progress API expects. */
export class IncrementCounter {
  private reported = 0;

  next(percent: number): number {
    const increment = Math.max(0, percent - this.reported);
    this.reported += increment;
    return increment;
  }
}
