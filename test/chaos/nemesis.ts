import type { ChildProcess } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { Random } from './random';

/**
 * Injects one fault at a time, holds it for a while, heals it, waits, and picks the
 * next, from a table of faults the cluster under test offers (see netns-faults.ts and
 * ha-faults.ts).
 */

export interface Fault {
  /** How often it is chosen, relative to the others. */
  weight: number;
  /** False while it cannot be injected (no old copy to put back yet, no small disk). */
  available?: () => boolean;
  /** Injects the fault, waits `hold()` and heals it; returns what it hit, for the log. */
  inject(random: Random, hold: () => Promise<void>): Promise<string>;
}

export interface FaultRecord {
  kind: string;
  target: string;
  start: number;
  end: number;
}

export class Nemesis {
  readonly faults: FaultRecord[] = [];
  private stopping = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly table: Record<string, Fault>,
    private readonly random: Random,
    private readonly log: (line: string) => void,
  ) {}

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
    while (!this.stopping) {
      await this.pause(this.random.int(1_000, 3_000));
      if (this.stopping) {
        break;
      }
      const weights = Object.fromEntries(Object.entries(this.table).map(([kind, fault]) => [kind, fault.available?.() === false ? 0 : fault.weight]));
      const kind = this.random.weighted(weights);
      const holdMs = this.random.int(500, 3_000);
      const start = performance.now();
      const target = await this.table[kind].inject(this.random, () => this.pause(holdMs));
      const fault = { kind, target, start, end: performance.now() };
      this.faults.push(fault);
      this.log(`fault ${this.faults.length}: ${kind} ${target}, ${Math.round(fault.end - fault.start)} ms`);
    }
  }
}

/** SIGSTOP, hold, SIGCONT of the process `pick` chooses (it names it). */
export function pauseFault(weight: number, pick: (random: Random) => Promise<{ child: ChildProcess; label: string }>): Fault {
  return {
    weight,
    inject: async (random, hold) => {
      const { child, label } = await pick(random);
      child.kill('SIGSTOP');
      await hold();
      child.kill('SIGCONT');
      return label;
    },
  };
}

/** The small disk of `replica` filled to the last byte, held, then freed; never when there is none. */
export function fullDiskFault(weight: number, replica: number | undefined, rootOf: (index: number) => string): Fault {
  return {
    weight,
    available: () => replica !== undefined,
    inject: async (_random, hold) => {
      const filler = await fillDisk(rootOf(replica!));
      await hold();
      await fs.rm(filler, { force: true });
      return `disk of replica ${replica! + 1}`;
    },
  };
}

/** Fills the file system holding `root` to the last byte; returns the file that did it. */
export async function fillDisk(root: string): Promise<string> {
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
