/**
 * Logs the first of a run of like events at once, then how many more came in each
 * window while they go on: a flood (connections over the limit, a process out of
 * descriptors) makes a few lines, not one per event, and its end is visible.
 */
export class BurstLog {
  private more = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: (line: string) => void,
    private readonly summary: (count: number, windowMs: number) => string,
    private readonly windowMs = 10_000,
  ) {}

  note(first: () => string): void {
    if (this.timer) {
      this.more++;
      return;
    }
    this.log(first());
    this.arm();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.more > 0) {
        this.log(this.summary(this.more, this.windowMs));
        this.more = 0;
        // Still going on: keep counting, so the next quiet window ends the burst.
        this.arm();
      }
    }, this.windowMs);
    this.timer.unref();
  }
}
