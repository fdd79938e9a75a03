import { promises as fs } from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { NetnsCluster } from '../support/netns';
import { stopChild } from '../support/processes';
import { Random } from './random';

/**
 * Injects one fault at a time into a cluster spread over network namespaces, holds it
 * for a while, heals it, waits, and picks the next: kill -9 and restart of any node,
 * SIGSTOP/SIGCONT of any node, a replica's link cut, a full disk on the replica whose
 * data folder is a small tmpfs, the primary's folder wiped, or replaced by an old copy
 * of it.
 */

export type FaultKind = 'kill-replica' | 'kill-primary' | 'pause-replica' | 'pause-primary' | 'cut-link' | 'full-disk' | 'wipe-primary' | 'old-primary';

const WEIGHTS: Record<FaultKind, number> = {
  'kill-replica': 4,
  'kill-primary': 3,
  'pause-replica': 2,
  'pause-primary': 2,
  'cut-link': 3,
  'full-disk': 2,
  'wipe-primary': 1,
  'old-primary': 1,
};

export interface FaultRecord {
  kind: FaultKind;
  target: string;
  start: number;
  end: number;
}

export interface NemesisOptions {
  cluster: NetnsCluster;
  random: Random;
  writeQuorum: string;
  serverArgs: string[];
  /** The replica whose data folder is a size-limited tmpfs, or undefined when none could be mounted. */
  smallDiskReplica: number | undefined;
  log: (line: string) => void;
}

export class Nemesis {
  readonly faults: FaultRecord[] = [];
  private stopping = false;
  private running: Promise<void> | undefined;
  private readonly primaryCopy: string;
  private haveCopy = false;
  private wake: (() => void) | undefined;

  constructor(private readonly options: NemesisOptions) {
    this.primaryCopy = path.join(options.cluster.dataDir, 'chaos-primary-copy');
  }

  start(): void {
    this.running = this.loop();
  }

  /** Heals the fault in progress, if any, and stops. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
  }

  /** Waits `ms`, or less if stop() is called meanwhile. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async loop(): Promise<void> {
    const { random } = this.options;
    while (!this.stopping) {
      await this.pause(random.int(1_000, 3_000));
      if (this.stopping) {
        break;
      }
      let kind = random.weighted(WEIGHTS);
      if (kind === 'full-disk' && this.options.smallDiskReplica === undefined) {
        kind = 'kill-replica';
      }
      if (kind === 'old-primary' && !this.haveCopy) {
        kind = 'kill-primary';
      }
      const hold = random.int(500, 3_000);
      const replica = random.int(0, this.options.cluster.replicaCount - 1);
      await this.inject(kind, replica, hold);
    }
  }

  private async inject(kind: FaultKind, replica: number, holdMs: number): Promise<void> {
    const { cluster } = this.options;
    const start = performance.now();
    let target = 'primary';
    switch (kind) {
      case 'kill-replica':
        target = `replica ${replica + 1}`;
        await stopChild(cluster.replicas[replica]!.child, 'SIGKILL');
        await this.pause(holdMs);
        await this.startReplica(replica);
        break;
      case 'kill-primary':
        await cluster.stopPrimary();
        if (this.options.random.next() < 0.5) {
          // A copy of a stopped primary's folder is what a restored backup would be.
          await fs.rm(this.primaryCopy, { recursive: true, force: true });
          await fs.cp(cluster.primaryRoot(), this.primaryCopy, { recursive: true });
          this.haveCopy = true;
        }
        await this.pause(holdMs);
        await this.startPrimary();
        break;
      case 'pause-replica':
      case 'pause-primary': {
        const node = kind === 'pause-primary' ? cluster.primary! : cluster.replicas[replica]!;
        target = kind === 'pause-primary' ? 'primary' : `replica ${replica + 1}`;
        node.child.kill('SIGSTOP');
        await this.pause(holdMs);
        node.child.kill('SIGCONT');
        break;
      }
      case 'cut-link':
        target = `link to replica ${replica + 1}`;
        await cluster.cutLink(replica);
        await this.pause(holdMs);
        await cluster.restoreLink(replica);
        break;
      case 'full-disk': {
        const index = this.options.smallDiskReplica!;
        target = `disk of replica ${index + 1}`;
        const filler = await fillDisk(cluster.replicaRoot(index));
        await this.pause(holdMs);
        await fs.rm(filler, { force: true });
        break;
      }
      case 'wipe-primary':
        await cluster.stopPrimary();
        await fs.rm(cluster.primaryRoot(), { recursive: true, force: true });
        await this.startPrimary();
        break;
      case 'old-primary':
        target = 'primary (old copy of its folder)';
        await cluster.stopPrimary();
        await fs.rm(cluster.primaryRoot(), { recursive: true, force: true });
        await fs.cp(this.primaryCopy, cluster.primaryRoot(), { recursive: true });
        await this.startPrimary();
        break;
    }
    const fault = { kind, target, start, end: performance.now() };
    this.faults.push(fault);
    this.options.log(`fault ${this.faults.length}: ${kind} ${target}, ${Math.round(fault.end - fault.start)} ms`);
  }

  async startPrimary(): Promise<void> {
    await this.options.cluster.startPrimary(this.options.writeQuorum, this.options.serverArgs);
  }

  async startReplica(index: number): Promise<void> {
    await this.options.cluster.startReplica(index, this.options.serverArgs);
  }
}

/** Fills the file system holding `root` to the last byte; returns the file that did it. */
async function fillDisk(root: string): Promise<string> {
  const filler = path.join(root, '.dfs', 'chaos-filler');
  const handle = await fs.open(filler, 'w');
  const block = Buffer.alloc(1024 * 1024);
  try {
    for (let size = block.length; size >= 1; size = Math.floor(size / 2)) {
      for (;;) {
        try {
          await handle.write(block, 0, size);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOSPC') {
            break;
          }
          throw error;
        }
      }
    }
  } finally {
    await handle.close();
  }
  return filler;
}
