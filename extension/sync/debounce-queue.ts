/** setTimeout and clearTimeout, injectable so tests drive time instead of sleeping. */
export interface Timers {
  set(run: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const REAL_TIMERS: Timers = {
  set: (run, ms) => setTimeout(run, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Runs `work(key)` once a key has been quiet for `delayMs`: several triggers of one key
 * within the delay collapse into one run, and a trigger while that key's work runs
 * makes it run once more after (never two at once for one key). Different keys are
 * independent. Failures go to `onError`; the queue goes on.
 */
export class DebounceQueue {
  private readonly timers = new Map<string, unknown>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly delayMs: number,
    private readonly work: (key: string) => Promise<void>,
    private readonly onError: (key: string, error: unknown) => void,
    private readonly clock: Timers = REAL_TIMERS,
    /** Hears every change of `pending`. */
    private readonly onChange: () => void = () => undefined,
  ) {}

  trigger(key: string): void {
    if (this.closed) {
      return;
    }
    const timer = this.timers.get(key);
    if (timer !== undefined) {
      this.clock.clear(timer);
    }
    this.timers.set(
      key,
      this.clock.set(() => {
        this.timers.delete(key);
        this.start(key);
      }, this.delayMs),
    );
    this.onChange();
  }

  /** Keys waiting for their delay or running now. */
  get pending(): number {
    return new Set([...this.timers.keys(), ...this.running.keys()]).size;
  }

  has(key: string): boolean {
    return this.timers.has(key) || this.running.has(key);
  }

  /** Resolves once nothing is waiting or running. */
  idle(): Promise<void> {
    return this.pending === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops what waits; work already running finishes. */
  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) {
      this.clock.clear(timer);
    }
    this.timers.clear();
    this.again.clear();
    this.settle();
  }

  private start(key: string): void {
    if (this.running.has(key)) {
      this.again.add(key);
      return;
    }
    const run = (async () => {
      try {
        await this.work(key);
      } catch (error) {
        this.onError(key, error);
      }
    })().finally(() => {
      this.running.delete(key);
      if (this.again.delete(key) && !this.closed) {
        this.start(key);
      }
      this.onChange();
      this.settle();
    });
    this.running.set(key, run);
  }

  private settle(): void {
    if (this.pending === 0) {
      this.idleWaiters.splice(0).forEach((resolve) => resolve());
    }
  }
}
