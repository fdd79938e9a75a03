import { ChildProcess, spawn } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import * as readline from 'readline';
import { ClientConnections } from '../../server/client/client-connections';
import { DfsClient } from '../../server/client/dfs-client';
import { freePortRange } from '../support/ports';

/** dist/bench.js sits next to dist/dfs.js. */
export const DFS_SCRIPT = path.join(__dirname, 'dfs.js');
/** The small-file baseline (minimal-server.ts), bundled next to them. */
export const MINIMAL_SERVER_SCRIPT = path.join(__dirname, 'bench-minimal-server.js');

/** Generous, so a 1 GiB fsync at the end of an upload never trips a timeout. */
export const BENCH_IDLE_TIMEOUT_MS = 300_000;
export const BENCH_TIMEOUTS = { headerMs: 10_000, idleMs: BENCH_IDLE_TIMEOUT_MS, settleMs: 15 };

const running = new Set<ChildProcess>();

export interface ServerProcess {
  role: string;
  child: ChildProcess;
  pid: number;
  port: number;
  output: string[];
}

export interface LaunchOptions {
  replicas: number;
  /** The cluster's one data folder: `servidor/` and `replicaN/` go inside. */
  dataDir: string;
  /** When set, each process writes a CPU profile named after its role here on exit. */
  profileDir?: string;
}

export interface SpawnOptions extends Pick<LaunchOptions, 'dataDir' | 'profileDir'> {
  /** The script node runs (default dist/dfs.js). */
  script?: string;
  /** A command that execs node in place (`ip netns exec NS`), so the child's pid stays the server's. */
  launcher?: string[];
}

/**
 * A real cluster for one measurement: `node dist/dfs.js replica ...` N times and
 * `node dist/dfs.js primary ...`, separate processes on 127.0.0.1 free ports, each
 * ready once it prints its listening line. Started from the data folder, so no
 * dfs.config.json of the repository can change a setting.
 */
export class BenchCluster {
  private constructor(
    readonly primary: ServerProcess,
    readonly replicas: ServerProcess[],
    readonly dataDir: string,
  ) {}

  static async start(options: LaunchOptions): Promise<BenchCluster> {
    await fs.mkdir(options.dataDir, { recursive: true });
    if (options.profileDir) {
      await fs.mkdir(options.profileDir, { recursive: true });
    }
    const basePort = await freePortRange(Math.max(options.replicas, 1));
    const common = [
      '--host', '127.0.0.1',
      '--base-port', String(basePort),
      '--replicas', String(options.replicas),
      '--data-dir', options.dataDir,
      '--idle-timeout', String(BENCH_IDLE_TIMEOUT_MS),
    ];
    const started: ServerProcess[] = [];
    try {
      const replicas = await Promise.all(
        Array.from({ length: options.replicas }, (_, index) => {
          const role = `replica${index + 1}`;
          return startServer(role, ['replica', '--port', String(basePort + index), ...common], options).then((node) => (started.push(node), node));
        }),
      );
      const primary = await startServer('primary', ['primary', '--port', '0', ...common], options);
      started.push(primary);
      return new BenchCluster(primary, replicas, options.dataDir);
    } catch (error) {
      await Promise.all(started.map((node) => stopServer(node.child)));
      throw error;
    }
  }

  get all(): ServerProcess[] {
    return [this.primary, ...this.replicas];
  }

  /** A simulated user: its own client id and its own connection (a process of its own would have one), shared by its requests. */
  client(clientId: string): DfsClient {
    return new DfsClient({ host: '127.0.0.1', port: this.primary.port, clientId, timeouts: BENCH_TIMEOUTS, connections: new ClientConnections() });
  }

  /** SIGTERM (so a CPU profile gets written), then the data folder goes. */
  async stop(options: { keepData?: boolean } = {}): Promise<void> {
    await Promise.all(this.all.map((node) => stopServer(node.child)));
    if (!options.keepData) {
      await fs.rm(this.dataDir, { recursive: true, force: true });
    }
  }
}

/** A server that exited before it printed its listening line: `output` says why (an unknown flag, ...). */
export class ServerExitedEarly extends Error {
  constructor(
    readonly role: string,
    readonly exit: string,
    readonly output: string[],
  ) {
    super(`${role} exited (${exit}) before listening:\n${output.join('\n')}`);
  }
}

/** Starts one `dfs` server process (or another script) from `options.dataDir`; resolves once it prints its listening line. */
export function startServer(role: string, args: string[], options: SpawnOptions): Promise<ServerProcess> {
  const nodeFlags = options.profileDir ? ['--cpu-prof', '--cpu-prof-dir', options.profileDir, '--cpu-prof-name', `${role}.cpuprofile`] : [];
  const [command, ...commandArgs] = [...(options.launcher ?? []), process.execPath, ...nodeFlags, options.script ?? DFS_SCRIPT, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(command, commandArgs, {
      cwd: options.dataDir,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    const output: string[] = [];
    let ready = false;
    const timer = setTimeout(() => {
      if (!ready) {
        child.kill('SIGKILL');
        reject(new Error(`${role} printed no listening line within 15 s:\n${output.join('\n')}`));
      }
    }, 15_000);
    const keep = (line: string): void => {
      // Per-upload log lines would grow without bound over 10,000 uploads.
      if (output.length < 200) {
        output.push(line);
      }
    };
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      keep(line);
      const match = /listening on (\S+):(\d+)/.exec(line);
      if (!ready && match) {
        ready = true;
        clearTimeout(timer);
        resolve({ role, child, pid: child.pid!, port: Number(match[2]), output });
      }
    });
    readline.createInterface({ input: child.stderr! }).on('line', keep);
    child.once('exit', (code, signal) => {
      running.delete(child);
      if (!ready) {
        clearTimeout(timer);
        reject(new ServerExitedEarly(role, String(code ?? signal), output));
      }
    });
  });
}

/** Stops one child the bench started: SIGTERM, then SIGKILL if it lingers. */
export function stopServer(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** For an interrupted bench: every server it started, by its own handle. */
export function killStartedServers(): void {
  for (const child of running) {
    child.kill('SIGKILL');
  }
}
