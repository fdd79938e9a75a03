import { EventEmitter } from 'events';
import { DfsError } from '../../server/protocol';
import type { NodeExit, NodeProcess } from './node-process';

/**
 * The cluster processes this window started, by launch key. A task's terminal adds
 * its process when VS Code opens it; Start Cluster waits here for each one to be ready.
 * Events: 'changed' (a process came or went), 'crashed' (process, exit).
 */
export class ProcessRegistry extends EventEmitter {
  private readonly processes = new Map<string, NodeProcess>();
  private readonly waiters = new Map<string, ((process: NodeProcess) => void)[]>();
  /** Processes that ran and exited (a crash, or a Stop of that one server), by key, until one runs there again or the cluster is stopped: what Restart can bring back. */
  private readonly exited = new Map<string, NodeProcess>();

  add(process: NodeProcess): void {
    const current = this.processes.get(process.launch.key);
    // A second process for a port already served (a tasks.json task run twice) will fail
    // to bind; it must not take the place of, and so untrack, the one that runs.
    if (!current) {
      this.processes.set(process.launch.key, process);
      this.exited.delete(process.launch.key);
    }
    let becameReady = false;
    process.once('exit', (exit: NodeExit) => {
      if (this.processes.get(process.launch.key) === process) {
        this.processes.delete(process.launch.key);
        if (becameReady) {
          this.exited.set(process.launch.key, process);
        }
      }
      // One that never became ready failed to start: Start Cluster reports that itself.
      if (!exit.requested && becameReady) {
        this.emit('crashed', process, exit);
      }
      this.emit('changed');
    });
    process.on('ready', () => {
      becameReady = true;
      this.emit('changed');
    });
    const waiting = this.waiters.get(process.launch.key) ?? [];
    this.waiters.delete(process.launch.key);
    waiting.forEach((wake) => wake(process));
    this.emit('changed');
  }

  get(key: string): NodeProcess | undefined {
    return this.processes.get(key);
  }

  get running(): NodeProcess[] {
    return [...this.processes.values()];
  }

  /** Whether this window started the server with this key: it runs, it ran and exited, or neither. */
  startedHere(key: string): 'running' | 'stopped' | undefined {
    return this.processes.get(key)?.running ? 'running' : this.processes.has(key) || this.exited.has(key) ? 'stopped' : undefined;
  }

  /** Every key this window started that runs or can be restarted. */
  get keys(): string[] {
    return [...new Set([...this.processes.keys(), ...this.exited.keys()])];
  }

  /** Resolves once the process for `key` prints its listening line; rejects if it exits first or never shows up. */
  async whenReady(key: string, timeoutMs: number): Promise<NodeProcess> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DfsError('TIMEOUT', `DFS ${key.replace(':', ' on port ')} printed no listening line within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    const added = this.whenAdded(key);
    try {
      const process = await Promise.race([added.promise, timedOut]);
      await Promise.race([process.ready, timedOut]);
      return process;
    } finally {
      clearTimeout(timer);
      added.cancel();
    }
  }

  /** Stops every process; with the whole cluster stopped there is nothing left to restart. */
  async stopAll(): Promise<void> {
    await Promise.all(this.running.map((process) => process.stop()));
    this.exited.clear();
    this.emit('changed');
  }

  private whenAdded(key: string): { promise: Promise<NodeProcess>; cancel(): void } {
    const existing = this.processes.get(key);
    if (existing) {
      return { promise: Promise.resolve(existing), cancel: () => undefined };
    }
    let wake!: (process: NodeProcess) => void;
    const promise = new Promise<NodeProcess>((resolve) => (wake = resolve));
    this.waiters.set(key, [...(this.waiters.get(key) ?? []), wake]);
    return {
      promise,
      // A waiter that timed out must not linger and keep its caller's closure alive.
      cancel: () => {
        const remaining = (this.waiters.get(key) ?? []).filter((waiter) => waiter !== wake);
        if (remaining.length > 0) {
          this.waiters.set(key, remaining);
        } else {
          this.waiters.delete(key);
        }
      },
    };
  }
}
