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

  add(process: NodeProcess): void {
    this.processes.set(process.launch.key, process);
    process.once('exit', (exit: NodeExit) => {
      if (this.processes.get(process.launch.key) === process) {
        this.processes.delete(process.launch.key);
      }
      if (!exit.requested) {
        this.emit('crashed', process, exit);
      }
      this.emit('changed');
    });
    process.on('ready', () => this.emit('changed'));
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

  /** Resolves once the process for `key` prints its listening line; rejects if it exits first or never shows up. */
  async whenReady(key: string, timeoutMs: number): Promise<NodeProcess> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DfsError('TIMEOUT', `DFS ${key.replace(':', ' on port ')} printed no listening line within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      const process = await Promise.race([this.whenAdded(key), timedOut]);
      await Promise.race([process.ready, timedOut]);
      return process;
    } finally {
      clearTimeout(timer);
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.running.map((process) => process.stop()));
  }

  private whenAdded(key: string): Promise<NodeProcess> {
    const existing = this.processes.get(key);
    if (existing) {
      return Promise.resolve(existing);
    }
    return new Promise((resolve) => {
      const list = this.waiters.get(key) ?? [];
      list.push(resolve);
      this.waiters.set(key, list);
    });
  }
}
