import { promises as fs } from 'fs';
import * as path from 'path';
import { NetnsCluster } from '../support/netns';
import { stopChild } from '../support/processes';
import { Fault, fullDiskFault, pauseFault } from './nemesis';

/**
 * Faults for one primary and its replicas, each in its own network namespace: kill -9
 * and restart of any node, SIGSTOP/SIGCONT of any node, a replica's link cut, a full
 * disk on the replica whose data folder is a small tmpfs, the primary's folder wiped,
 * or replaced by an old copy of it.
 */
export function netnsFaults(cluster: NetnsCluster, options: { writeQuorum: string; serverArgs: string[]; smallDiskReplica: number | undefined }): Record<string, Fault> {
  const primaryCopy = path.join(cluster.dataDir, 'chaos-primary-copy');
  let haveCopy = false;
  const startPrimary = (): Promise<unknown> => cluster.startPrimary(options.writeQuorum, options.serverArgs);
  const anyReplica = (random: { int(min: number, max: number): number }): number => random.int(0, cluster.replicaCount - 1);
  return {
    'kill-replica': {
      weight: 4,
      inject: async (random, hold) => {
        const index = anyReplica(random);
        await stopChild(cluster.replicas[index]!.child, 'SIGKILL');
        await hold();
        await cluster.startReplica(index, options.serverArgs);
        return `replica ${index + 1}`;
      },
    },
    'kill-primary': {
      weight: 3,
      inject: async (random, hold) => {
        await cluster.stopPrimary();
        if (random.next() < 0.5) {
          // A copy of a stopped primary's folder is what a restored backup would be.
          await fs.rm(primaryCopy, { recursive: true, force: true });
          await fs.cp(cluster.primaryRoot(), primaryCopy, { recursive: true });
          haveCopy = true;
        }
        await hold();
        await startPrimary();
        return 'primary';
      },
    },
    'pause-replica': pauseFault(2, async (random) => {
      const index = anyReplica(random);
      return { child: cluster.replicas[index]!.child, label: `replica ${index + 1}` };
    }),
    'pause-primary': pauseFault(2, async () => ({ child: cluster.primary!.child, label: 'primary' })),
    'cut-link': {
      weight: 3,
      inject: async (random, hold) => {
        const index = anyReplica(random);
        await cluster.cutLink(index);
        await hold();
        await cluster.restoreLink(index);
        return `link to replica ${index + 1}`;
      },
    },
    'full-disk': fullDiskFault(2, options.smallDiskReplica, (index) => cluster.replicaRoot(index)),
    'wipe-primary': {
      weight: 1,
      inject: async () => {
        await cluster.stopPrimary();
        await fs.rm(cluster.primaryRoot(), { recursive: true, force: true });
        await startPrimary();
        return 'primary';
      },
    },
    'old-primary': {
      weight: 1,
      available: () => haveCopy,
      inject: async () => {
        await cluster.stopPrimary();
        await fs.rm(cluster.primaryRoot(), { recursive: true, force: true });
        await fs.cp(primaryCopy, cluster.primaryRoot(), { recursive: true });
        await startPrimary();
        return 'primary (old copy of its folder)';
      },
    },
  };
}
