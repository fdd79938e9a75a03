import { spawnSync } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import { DfsClient } from '../../server/client/dfs-client';
import type { ClusterStatus } from '../../server/protocol';
import { HaCluster } from '../support/ha-cluster';
import { NetnsCluster, netnsUnavailable, run } from '../support/netns';
import { haFaults } from './ha-faults';
import type { Fault } from './nemesis';
import { netnsFaults } from './netns-faults';

/** What the chaos run needs of a cluster under test, whichever kind it is. */
export interface ChaosTarget {
  describe: string;
  connect(clientId: string): DfsClient;
  faults: Record<string, Fault>;
  /** Asks whoever leads now. */
  status(): Promise<ClusterStatus | undefined>;
  /** Every node whose copies must agree at the end, by label (the leader's disk, not a standby's). */
  roots(): Promise<[string, string][]>;
  logs(): string;
  destroy(): Promise<void>;
}

export const WRITE_QUORUM = 'majority';
const SMALL_DISK = '32m';
const SMALL_DISK_REPLICA = 2;
/**
 * Short timeouts, so a paused or cut-off node costs seconds, not the defaults' minutes,
 * and a free-space reserve that fits the small disk (the default, 64 MiB, is twice it).
 */
const SERVER_ARGS = ['--idle-timeout', '4000', '--header-timeout', '4000', '--sync-interval', '500', '--min-free', String(1024 * 1024)];
const CLIENT_TIMEOUTS = { timeouts: { headerMs: 5_000, idleMs: 5_000, settleMs: 15 }, connectTimeoutMs: 2_000, outcomeWaitMs: 10_000 };

/** Mounts a small tmpfs as a replica's data folder, so the nemesis can fill its disk; false (said why) when it cannot. */
async function mountSmallDisk(root: string, log: (line: string) => void): Promise<boolean> {
  await fs.mkdir(root, { recursive: true });
  const mounted = await run('mount', ['-t', 'tmpfs', '-o', `size=${SMALL_DISK}`, 'tmpfs', root]);
  if (mounted.code !== 0) {
    log(`no full-disk faults: cannot mount a tmpfs on ${root} (${mounted.stderr.trim() || `exit ${mounted.code}`})`);
    return false;
  }
  // Should the run end early, the mount must not outlive it.
  process.once('exit', () => spawnSync('umount', [root], { stdio: 'ignore' }));
  return true;
}

/** One primary and three replicas, each in its own network namespace, as if on its own host. */
export async function netnsTarget(log: (line: string) => void): Promise<ChaosTarget> {
  const why = await netnsUnavailable();
  if (why) {
    throw new Error(`the chaos run needs network namespaces (as root, with iproute2): ${why}`);
  }
  // The servers listen on namespace addresses, so they authenticate as a real cluster would; they inherit it from this process.
  const secret = randomBytes(32).toString('hex');
  process.env.DFS_SECRET = secret;
  const cluster = await NetnsCluster.create(3);
  const smallDisk = (await mountSmallDisk(cluster.replicaRoot(SMALL_DISK_REPLICA), log)) ? SMALL_DISK_REPLICA : undefined;
  const destroy = async (): Promise<void> => {
    await cluster.destroy().catch(() => undefined);
    if (smallDisk !== undefined) {
      await run('umount', [cluster.replicaRoot(smallDisk)]);
    }
  };
  try {
    await Promise.all([0, 1, 2].map((index) => cluster.startReplica(index, SERVER_ARGS)));
    await cluster.startPrimary(WRITE_QUORUM, SERVER_ARGS);
  } catch (error) {
    log(cluster.logs());
    await destroy();
    throw error;
  }
  const connect = (clientId: string): DfsClient => new DfsClient({ host: cluster.primaryAddress, port: 8000, clientId, ...CLIENT_TIMEOUTS, security: { secret: Buffer.from(secret) } });
  return {
    describe: 'one primary and 3 replicas in network namespaces',
    connect,
    faults: netnsFaults(cluster, { writeQuorum: WRITE_QUORUM, serverArgs: SERVER_ARGS, smallDiskReplica: smallDisk }),
    status: () => connect('chaos').status().then((status) => status as ClusterStatus, () => undefined),
    roots: async () => cluster.allRoots().map((root, index): [string, string] => [index === 0 ? 'primary' : `replica ${index}`, root]),
    logs: () => cluster.logs(),
    destroy,
  };
}

/** Two primaries elected through a 3-member etcd, and three replicas, on 127.0.0.1. */
export async function haTarget(log: (line: string) => void, replication: 'fanout' | 'pipeline' = 'fanout'): Promise<ChaosTarget> {
  let smallDisk: number | undefined;
  const cluster = await HaCluster.start(undefined, {
    writeQuorum: WRITE_QUORUM,
    args: [...SERVER_ARGS, '--replication', replication],
    etcdRelays: true,
    beforeStart: async (starting) => {
      smallDisk = (await mountSmallDisk(starting.replicaRoot(SMALL_DISK_REPLICA), log)) ? SMALL_DISK_REPLICA : undefined;
    },
  });
  const connect = (clientId: string): DfsClient => new DfsClient({ primaries: cluster.addresses, clientId, failoverWaitMs: 15_000, ...CLIENT_TIMEOUTS });
  return {
    describe: `two primaries elected through a 3-member etcd, and 3 replicas, ${replication === 'pipeline' ? 'pipeline' : 'fan-out'} replication`,
    connect,
    faults: haFaults(cluster, { smallDiskReplica: smallDisk }),
    status: () => connect('chaos').status().then((status) => status as ClusterStatus, () => undefined),
    roots: async () => {
      const { index } = await cluster.waitForLeader({ timeoutMs: 30_000 });
      return [[`primary ${index + 1} (the leader)`, cluster.primaryRoot(index)], ...[0, 1, 2].map((replica): [string, string] => [`replica ${replica + 1}`, cluster.replicaRoot(replica)])];
    },
    logs: () => cluster.logs(),
    destroy: async () => {
      await cluster.destroy().catch(() => undefined);
      if (smallDisk !== undefined) {
        await run('umount', [cluster.replicaRoot(smallDisk)]);
      }
    },
  };
}
