import { ChildProcess, spawn } from 'child_process';
import { EventEmitter } from 'events';
import * as readline from 'readline';
import { DfsError } from '../../server/protocol';
import { NodeLaunch, parseListeningLine } from './node-launch';

export interface NodeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The process was asked to stop; anything else is a crash worth telling the user about. */
  requested: boolean;
  /** Its last line on stderr: the server's own reason ("port 9000 ... is already in use"). */
  lastError?: string;
}

export interface RuntimeCommand {
  /** VS Code's own executable, run as plain Node through ELECTRON_RUN_AS_NODE. */
  execPath: string;
  /** The bundled dist/dfs.js inside the extension. */
  scriptPath: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * One server process of the local cluster. Events: 'line' (every output line, with
 * its stream), 'ready' (the listening line), 'exit' (NodeExit).
 */
export class NodeProcess extends EventEmitter {
  private child: ChildProcess | undefined;
  private stopRequested = false;
  private lastError: string | undefined;
  private exitInfo: NodeExit | undefined;
  readonly ready: Promise<{ host: string; port: number }>;
  readonly exited: Promise<NodeExit>;
  private resolveReady!: (address: { host: string; port: number }) => void;
  private rejectReady!: (error: DfsError) => void;
  private resolveExited!: (exit: NodeExit) => void;
  private isReady = false;

  constructor(
    readonly launch: NodeLaunch,
    private readonly runtime: RuntimeCommand,
  ) {
    super();
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Callers that only care about exit must not trip an unhandled rejection.
    this.ready.catch(() => undefined);
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
  }

  get running(): boolean {
    return this.child !== undefined && this.exitInfo === undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get hasExited(): NodeExit | undefined {
    return this.exitInfo;
  }

  start(): void {
    if (this.child) {
      return;
    }
    const child = spawn(this.runtime.execPath, [this.runtime.scriptPath, ...this.launch.args], {
      env: { ...process.env, ...this.runtime.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
    this.child = child;
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      this.emit('line', line, 'stdout');
      const address = parseListeningLine(line);
      if (address && !this.isReady) {
        this.isReady = true;
        this.resolveReady(address);
        this.emit('ready', address);
      }
    });
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      if (line.trim().length > 0) {
        this.lastError = line.replace(/^dfs: /, '');
      }
      this.emit('line', line, 'stderr');
    });
    child.once('error', (error) => {
      this.lastError = `cannot run ${this.runtime.execPath}: ${error.message}`;
    });
    child.once('close', (code, signal) => {
      const exit: NodeExit = { code, signal, requested: this.stopRequested, lastError: this.lastError };
      this.exitInfo = exit;
      if (!this.isReady) {
        this.rejectReady(new DfsError('UNREACHABLE', `DFS ${this.launch.label} did not start: ${this.lastError ?? `it exited with ${code ?? signal}`}`));
      }
      this.resolveExited(exit);
      this.emit('exit', exit);
    });
  }

  /** SIGTERM lets the server finish in-flight work; it is killed if it has not exited in time. */
  async stop(graceMs = 5_000): Promise<NodeExit> {
    if (!this.child || this.exitInfo) {
      return this.exitInfo ?? { code: null, signal: null, requested: true };
    }
    this.stopRequested = true;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
