import { promises as fs } from 'fs';
import { HaCluster } from '../support/ha-cluster';
import { Fault, fullDiskFault, pauseFault } from './nemesis';

/**
 * Faults for two primaries elected through a 3-member etcd and their replicas, on
 * 127.0.0.1: kill -9 of the leader or the standby, the leader paused (past its lease
 * or not), the leader cut off from etcd, an etcd member killed, a replica killed or
 * paused, a full disk on the replica whose data folder is a small tmpfs, and the
 * standby's folder wiped (so the next takeover starts from an empty disk).
 */
export function haFaults(cluster: HaCluster, options: { smallDiskReplica: number | undefined }): Record<string, Fault> {
  const leader = async (): Promise<number> => (await cluster.waitForLeader({ timeoutMs: 30_000 })).index;
  const anyReplica = (random: { int(min: number, max: number): number }): number => random.int(0, cluster.replicaCount - 1);
  return {
    'kill-leader': {
      weight: 4,
      inject: async (_random, hold) => {
        const index = await leader();
        await cluster.killPrimary(index);
        await hold();
        await cluster.startPrimary(index);
        return `primary ${index + 1}`;
      },
    },
    'kill-standby': {
      weight: 1,
      inject: async (_random, hold) => {
        const index = 1 - (await leader());
        await cluster.killPrimary(index);
        await hold();
        await cluster.startPrimary(index);
        return `primary ${index + 1}`;
      },
    },
    'pause-leader': pauseFault(3, async () => {
      const index = await leader();
      return { child: cluster.primaries[index]!.child, label: `primary ${index + 1}` };
    }),
    'cut-leader-from-etcd': {
      weight: 3,
      inject: async (_random, hold) => {
        const index = await leader();
        await cluster.cutFromEtcd(index);
        await hold();
        await cluster.reconnectToEtcd(index);
        return `primary ${index + 1}`;
      },
    },
    'kill-etcd-member': {
      weight: 2,
      inject: async (random, hold) => {
        const member = random.int(0, cluster.etcd.members.length - 1);
        await cluster.etcd.kill(member);
        await hold();
        await cluster.etcd.restart(member);
        return `etcd member ${member + 1}`;
      },
    },
    'kill-replica': {
      weight: 3,
      inject: async (random, hold) => {
        const index = anyReplica(random);
        await cluster.killReplica(index);
        await hold();
        await cluster.startReplica(index);
        return `replica ${index + 1}`;
      },
    },
    'pause-replica': pauseFault(2, async (random) => {
      const index = anyReplica(random);
      return { child: cluster.replicas[index]!.child, label: `replica ${index + 1}` };
    }),
    'full-disk': fullDiskFault(2, options.smallDiskReplica, (index) => cluster.replicaRoot(index)),
    'wipe-standby': {
      weight: 1,
      inject: async () => {
        const index = 1 - (await leader());
        await cluster.killPrimary(index);
        await fs.rm(cluster.primaryRoot(index), { recursive: true, force: true });
        await cluster.startPrimary(index);
        return `primary ${index + 1}`;
      },
    },
  };
}
