import { FileRecord } from '../protocol';
import { fileKey } from '../storage/key-lock';
import { copyFromReplica } from './copy-from-replica';
import type { PrimaryContext } from './primary-context';
import type { ReplicaLink } from './replica-link';

const PARALLEL_TRANSFERS_PER_REPLICA = 4;

/**
 * Brings every replica to exactly the primary's state: anti-entropy by inventory
 * (and, on a primary whose data folder is new, copies the replicas' files back first).
 * Each pass asks a replica for its files and checksums, pushes what it lacks or holds
 * in another version, and deletes what the primary no longer has, so a stale replica
 * can never bring a deleted file back. Every change runs under the file's lock, so
 * uploads carry on and the last writer is the same on every node.
 */
export class CatchUp {
  private running: Promise<void> | undefined;
  private rerun = false;
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly primary: PrimaryContext,
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
  requestSoon(): void {
    if (this.soon || this.stopped) {
      return;
    }
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.runNow();
    }, 200);
    this.soon.unref();
  }

  /** Runs a pass over every replica; a pass requested while one runs runs once more after it. */
  runNow(): Promise<void> {
    if (this.running) {
      this.rerun = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.rerun = false;
        const reachedAll = (await Promise.all(this.primary.links.map((link) => this.syncReplica(link)))).every(Boolean);
        if (reachedAll && this.primary.adopting) {
          await this.primary.finishAdoption();
        }
      } while (this.rerun && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Returns true when the replica was reached and everything it lacked was settled. */
  private async syncReplica(link: ReplicaLink): Promise<boolean> {
    const passStartedMs = Date.now();
    let inventory: FileRecord[];
    try {
      inventory = await link.inventory();
    } catch {
      return false;
    }
    const theirs = new Map(inventory.map((record) => [fileKey(record.clientId, record.name), record]));
    const differences: { clientId: string; name: string; theirs?: FileRecord }[] = [];
    for (const record of this.primary.store.all()) {
      if (theirs.get(fileKey(record.clientId, record.name))?.sha256 !== record.sha256) {
        differences.push(record);
      }
    }
    for (const record of inventory) {
      if (!this.primary.store.get(record.clientId, record.name)) {
        differences.push({ clientId: record.clientId, name: record.name, theirs: record });
      }
    }
    link.behind.clear();
    for (const { clientId, name } of differences) {
      link.markBehind(clientId, name);
    }
    let failed = false;
    const queue = [...differences];
    await Promise.all(
      Array.from({ length: PARALLEL_TRANSFERS_PER_REPLICA }, async () => {
        for (let next = queue.shift(); next && !failed && !this.stopped; next = queue.shift()) {
          const { clientId, name, theirs: theirCopy } = next;
          const key = fileKey(clientId, name);
          try {
            const action = await this.primary.locks.run(key, async () => {
              // Re-read under the lock: an upload or delete may have won the race.
              const current = this.primary.store.get(clientId, name);
              if (current) {
                const body = await this.primary.store.openRead(clientId, name);
                try {
                  await link.push(current, body);
                } finally {
                  body.destroy();
                }
                return 'sent';
              }
              if (theirCopy && this.primary.adopting && !this.primary.removedKeys.has(key)) {
                await copyFromReplica(this.primary, link, theirCopy);
                this.rerun = true; // The other replicas may lack it too.
                return 'adopted from it';
              }
              await link.deleteFile(clientId, name);
              return 'removed from it';
            });
            link.caughtUp(clientId, name);
            link.lastError = undefined;
            link.repairs++;
            this.primary.log(`catch-up: ${link.label}: ${clientId}/${name} ${action}`);
          } catch (error) {
            failed = true;
            this.primary.log(`catch-up: ${link.label} could not settle ${clientId}/${name}: ${(error as Error).message}`);
          }
        }
      }),
    );
    if (!failed) {
      link.reachable = true;
      // The time the pass started: everything committed before it is now on the replica.
      link.lastSyncMs = passStartedMs;
    }
    return !failed;
  }
}
