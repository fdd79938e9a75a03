import { DfsError } from '../protocol';

/** Generations reserved at a time: one round of reservation per this many writes. */
export const RESERVATION_BLOCK = 100;

export interface ReservationTarget {
  /** Records `through` durably on this primary. */
  recordLocally(through: number): Promise<void>;
  /** Records `through` on at least as many replicas as the write quorum requires. */
  recordOnReplicas(through: number): Promise<void>;
}

/**
 * Hands out generations: strictly increasing over the cluster's whole life. Before a
 * block of them is used it is reserved on this primary and on as many replicas as the
 * write quorum requires, so a primary that starts on a wiped or restored disk learns,
 * from the replicas it must hear from anyway, a floor above every generation any
 * earlier primary could have issued.
 */
export class GenerationIssuer {
  private nextGeneration = 1;
  private reservedThrough = 0;
  private readonly inFlight = new Set<number>();
  private reserving: Promise<void> | undefined;
  private started = false;

  constructor(private readonly target: ReservationTarget) {}

  /** From now on only generations above `floor` are issued. */
  start(floor: number): void {
    this.nextGeneration = Math.max(this.nextGeneration, floor + 1);
    this.reservedThrough = Math.max(this.reservedThrough, floor);
    this.started = true;
  }

  get isStarted(): boolean {
    return this.started;
  }

  /** The highest generation issued so far. */
  get highest(): number {
    return this.nextGeneration - 1;
  }

  /** The highest generation this primary has reserved. */
  get reserved(): number {
    return this.reservedThrough;
  }

  async issue(): Promise<number> {
    if (!this.started) {
      throw new DfsError('INTERNAL', 'generations issued before recovery finished');
    }
    while (this.nextGeneration > this.reservedThrough) {
      await this.reserve();
    }
    const generation = this.nextGeneration++;
    this.inFlight.add(generation);
    return generation;
  }

  /** The generation's write is decided (committed or abandoned). */
  settle(generation: number): void {
    this.inFlight.delete(generation);
  }

  /** Every generation at or below this is settled: its record is in the catalog, or it never will be anywhere. */
  get settledThrough(): number {
    let lowest = this.nextGeneration;
    for (const generation of this.inFlight) {
      lowest = Math.min(lowest, generation);
    }
    return lowest - 1;
  }

  private reserve(): Promise<void> {
    this.reserving ??= (async () => {
      const through = Math.max(this.reservedThrough, this.nextGeneration - 1) + RESERVATION_BLOCK;
      await Promise.all([this.target.recordLocally(through), this.target.recordOnReplicas(through)]);
      this.reservedThrough = through;
    })().finally(() => {
      this.reserving = undefined;
    });
    return this.reserving;
  }
}
