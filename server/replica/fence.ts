import { DfsError } from '../protocol';

/** Where a replica keeps the newest epoch it has seen: its catalog's marks, synced before it counts. */
export interface EpochStore {
  readonly epoch: number;
  persist(epoch: number): Promise<void>;
}

/**
 * A replica's guard against a deposed primary (HDFS's epochs on its journal, Kafka's
 * controller epoch). Each leadership has an epoch from etcd; the primary names it on
 * every connection. A newer epoch is recorded durably before anything under it is
 * done, and from then on every change under an older one is refused. Changes hold
 * the fence shared while they apply; raising it waits for them, so nothing applied
 * under an old epoch can land after the new leader has been told "yes".
 *
 * A request that names no epoch comes from a primary without etcd: it is accepted
 * until the replica has served an HA leader, and refused after.
 */
export class Fence {
  private applying = 0;
  private raising: Promise<void> | undefined;
  private readonly drained: (() => void)[] = [];

  constructor(private readonly store: EpochStore) {}

  get epoch(): number {
    return this.store.epoch;
  }

  /** Runs `apply` under `epoch`, raising the fence first if it is newer, refusing if it is older. */
  async under<T>(epoch: number | undefined, apply: () => Promise<T>): Promise<T> {
    for (;;) {
      while (this.raising) {
        await this.raising;
      }
      this.refuseIfStale(epoch);
      if (epoch !== undefined && epoch > this.store.epoch) {
        await this.raise(epoch);
        continue;
      }
      this.applying++;
      try {
        return await apply();
      } finally {
        if (--this.applying === 0) {
          this.drained.splice(0).forEach((wake) => wake());
        }
      }
    }
  }

  /** Checks (and raises, if newer) without applying anything: for the first contact of a new leader. */
  admit(epoch: number | undefined): Promise<void> {
    return this.under(epoch, async () => undefined);
  }

  private refuseIfStale(epoch: number | undefined): void {
    const newest = this.store.epoch;
    if (epoch === undefined && newest > 0) {
      throw new DfsError('FENCED', `this replica follows the primaries elected through etcd (epoch ${newest}); a primary started without --etcd cannot change it`);
    }
    if (epoch !== undefined && epoch < newest) {
      throw new DfsError('FENCED', `a newer primary leads (epoch ${newest}); this one, at epoch ${epoch}, was deposed and can change nothing here`);
    }
  }

  private raise(epoch: number): Promise<void> {
    if (!this.raising) {
      this.raising = (async () => {
        try {
          while (this.applying > 0) {
            await new Promise<void>((wake) => this.drained.push(wake));
          }
          if (epoch > this.store.epoch) {
            await this.store.persist(epoch);
          }
        } finally {
          this.raising = undefined;
        }
      })();
    }
    return this.raising;
  }
}
