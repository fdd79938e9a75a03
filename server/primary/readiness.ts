import { DfsError } from '../protocol';

/**
 * Whether the primary may serve yet. After a start it knows the latest versions only
 * once it has compared its catalog with enough replicas that every acknowledged write
 * is among them; until then requests wait (briefly) instead of being answered from a
 * disk that may be stale, restored or new.
 */
export class Readiness {
  private ready = false;
  private waiters: (() => void)[] = [];
  private waiting = '';

  constructor(private readonly waitMs: number) {}

  get isReady(): boolean {
    return this.ready;
  }

  /** What the primary still waits for, for STATUS and for refusals; empty once ready. */
  get description(): string {
    return this.ready ? '' : this.waiting;
  }

  set description(text: string) {
    this.waiting = text;
  }

  markReady(): void {
    this.ready = true;
    this.waiting = '';
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((wake) => wake());
  }

  /** Resolves once ready; refuses with the reason after the wait. */
  async whenReady(): Promise<void> {
    if (this.ready) {
      return;
    }
    const arrived = await new Promise<boolean>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter !== wake);
        resolve(false);
      }, this.waitMs);
      this.waiters.push(wake);
    });
    if (!arrived) {
      throw new DfsError('QUORUM', `the primary is still recovering and cannot serve yet: ${this.waiting || 'it is comparing its catalog with the replicas'}. Nothing was changed.`);
    }
  }
}
