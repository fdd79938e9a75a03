import type { InventoryHeader, VersionRecord } from '../protocol';
import { versionKey } from '../storage/catalog';
import type { DiskStore } from '../storage/disk-store';
import { fileKey } from '../storage/key-lock';
import type { NameState } from '../storage/name-state';
import { copyVersionFrom } from './copy-from-replica';
import type { PrimaryContext } from './primary-context';
import { NamePlan, planReconciliation, replicaHasWork, replicaStates } from './reconcile';
import type { ReplicaInventory, ReplicaLink } from './replica-link';

const PARALLEL_TRANSFERS_PER_REPLICA = 4;

/** What catch-up needs beyond the handlers' context. */
export interface CatchUpHost extends PrimaryContext {
  readonly store: DiskStore;
  /** The generation the primary's catalog is complete through right now. */
  completeThrough(): number;
  /** A replica's catalog was compared with ours: recovery may be able to finish. */
  merged(link: ReplicaLink, header: InventoryHeader): void;
  /** A pass over every replica ended: marks may be saved and fully applied tombstones dropped. */
  passEnded(): Promise<void>;
}

/**
 * Brings the primary and every replica to the same state, name by name, by the
 * generation rules (reconcile.ts): whichever side holds the newer state, the other
 * takes it, tombstones included, so a stale copy can neither bring a deleted file back
 * nor roll a newer one back, whichever of them is the stale one. A pass first records
 * on the primary what the replica taught it (metadata only: a restarted primary can
 * serve as soon as enough replicas were compared), then moves bytes, four at a time,
 * without holding any name (only what changes the replica's catalog waits for it):
 * every node applies what arrives by its generation. A name that fails is reported
 * with its reason and the pass goes on with the others; a pass with no failure
 * certifies the replica complete through the generation the primary was complete
 * through when the pass began.
 */
export class CatchUp {
  private running: Promise<void> | undefined;
  private rerun = false;
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Copies to the primary under way, by version: passes over several replicas share one. */
  private readonly fetching = new Map<string, Promise<void>>();

  constructor(
    private readonly primary: CatchUpHost,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    void this.runNow();
    if (this.intervalMs > 0) {
      this.timer = setInterval(() => void this.runNow(), this.intervalMs);
      this.timer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.soon);
  }

  /** Asks for a pass shortly, coalescing bursts of writes into one. */
  requestSoon(delayMs = 200): void {
    if (this.soon || this.stopped) {
      return;
    }
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.runNow();
    }, delayMs);
    this.soon.unref();
  }

  /**
   * Runs a pass over every replica; a pass requested while one runs runs once more
   * after it. Every replica's inventory is fetched and learned from first, so each
   * replica is then compared with everything the primary knows, not with what it knew
   * before another replica told it something newer.
   */
  runNow(): Promise<void> {
    if (this.running) {
      this.rerun = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.rerun = false;
        const passStartedMs = Date.now();
        const certifiable = this.primary.completeThrough();
        const inventories = await Promise.all(this.primary.links.map((link) => link.inventory().catch(() => undefined)));
        for (const [index, inventory] of inventories.entries()) {
          if (inventory) {
            await this.learnFrom(this.primary.links[index], inventory);
          }
        }
        await Promise.all(
          inventories.map((inventory, index) => (inventory ? this.settle(this.primary.links[index], inventory, passStartedMs, certifiable) : Promise.resolve(false))),
        );
        await this.primary.passEnded().catch((error: Error) => this.primary.log(`catch-up: could not save its progress: ${error.message}`));
      } while (this.rerun && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private plan(inventory: ReplicaInventory): NamePlan[] {
    const store = this.primary.store;
    const keep = this.primary.keepVersions;
    return planReconciliation(
      {
        keep,
        primaryComplete: this.primary.completeThrough(),
        replicaComplete: inventory.header.synced,
        nowMs: Date.now(),
        primaryStates: snapshotStates(store),
        primaryHasBytes: (record) => store.hasBytes(record.clientId, record.name, record.generation),
      },
      replicaStates(inventory.records, keep),
    );
  }

  /** Phase one for one replica: the primary records what the replica holds newer; the replica counts as compared if all of it was recorded. */
  private async learnFrom(link: ReplicaLink, inventory: ReplicaInventory): Promise<void> {
    const { header } = inventory;
    if (link.nodeId !== undefined && link.nodeId !== header.nodeId) {
      this.primary.log(`catch-up: ${link.label} has a new data folder (catalog ${header.nodeId}); comparing everything again`);
    }
    link.nodeId = header.nodeId;
    link.synced = header.synced;
    // A revocation one node knows is every node's: a new primary disk forgets none.
    const unknown = (header.revoked ?? []).filter((keyId) => !this.primary.store.marks.revoked.includes(keyId));
    if (unknown.length > 0) {
      await this.primary.store.revoke(unknown);
    }
    let failed = 0;
    for (const plan of this.plan(inventory)) {
      try {
        await this.recordOnPrimary(plan, link);
      } catch (error) {
        failed++;
        link.markBehind(fileKey(plan.clientId, plan.name), `the primary could not record what ${link.label} holds: ${(error as Error).message}`);
      }
    }
    // Compared only if everything it taught was recorded: recovery and the primary's
    // completeness count on having seen all of it.
    if (failed === 0) {
      link.merged = true;
      this.primary.merged(link, header);
    }
  }

  /**
   * Phase two for one replica: bytes the primary lacks come from it, what it lacks goes
   * to it. Returns true when every name was settled; the replica is then certified
   * complete through `certifiable`, what the primary was complete through when the pass
   * began.
   */
  private async settle(link: ReplicaLink, inventory: ReplicaInventory, passStartedMs: number, certifiable: number): Promise<boolean> {
    const plans = this.plan(inventory);
    let failed = plans.filter((plan) => plan.primaryRecords.length > 0 || plan.primaryDrops.length > 0).length;
    // The plan says exactly what the replica lacks; a write it missed while the
    // inventory was on its way is kept too.
    const planned = new Set(plans.filter((plan) => replicaHasWork(plan)).map((plan) => fileKey(plan.clientId, plan.name)));
    for (const [key, entry] of [...link.behind]) {
      if (!planned.has(key) && entry.sinceMs < passStartedMs) {
        link.behind.delete(key);
      }
    }
    planned.forEach((key) => link.markBehind(key));

    for (const keyId of this.primary.store.marks.revoked.filter((revoked) => !(inventory.header.revoked ?? []).includes(revoked))) {
      await link.revoke(keyId).catch(() => {
        failed++;
      });
    }
    const queue = plans.filter((plan) => replicaHasWork(plan) || plan.fetch.length > 0);
    await Promise.all(
      Array.from({ length: PARALLEL_TRANSFERS_PER_REPLICA }, async () => {
        for (let plan = queue.shift(); plan && !this.stopped; plan = queue.shift()) {
          const key = fileKey(plan.clientId, plan.name);
          try {
            const done = await this.moveBytes(plan, link);
            link.caughtUp(key);
            link.repairs += done;
          } catch (error) {
            failed++;
            const reason = (error as Error).message;
            const repeated = link.behind.get(key)?.reason === reason;
            link.markBehind(key, reason);
            if (!repeated) {
              // Logged once per reason: the same failure on every pass stays visible in STATUS.
              this.primary.log(`catch-up: ${link.label} could not settle ${plan.clientId}/${plan.name}: ${reason}`);
            }
          }
        }
      }),
    );
    if (failed > 0 || this.stopped) {
      return false;
    }
    // A failure noted since this pass began (an upload the replica could not take) is
    // news the pass cannot have settled: it stays in STATUS.
    if (link.lastErrorMs < passStartedMs) {
      link.reachable = true;
      link.lastError = undefined;
    }
    try {
      if (certifiable > link.synced) {
        await link.certify(certifiable, inventory.header.session);
      }
      link.lastSyncMs = passStartedMs;
    } catch {
      return false;
    }
    return true;
  }

  /** Phase one: what the replica holds newer (or knows to be dead) becomes the primary's record, bytes to follow. */
  private async recordOnPrimary(plan: NamePlan, link: ReplicaLink): Promise<void> {
    const store = this.primary.store;
    for (const record of plan.primaryRecords) {
      const outcome = record.deleted ? await store.commitTombstone(record) : await store.commitVersion(undefined, record, this.primary.keepVersions);
      if (outcome !== 'stale') {
        this.primary.log(
          `catch-up: ${plan.clientId}/${plan.name} ${record.deleted ? `deleted at generation ${record.generation}` : `generation ${record.generation}`}, learned from ${link.label}`,
        );
        this.rerun = true; // The other replicas may lack it too.
      }
    }
    for (const version of plan.primaryDrops) {
      await store.dropVersion(version.clientId, version.name, version.generation);
    }
  }

  /** Phase two: bytes the primary lacks come from the replica; then what the replica lacks goes to it. Returns the repairs made. */
  private async moveBytes(plan: NamePlan, link: ReplicaLink): Promise<number> {
    const store = this.primary.store;
    const keep = this.primary.keepVersions;
    let repairs = 0;
    const stillHeld = (version: VersionRecord): boolean => Boolean(store.state(version.clientId, version.name)?.versions.some((held) => held.generation === version.generation));
    for (const version of plan.fetch) {
      const id = versionKey(version.clientId, version.name, version.generation);
      const underway = this.fetching.get(id);
      if (underway) {
        await underway.catch(() => undefined);
      }
      if (stillHeld(version) && !store.hasBytes(version.clientId, version.name, version.generation)) {
        const copy = copyVersionFrom(this.primary, link, version).finally(() => this.fetching.delete(id));
        this.fetching.set(id, copy);
        await copy;
        repairs++;
        this.rerun = true;
      }
    }
    // What reaches the replica is applied holding the name, as a change of it is (until
    // its replicas answered): planned from an older view, it could otherwise land in the
    // middle of a change in flight, such as a rename's tombstone ahead of the rename,
    // which would leave the replica with neither name.
    const underName = <T>(work: () => Promise<T>): Promise<T> => this.primary.locks.run(fileKey(plan.clientId, plan.name), work);
    if (plan.replicaTombstone) {
      await underName(() => link.sendTombstone(plan.replicaTombstone!));
      repairs++;
    }
    for (const version of plan.push) {
      if (!stillHeld(version)) {
        continue; // Replaced or pushed out of the history meanwhile.
      }
      if (!store.hasBytes(version.clientId, version.name, version.generation)) {
        throw new Error(`the primary holds no intact copy of generation ${version.generation} yet (it is copied from another replica first)`);
      }
      const opened = await store.openRead(version.clientId, version.name, version.generation).catch((error: unknown) => {
        if (stillHeld(version)) {
          throw error;
        }
        return undefined; // Replaced or renamed away since the check above.
      });
      if (!opened) {
        continue;
      }
      const { body } = opened;
      try {
        // The bytes stream without the name; only the commit waits for it.
        await link.push(version, body as AsyncIterable<Buffer>, keep, underName);
      } finally {
        body.destroy();
      }
      repairs++;
    }
    for (const version of plan.replicaDrops) {
      await underName(() => link.dropVersion(version.clientId, version.name, version.generation));
    }
    return repairs;
  }
}

function snapshotStates(store: DiskStore): Map<string, { clientId: string; name: string; state: NameState }> {
  const states = new Map<string, { clientId: string; name: string; state: NameState }>();
  for (const { clientId, name, state } of store.catalog.index.all()) {
    states.set(fileKey(clientId, name), { clientId, name, state });
  }
  return states;
}
