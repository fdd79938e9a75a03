import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import type { Security } from '../../server/net/security';
import { SpawnedNode, spawnDfs, stopChild } from './processes';
import { freePortRange } from './ports';

export interface ClusterOptions {
  replicas?: number;
  writeQuorum?: string;
  dataDir?: string;
  /** Extra flags for every process (timeouts, limits). */
  args?: string[];
  primaryArgs?: string[];
  /** Start only these replica indexes (0-based); the others stay down. */
  startReplicas?: number[];
  /** Environment for every server process (DFS_SECRET, for example). */
  env?: NodeJS.ProcessEnv;
  /** How test clients connect: the secret and TLS files they present. */
  clientSecurity?: Security;
  /** A command every server is exec'd through (`bash -c 'ulimit -n 256 && exec "$0" "$@"'`). */
  launcher?: string[];
}

/** A real cluster of separate processes on 127.0.0.1 with free ports, for one test. */
export class TestCluster {
  primary!: SpawnedNode;
  readonly replicas: (SpawnedNode | undefined)[] = [];

  private constructor(
    readonly dataDir: string,
    readonly basePort: number,
    readonly replicaCount: number,
    private readonly options: ClusterOptions,
  ) {}

  static async start(options: ClusterOptions = {}): Promise<TestCluster> {
    const replicaCount = options.replicas ?? 3;
    const dataDir = options.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-test-')));
    const basePort = await freePortRange(replicaCount);
    const cluster = new TestCluster(dataDir, basePort, replicaCount, options);
    const indexes = options.startReplicas ?? Array.from({ length: replicaCount }, (_, index) => index);
    await Promise.all(indexes.map((index) => cluster.startReplica(index)));
    await cluster.startPrimary();
    return cluster;
  }

  get primaryPort(): number {
    return this.primary.port;
  }

  get address(): string {
    return `127.0.0.1:${this.primary.port}`;
  }

  private commonArgs(): string[] {
    return ['--host', '127.0.0.1', '--base-port', String(this.basePort), '--replicas', String(this.replicaCount), '--data-dir', this.dataDir, ...(this.options.args ?? [])];
  }

  async startPrimary(port = 0): Promise<SpawnedNode> {
    const args = ['primary', '--port', String(port), ...this.commonArgs(), ...(this.options.primaryArgs ?? [])];
    if (this.options.writeQuorum) {
      args.push('--write-quorum', this.options.writeQuorum);
    }
    this.primary = await spawnDfs(args, { env: this.options.env, launcher: this.options.launcher });
    return this.primary;
  }

  /** Starts replica `index` (0-based); `extraArgs` apply to this replica only (later flags win). */
  async startReplica(index: number, extraArgs: string[] = []): Promise<SpawnedNode> {
    const node = await spawnDfs(['replica', '--port', String(this.basePort + index), ...this.commonArgs(), ...extraArgs], { env: this.options.env, launcher: this.options.launcher });
    this.replicas[index] = node;
    return node;
  }

  async killReplica(index: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const node = this.replicas[index];
    if (node) {
      await stopChild(node.child, signal);
      this.replicas[index] = undefined;
    }
  }

  /** Restarts the primary on the same port. */
  async restartPrimary(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const port = this.primary.port;
    await stopChild(this.primary.child, signal);
    await this.startPrimary(port);
  }

  client(clientId = 'tester', security: Security | undefined = this.options.clientSecurity): DfsClient {
    return new DfsClient({ host: '127.0.0.1', port: this.primary.port, clientId, security });
  }

  primaryRoot(): string {
    return path.join(this.dataDir, 'servidor');
  }

  replicaRoot(index: number): string {
    return path.join(this.dataDir, `replica${index + 1}`);
  }

  allRoots(): string[] {
    return [this.primaryRoot(), ...Array.from({ length: this.replicaCount }, (_, index) => this.replicaRoot(index))];
  }

  async stop(): Promise<void> {
    await Promise.all([this.primary?.child, ...this.replicas.map((node) => node?.child)].filter((child) => child).map((child) => stopChild(child!, 'SIGKILL')));
  }

  async destroy(): Promise<void> {
    await this.stop();
    await fs.rm(this.dataDir, { recursive: true, force: true });
  }
}

/** Every file under a node's root, relative paths, the node's own `.dfs` state excluded. */
export async function storedFiles(root: string): Promise<string[]> {
  const result: string[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (prefix === '' && entry.name === '.dfs') {
        continue;
      }
      const rel = prefix + entry.name;
      if (entry.isDirectory()) {
        await walk(path.join(dir, entry.name), rel + '/');
      } else {
        result.push(rel);
      }
    }
  };
  await walk(root, '');
  return result.sort();
}

/** Everything under `<root>/.dfs/tmp`: staged bytes that must not outlive a failed transfer. */
export async function stagedFiles(root: string): Promise<string[]> {
  try {
    return await fs.readdir(path.join(root, '.dfs', 'tmp'));
  } catch {
    return [];
  }
}

/** Bytes currently staged under `<root>/.dfs/tmp`. */
export async function stagedSize(root: string): Promise<number> {
  let total = 0;
  for (const name of await stagedFiles(root)) {
    total += (await fs.stat(path.join(root, '.dfs', 'tmp', name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
