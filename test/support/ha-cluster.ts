import type { Context } from 'mocha';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import { PrimaryAddresses } from '../../server/client/primary-addresses';
import type { Security } from '../../server/net/security';
import type { ClusterStatus } from '../../server/protocol';
import { EtcdCluster, etcdMissingReason, startEtcdClusterOrSkip } from './etcd-cluster';
import { IsolatedHost } from './isolated-host';
import { netnsUnavailable } from './netns';
import { freePortRange } from './ports';
import { SpawnedNode, spawnDfs, stopChild } from './processes';
import { TcpRelay } from './tcp-relay';
import { waitFor } from './wait';

export interface HaClusterOptions {
  writeQuorum?: string;
  primaries?: number;
  replicas?: number;
  /** Extra flags for every server. */
  args?: string[];
  /** Each primary reaches etcd through relays of its own, so a test can cut one primary off from etcd alone. */
  etcdRelays?: boolean;
  /** Runs once the data folder exists and before any server starts (to mount a small disk, say). */
  beforeStart?: (cluster: HaCluster) => Promise<void>;
  /**
   * Runs this primary on a host of its own (a network namespace), so a test can cut
   * that host off from etcd alone. Every server then listens beyond loopback, with a
   * cluster secret.
   */
  isolate?: number;
}

/**
 * A real failover cluster on 127.0.0.1 with free ports: a 3-member etcd, two (or more)
 * primaries with their own data folders, and the replicas they share.
 */
export class HaCluster {
  readonly primaries: (SpawnedNode | undefined)[] = [];
  readonly replicas: (SpawnedNode | undefined)[] = [];
  /** Shared by every client of this cluster, so they all remember who leads. */
  readonly addresses: PrimaryAddresses;
  /** Per primary, one relay per etcd member (with etcdRelays). */
  private readonly relays: (TcpRelay & { url(): string })[][] = [];
  /** With `isolate`, the secret every server and client holds. */
  private readonly secret = randomBytes(32).toString('hex');

  private constructor(
    readonly etcd: EtcdCluster,
    readonly dataDir: string,
    readonly primaryPorts: number[],
    readonly basePort: number,
    readonly replicaCount: number,
    private readonly options: HaClusterOptions,
    /** The isolated primary's own host (with `isolate`). */
    readonly host: IsolatedHost | undefined,
  ) {
    this.addresses = new PrimaryAddresses(primaryPorts.map((port, index) => ({ host: this.hostOf(index), port })));
  }

  /** Where primary `index` listens. */
  hostOf(index: number): string {
    return !this.host ? '127.0.0.1' : index === this.options.isolate ? this.host.hostAddress : this.host.serviceAddress;
  }

  private get replicaHost(): string {
    return this.host?.serviceAddress ?? '127.0.0.1';
  }

  private get security(): Security | undefined {
    return this.host ? { secret: Buffer.from(this.secret) } : undefined;
  }

  /** Within a mocha test, a missing etcd skips it with the reason; elsewhere (the chaos run) it is an error. */
  static async start(context: Context | undefined, options: HaClusterOptions = {}): Promise<HaCluster> {
    const missing = context ? undefined : etcdMissingReason();
    if (missing) {
      throw new Error(missing);
    }
    let host: IsolatedHost | undefined;
    if (options.isolate !== undefined) {
      const why = await netnsUnavailable();
      if (why) {
        if (!context) {
          throw new Error(why);
        }
        console.log(`      skipped: ${why}`);
        context.skip();
      }
      host = await IsolatedHost.create();
    }
    const etcdOptions = { alsoListenOn: host?.etcdAddress };
    const etcd = context ? await startEtcdClusterOrSkip(context, etcdOptions) : await EtcdCluster.start(etcdOptions);
    const primaryCount = options.primaries ?? 2;
    const replicaCount = options.replicas ?? 3;
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ha-'));
    const ports = await freePortRange(primaryCount + replicaCount);
    const primaryPorts = Array.from({ length: primaryCount }, (_, index) => ports + replicaCount + index);
    const cluster = new HaCluster(etcd, dataDir, primaryPorts, ports, replicaCount, options, host);
    try {
      await options.beforeStart?.(cluster);
      if (options.etcdRelays) {
        for (let index = 0; index < primaryCount; index++) {
          cluster.relays[index] = await Promise.all(etcd.endpoints().map((url) => TcpRelay.to(url)));
        }
      }
      await Promise.all(Array.from({ length: replicaCount }, (_, index) => cluster.startReplica(index)));
      // One after the other, so the first one started leads.
      for (let index = 0; index < primaryCount; index++) {
        await cluster.startPrimary(index);
        if (index === 0) {
          await cluster.waitForLeader();
        }
      }
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  get serverList(): string {
    return this.primaryPorts.map((port, index) => `${this.hostOf(index)}:${port}`).join(',');
  }

  etcdEndpoints(index: number): string[] {
    if (this.host && index === this.options.isolate) {
      return this.etcd.endpointsOn(this.host.etcdAddress);
    }
    return this.relays[index]?.map((relay) => relay.url()) ?? this.etcd.endpoints();
  }

  /** Primary `index` can no longer reach any etcd member (its packets vanish); the rest of the network is untouched. */
  async cutFromEtcd(index: number): Promise<void> {
    if (this.host && index === this.options.isolate) {
      await this.host.cutFrom(this.host.etcdAddress);
    } else {
      this.relays[index].forEach((relay) => relay.cut());
    }
  }

  async reconnectToEtcd(index: number): Promise<void> {
    if (this.host && index === this.options.isolate) {
      await this.host.reconnectTo(this.host.etcdAddress);
    } else {
      this.relays[index].forEach((relay) => relay.restore());
    }
  }

  async startPrimary(index: number): Promise<SpawnedNode> {
    const replicas = this.host
      ? Array.from({ length: this.replicaCount }, (_, replica) => ['--replica', `${this.replicaHost}:${this.basePort + replica}`]).flat()
      : ['--base-port', String(this.basePort), '--replicas', String(this.replicaCount)];
    const node = await spawnDfs([
      'primary',
      '--host',
      this.hostOf(index),
      '--port',
      String(this.primaryPorts[index]),
      ...replicas,
      '--data-dir',
      this.primaryDataDir(index),
      '--write-quorum',
      this.options.writeQuorum ?? 'majority',
      '--etcd',
      this.etcdEndpoints(index).join(','),
      '--sync-interval',
      '300',
      ...(this.options.args ?? []),
    ], { env: this.serverEnv(), launcher: this.host && index === this.options.isolate ? this.host.launcher : undefined });
    this.primaries[index] = node;
    return node;
  }

  async startReplica(index: number): Promise<SpawnedNode> {
    const node = await spawnDfs([
      'replica',
      '--host',
      this.replicaHost,
      '--port',
      String(this.basePort + index),
      '--base-port',
      String(this.basePort),
      '--replicas',
      String(this.replicaCount),
      '--data-dir',
      path.join(this.dataDir, 'replicas'),
      ...(this.options.args ?? []),
    ], { env: this.serverEnv() });
    this.replicas[index] = node;
    return node;
  }

  private serverEnv(): NodeJS.ProcessEnv | undefined {
    return this.host ? { DFS_SECRET: this.secret } : undefined;
  }

  /** A client of replica `index` directly. */
  replicaClient(index: number, clientId: string): DfsClient {
    return new DfsClient({ host: this.replicaHost, port: this.basePort + index, clientId, security: this.security });
  }

  async killPrimary(index: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const node = this.primaries[index];
    this.primaries[index] = undefined;
    if (node) {
      await stopChild(node.child, signal);
    }
  }

  async killReplica(index: number): Promise<void> {
    const node = this.replicas[index];
    this.replicas[index] = undefined;
    if (node) {
      await stopChild(node.child, 'SIGKILL');
    }
  }

  primaryDataDir(index: number): string {
    return path.join(this.dataDir, `primary${index + 1}`);
  }

  primaryRoot(index: number): string {
    return path.join(this.primaryDataDir(index), 'servidor');
  }

  replicaRoot(index: number): string {
    return path.join(this.dataDir, 'replicas', `replica${index + 1}`);
  }

  /** A client of the whole cluster: it finds the leader and follows a failover. */
  client(clientId: string, failoverWaitMs = 15_000): DfsClient {
    return new DfsClient({ primaries: this.addresses, clientId, failoverWaitMs, outcomeWaitMs: 20_000, security: this.security });
  }

  /** A client of one primary only, whatever its role. */
  clientOf(index: number, clientId: string): DfsClient {
    return new DfsClient({ host: this.hostOf(index), port: this.primaryPorts[index], clientId, security: this.security });
  }

  /** Waits until a primary leads and serves (recovery and takeover done); returns its index. */
  async waitForLeader(options: { not?: number; timeoutMs?: number } = {}): Promise<{ index: number; status: ClusterStatus }> {
    return waitFor(
      async () => {
        for (let index = 0; index < this.primaryPorts.length; index++) {
          if (!this.primaries[index] || index === options.not) {
            continue;
          }
          const status = (await this.clientOf(index, 'probe').status().catch(() => undefined)) as ClusterStatus | undefined;
          if (status?.role === 'primary' && status.leader === `${this.hostOf(index)}:${this.primaryPorts[index]}` && status.recovering === undefined) {
            return { index, status };
          }
        }
        return undefined;
      },
      options.not === undefined ? 'a primary to lead' : `a primary other than primary ${options.not + 1} to lead`,
      options.timeoutMs ?? 20_000,
    );
  }

  /**
   * Waits until the leader sees every running replica reachable, nothing behind, and
   * synced after `since` (a replica the test stopped is not waited for).
   */
  async waitForReplicasCaughtUp(leader: number, since: number): Promise<void> {
    await waitFor(
      async () => {
        const status = (await this.clientOf(leader, 'probe').status().catch(() => undefined)) as ClusterStatus | undefined;
        return status?.replicas.every((replica) => !this.replicas[replica.id - 1] || (replica.reachable && replica.filesBehind === 0 && (replica.lastSyncMs ?? 0) > since));
      },
      'the replicas to catch up',
      30_000,
    );
  }

  logs(): string {
    const nodes: [string, SpawnedNode | undefined][] = [
      ...this.primaries.map((node, index): [string, SpawnedNode | undefined] => [`primary ${index + 1}`, node]),
      ...this.replicas.map((node, index): [string, SpawnedNode | undefined] => [`replica ${index + 1}`, node]),
    ];
    return nodes
      .filter(([, node]) => node)
      .map(([label, node]) => `--- ${label}\n${node!.output.slice(-60).join('\n')}`)
      .join('\n');
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.primaries, ...this.replicas].filter((node): node is SpawnedNode => node !== undefined).map((node) => stopChild(node.child, 'SIGKILL')));
    this.relays.flat().forEach((relay) => relay.close());
    await this.etcd.destroy();
    await this.host?.destroy();
    await fs.rm(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * For a suite whose tests each start a cluster of their own: `start` it inside the test
 * (without etcd the test is skipped, saying why); after each test it is destroyed, its
 * servers' last lines printed first when the test failed.
 */
export function haClusterPerTest(): { start(context: Context, options?: HaClusterOptions): Promise<HaCluster> } {
  let cluster: HaCluster | undefined;
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && cluster) {
      console.log(cluster.logs());
    }
    await cluster?.destroy();
    cluster = undefined;
  });
  return {
    start: async (context, options) => {
      cluster = await HaCluster.start(context, options);
      return cluster;
    },
  };
}
