import { ChildProcess, spawn } from 'child_process';
import { EventEmitter } from 'events';
import * as path from 'path';
import * as readline from 'readline';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const DFS_SCRIPT = path.join(REPO_ROOT, 'dist', 'dfs.js');

const running = new Set<ChildProcess>();

/** Kills whatever a test left running; registered as a root hook. */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => stopChild(child, 'SIGKILL')));
}

/** Puts a child process started elsewhere (etcd, ...) under the same kill-on-exit registry. */
export function trackChild(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

export interface SpawnedNode {
  child: ChildProcess;
  host: string;
  port: number;
  output: string[];
  /** Emits 'line' for every line printed (stdout or stderr), as it arrives. */
  lines: EventEmitter;
  exited: Promise<number | null>;
}

/**
 * Starts `dfs <args>` as its own process and resolves once it prints its listening
 * line; rejects with its output if it exits first.
 */
export function spawnDfs(
  args: string[],
  options: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    readyTimeoutMs?: number;
    /** A command that execs the server in place (`ip netns exec NS`), so the child's pid stays the server's. */
    launcher?: string[];
  } = {},
): Promise<SpawnedNode> {
  return new Promise((resolve, reject) => {
    const [command, ...commandArgs] = [...(options.launcher ?? []), process.execPath, DFS_SCRIPT, ...args];
    const child = spawn(command, commandArgs, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    const output: string[] = [];
    const lines = new EventEmitter();
    const exited = new Promise<number | null>((done) =>
      child.once('exit', (code) => {
        running.delete(child);
        done(code);
      }),
    );
    let ready = false;
    const timer = setTimeout(() => {
      if (!ready) {
        child.kill('SIGKILL');
        reject(new Error(`dfs ${args.join(' ')} printed no listening line within ${options.readyTimeoutMs ?? 15_000} ms:\n${output.join('\n')}`));
      }
    }, options.readyTimeoutMs ?? 15_000);
    const record = (line: string): void => {
      output.push(line);
      lines.emit('line', line);
    };
    const onLine = (line: string): void => {
      record(line);
      const match = /listening on (\S+):(\d+)/.exec(line);
      if (!ready && match) {
        ready = true;
        clearTimeout(timer);
        resolve({ child, host: match[1], port: Number(match[2]), output, lines, exited });
      }
    };
    readline.createInterface({ input: child.stdout! }).on('line', onLine);
    readline.createInterface({ input: child.stderr! }).on('line', record);
    void exited.then((code) => {
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`dfs ${args.join(' ')} exited with ${code} before listening:\n${output.join('\n')}`));
      }
    });
  });
}

/**
 * Runs a dfs client command to completion. With `timeoutMs`, a command still running
 * then is killed and reported (code null, the reason at the end of stderr), so a hung
 * client fails its test with what it printed instead of the whole test timing out.
 */
export function runDfs(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [DFS_SCRIPT, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            stderr += `\n(dfs ${args.join(' ')} was still running after ${options.timeoutMs} ms and was killed)`;
            child.kill('SIGKILL');
          }, options.timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/**
 * The first line `node` prints from now on that matches `pattern`, with when it arrived;
 * rejects with what it printed should none come within `timeoutMs`.
 */
export function nextLine(node: SpawnedNode, pattern: RegExp, timeoutMs: number): Promise<{ line: string; at: number }> {
  return new Promise((resolve, reject) => {
    const onLine = (line: string): void => {
      if (pattern.test(line)) {
        clearTimeout(timer);
        node.lines.off('line', onLine);
        resolve({ line, at: Date.now() });
      }
    };
    const timer = setTimeout(() => {
      node.lines.off('line', onLine);
      reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; the process printed:\n${node.output.slice(-40).join('\n')}`));
    }, timeoutMs);
    node.lines.on('line', onLine);
  });
}
