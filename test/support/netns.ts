import { ChildProcess, spawn, spawnSync } from 'child_process';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import { SpawnedNode, spawnDfs, stopChild } from './processes';

/**
 * A DFS cluster spread over Linux network namespaces, as if every server ran on its
 * own host: the primary in one namespace, each replica in its own, joined by
 * point-to-point veth pairs. Every address comes from 198.18.0.0/15, the range
 * reserved for network benchmarks, and no namespace has a default route, so no
 * packet can leave the namespaces.
 *
 *   root namespace (the test) --[dfs<pid>c<n>: 198.19.A.B+1/30]-- primary "client" (198.19.A.B+2)
 *   primary "r<i>" (198.18.<i>.1/30) --------------------------------- replica i "uplink" (198.18.<i>.2/30)
 *
 * Names are unique per run (dfs-<pid>-<n>-p, dfs-<pid>-<n>-r<i>) and everything is
 * deleted by destroy(), or at the latest when the test process exits.
 */

export const REPLICA_BASE_PORT = 9000;
export const PRIMARY_PORT = 8000;

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The command itself is not installed. */
  missing: boolean;
}

/** Runs a command to completion, never throwing. */
export function run(command: string, args: string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let missing = false;
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.once('error', (error: NodeJS.ErrnoException) => {
      missing = error.code === 'ENOENT';
      stderr += error.message;
    });
    child.once('close', (code) => resolve({ code: missing ? null : code, stdout, stderr, missing }));
  });
}

/** Runs a command that must succeed. */
export async function must(command: string, args: string[]): Promise<string> {
  const result = await run(command, args);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.missing ? 'not installed' : `exit ${result.code}`}): ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/**
 * Why network namespaces cannot be used here, or undefined when they can: probes by
 * creating (and deleting) one namespace.
 */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') {
    return `network namespaces need Linux, this is ${process.platform}`;
  }
  const probe = `dfs-${process.pid}-probe`;
  const added = await run('ip', ['netns', 'add', probe]);
  if (added.missing) {
    return 'the "ip" command is not installed (Debian package iproute2)';
  }
  if (added.code !== 0) {
    const who = process.getuid?.() === 0 ? '' : ' (not running as root)';
    return `"ip netns add" failed${who}: ${added.stderr.trim()}`;
  }
  await must('ip', ['netns', 'del', probe]);
  return undefined;
}

/** What a replica's link can be made to do to packets mid-upload. */
export type Impairment = 'loss' | 'delay';

/** Everything still to delete should the process exit before destroy() runs. */
const live = new Set<NetnsCluster>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) {
    return;
  }
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const cluster of live) {
      cluster.destroySync();
    }
  });
}

let clusterCounter = 0;

export class NetnsCluster {
  readonly primaryNs: string;
  readonly replicaNs: string[];
  /** The root namespace's end of the client link. */
  readonly rootDevice: string;
  readonly primaryAddress: string;
  readonly rootAddress: string;
  primary: SpawnedNode | undefined;
  readonly replicas: (SpawnedNode | undefined)[] = [];
  /** True when the kernel has sch_netem; otherwise impairments use qdiscs it does have. */
  netem = false;

  private constructor(
    readonly prefix: string,
    readonly replicaCount: number,
    readonly dataDir: string,
    clientNet: number,
  ) {
    this.primaryNs = `${prefix}-p`;
    this.replicaNs = Array.from({ length: replicaCount }, (_, index) => `${prefix}-r${index + 1}`);
    this.rootDevice = `dfs${process.pid}c${prefix.split('-').pop()}`;
    this.rootAddress = `198.19.${clientNet >> 8}.${(clientNet & 0xff) + 1}`;
    this.primaryAddress = `198.19.${clientNet >> 8}.${(clientNet & 0xff) + 2}`;
  }

  /** Builds the namespaces and links; nothing runs in them yet. */
  static async create(replicaCount = 3): Promise<NetnsCluster> {
    installExitHook();
    await removeStaleNamespaces();
    const prefix = `dfs-${process.pid}-${++clusterCounter}`;
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-netns-'));
    const cluster = new NetnsCluster(prefix, replicaCount, dataDir, await freeClientNet());
    live.add(cluster);
    try {
      await cluster.build();
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  replicaAddress(index: number): string {
    return `198.18.${index + 1}.2`;
  }

  replicaPort(index: number): number {
    return REPLICA_BASE_PORT + index;
  }

  /** The primary's end of replica `index`'s link, in the primary's namespace. */
  primaryDevice(index: number): string {
    return `r${index + 1}`;
  }

  get address(): string {
    return `${this.primaryAddress}:${PRIMARY_PORT}`;
  }

  primaryRoot(): string {
    return path.join(this.dataDir, 'servidor');
  }

  replicaRoot(index: number): string {
    return path.join(this.dataDir, `replica${index + 1}`);
  }

  allRoots(): string[] {
    return [this.primaryRoot(), ...this.replicaNs.map((_, index) => this.replicaRoot(index))];
  }

  client(clientId: string): DfsClient {
    return new DfsClient({ host: this.primaryAddress, port: PRIMARY_PORT, clientId });
  }

  private async build(): Promise<void> {
    for (const ns of [this.primaryNs, ...this.replicaNs]) {
      await must('ip', ['netns', 'add', ns]);
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    for (let index = 0; index < this.replicaCount; index++) {
      const ns = this.replicaNs[index];
      const device = this.primaryDevice(index);
      // Both ends are created directly inside their namespaces: nothing appears in the root namespace.
      await must('ip', ['link', 'add', device, 'netns', this.primaryNs, 'type', 'veth', 'peer', 'name', 'uplink', 'netns', ns]);
      await must('ip', ['-n', this.primaryNs, 'addr', 'add', `198.18.${index + 1}.1/30`, 'dev', device]);
      await must('ip', ['-n', ns, 'addr', 'add', `${this.replicaAddress(index)}/30`, 'dev', 'uplink']);
      await must('ip', ['-n', this.primaryNs, 'link', 'set', device, 'up']);
      await must('ip', ['-n', ns, 'link', 'set', 'uplink', 'up']);
    }
    await must('ip', ['link', 'add', this.rootDevice, 'type', 'veth', 'peer', 'name', 'client', 'netns', this.primaryNs]);
    await must('ip', ['addr', 'add', `${this.rootAddress}/30`, 'dev', this.rootDevice]);
    await must('ip', ['-n', this.primaryNs, 'addr', 'add', `${this.primaryAddress}/30`, 'dev', 'client']);
    await must('ip', ['-n', this.primaryNs, 'link', 'set', 'client', 'up']);
    await must('ip', ['link', 'set', this.rootDevice, 'up']);
    this.netem = await this.probeNetem();
  }

  /** Whether `tc ... netem` works here: the qdisc is a kernel module (sch_netem) some kernels lack. */
  private async probeNetem(): Promise<boolean> {
    const device = this.primaryDevice(0);
    const added = await run('tc', ['-n', this.primaryNs, 'qdisc', 'add', 'dev', device, 'root', 'netem', 'delay', '1ms']);
    if (added.code === 0) {
      await must('tc', ['-n', this.primaryNs, 'qdisc', 'del', 'dev', device, 'root']);
      return true;
    }
    if (/unknown/i.test(added.stderr)) {
      return false;
    }
    throw new Error(`tc qdisc add ... netem failed (${added.missing ? 'tc is not installed' : `exit ${added.code}`}): ${added.stderr.trim()}`);
  }

  /** Runs `dfs <args>` inside namespace `ns` and resolves once it prints its listening line. */
  spawnIn(ns: string, args: string[], readyTimeoutMs = 15_000): Promise<SpawnedNode> {
    // `ip netns exec` switches namespace and execs in place: the child's pid is the server's.
    return spawnDfs(args, { readyTimeoutMs, launcher: ['ip', 'netns', 'exec', ns] });
  }


  async startReplica(index: number, extraArgs: string[] = []): Promise<SpawnedNode> {
    const node = await this.spawnIn(this.replicaNs[index], [
      'replica',
      '--host',
      this.replicaAddress(index),
      '--port',
      String(this.replicaPort(index)),
      '--base-port',
      String(REPLICA_BASE_PORT),
      '--replicas',
      String(this.replicaCount),
      '--data-dir',
      this.dataDir,
      ...extraArgs,
    ]);
    this.replicas[index] = node;
    return node;
  }

  async startPrimary(writeQuorum: string, extraArgs: string[] = []): Promise<SpawnedNode> {
    const replicas = this.replicaNs.flatMap((_, index) => ['--replica', `${this.replicaAddress(index)}:${this.replicaPort(index)}`]);
    this.primary = await this.spawnIn(this.primaryNs, [
      'primary',
      '--host',
      this.primaryAddress,
      '--port',
      String(PRIMARY_PORT),
      ...replicas,
      '--write-quorum',
      writeQuorum,
      '--data-dir',
      this.dataDir,
      ...extraArgs,
    ]);
    return this.primary;
  }

  async stopPrimary(): Promise<void> {
    if (this.primary) {
      await stopChild(this.primary.child, 'SIGKILL');
      this.primary = undefined;
    }
  }

  /** Every default route in a namespace (IPv4 and IPv6): there must be none, so no packet can leave. */
  async defaultRoutes(ns: string): Promise<string> {
    return (await must('ip', ['-n', ns, '-4', 'route', 'show', 'default'])) + (await must('ip', ['-n', ns, '-6', 'route', 'show', 'default']));
  }

  /** The network namespace a process runs in (its nsfs inode). */
  async namespaceOf(pid: number): Promise<number> {
    return (await fs.stat(`/proc/${pid}/ns/net`)).ino;
  }

  async namespaceInode(ns: string): Promise<number> {
    return (await fs.stat(`/run/netns/${ns}`)).ino;
  }

  /** Takes replica `index`'s end of its link down: the cable is pulled. */
  async cutLink(index: number): Promise<void> {
    await must('ip', ['-n', this.replicaNs[index], 'link', 'set', 'uplink', 'down']);
  }

  async restoreLink(index: number): Promise<void> {
    await must('ip', ['-n', this.replicaNs[index], 'link', 'set', 'uplink', 'up']);
  }

  /**
   * Makes the primary's end of replica `index`'s link drop every packet or hold each
   * one for 5 s (`tc netem loss 100%` / `delay 5000ms`). Where the kernel lacks netem,
   * the same effect with qdiscs it has: a FIFO of length 0 drops every packet, and a
   * 1 kbit/s token bucket holds each full-size packet for about 12 s. Returns the
   * qdisc that was applied, for the log.
   */
  async impair(index: number, how: Impairment): Promise<string> {
    const qdisc = this.netem
      ? how === 'loss'
        ? ['netem', 'loss', '100%']
        : ['netem', 'delay', '5000ms']
      : how === 'loss'
        ? ['pfifo', 'limit', '0']
        : ['tbf', 'rate', '1kbit', 'burst', '1600', 'latency', '60s'];
    await must('tc', ['-n', this.primaryNs, 'qdisc', 'add', 'dev', this.primaryDevice(index), 'root', ...qdisc]);
    return qdisc.join(' ');
  }

  async clearImpairment(index: number): Promise<void> {
    await must('tc', ['-n', this.primaryNs, 'qdisc', 'del', 'dev', this.primaryDevice(index), 'root']);
  }

  /** Every server's output so far, for a failed test's report. */
  logs(): string {
    const nodes: [string, SpawnedNode | undefined][] = [['primary', this.primary], ...this.replicas.map((node, index): [string, SpawnedNode | undefined] => [`replica ${index + 1}`, node])];
    return nodes
      .filter(([, node]) => node)
      .map(([label, node]) => `--- ${label} (${node!.child.exitCode !== null || node!.child.signalCode !== null ? `exited ${node!.child.exitCode ?? node!.child.signalCode}` : 'running'})\n${node!.output.join('\n')}`)
      .join('\n');
  }

  private children(): ChildProcess[] {
    return [this.primary, ...this.replicas].filter((node): node is SpawnedNode => node !== undefined).map((node) => node.child);
  }

  /** Stops every server, deletes the namespaces (and with them every veth) and the data. */
  async destroy(): Promise<void> {
    await Promise.all(this.children().map((child) => stopChild(child, 'SIGKILL')));
    for (const ns of [this.primaryNs, ...this.replicaNs]) {
      await run('ip', ['netns', 'del', ns]);
    }
    // Gone with its peer already; deleted here only should the primary's namespace have failed to go.
    const leftover = await run('ip', ['link', 'show', this.rootDevice]);
    if (leftover.code === 0) {
      await run('ip', ['link', 'del', this.rootDevice]);
    }
    await fs.rm(this.dataDir, { recursive: true, force: true });
    live.delete(this);
  }

  /** The last resort, from the process's exit hook: synchronous, best effort. */
  destroySync(): void {
    for (const child of this.children()) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
      }
    }
    for (const ns of [this.primaryNs, ...this.replicaNs]) {
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    }
    spawnSync('ip', ['link', 'del', this.rootDevice], { stdio: 'ignore' });
    live.delete(this);
  }
}

/**
 * Namespaces of this helper's naming left behind by a run that was killed outright
 * (its pid no longer exists): deleted, with the veths inside them.
 */
async function removeStaleNamespaces(): Promise<void> {
  const listed = await run('ip', ['netns', 'list']);
  for (const match of listed.stdout.matchAll(/^(dfs-(\d+)-\d+-(?:p|r\d+))\b/gm)) {
    const pid = Number(match[2]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (error) {
      alive = (error as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) {
      await run('ip', ['netns', 'del', match[1]]);
    }
  }
}

/**
 * A /30 in 198.19.0.0/16 for the root namespace's link that no address of the root
 * namespace is in yet, chosen from the pid so concurrent runs on one host differ.
 * Returned as (third octet << 8) | fourth octet of its network address.
 */
async function freeClientNet(): Promise<number> {
  const used = new Set<number>();
  for (const match of (await must('ip', ['-o', '-4', 'addr', 'show'])).matchAll(/inet 198\.19\.(\d+)\.(\d+)/g)) {
    used.add((Number(match[1]) << 8) | (Number(match[2]) & 0xfc));
  }
  const slots = 1 << 14;
  for (let attempt = 0; attempt < slots; attempt++) {
    const net = ((process.pid + attempt * 7919) % slots) << 2;
    if (!used.has(net)) {
      return net;
    }
  }
  throw new Error('no free /30 left in 198.19.0.0/16');
}
