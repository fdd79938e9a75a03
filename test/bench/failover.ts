import { ChildProcess } from 'child_process';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import { PrimaryAddresses } from '../../server/client/primary-addresses';
import { etcdUnavailable, startLocalEtcd } from '../../server/ha/local-etcd';
import type { ClusterStatus } from '../../server/protocol';
import { freePortRange } from '../support/ports';
import { ServerProcess, startServer, stopServer } from './launcher';

export interface FailoverRun {
  rounds: number;
  leaseTtlSeconds: number;
  /** kill -9 of the leader to the first upload acknowledged through the new one, per round. */
  samplesMs: number[];
  p50Ms: number;
  maxMs: number;
}

const LEASE_TTL_SECONDS = 2;

/**
 * Two primaries elected through a local etcd share three replicas; each round kills
 * the leader with SIGKILL and times how long until an upload from a client given both
 * addresses is acknowledged again, then starts the killed primary again as the standby.
 */
export async function measureFailover(scratch: string, rounds: number, log: (line: string) => void): Promise<FailoverRun> {
  const missing = etcdUnavailable();
  if (missing) {
    throw new Error(missing);
  }
  const dataDir = path.join(scratch, 'cluster-failover');
  const ports = await freePortRange(7);
  const etcd = await startLocalEtcd(path.join(dataDir, 'etcd'), ports + 5, ports + 6);
  const replicaPorts = [ports, ports + 1, ports + 2];
  const primaryPorts = [ports + 3, ports + 4];
  const common = ['--host', '127.0.0.1', '--base-port', String(ports), '--replicas', '3'];
  const replicas: ServerProcess[] = [];
  const primaries: (ServerProcess | undefined)[] = [undefined, undefined];
  const startPrimary = async (index: number): Promise<void> => {
    primaries[index] = await startServer(
      `primary${index + 1}`,
      ['primary', '--port', String(primaryPorts[index]), ...common, '--data-dir', path.join(dataDir, `primary${index + 1}`), '--write-quorum', 'majority', '--etcd', etcd.clientUrl, '--lease-ttl', String(LEASE_TTL_SECONDS)],
      { dataDir },
    );
  };
  const statusOf = (index: number): Promise<ClusterStatus | undefined> =>
    new DfsClient({ host: '127.0.0.1', port: primaryPorts[index], clientId: 'bench' })
      .status()
      .then((status) => status as ClusterStatus)
      .catch(() => undefined);
  const leaderIndex = async (): Promise<number> => {
    for (;;) {
      for (const index of [0, 1]) {
        const status = await statusOf(index);
        if (primaries[index] && status?.leader === `127.0.0.1:${primaryPorts[index]}` && status.recovering === undefined) {
          return index;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  try {
    for (const [index, port] of replicaPorts.entries()) {
      replicas.push(await startServer(`replica${index + 1}`, ['replica', '--port', String(port), ...common, '--data-dir', path.join(dataDir, 'replicas')], { dataDir }));
    }
    await startPrimary(0);
    await leaderIndex();
    await startPrimary(1);
    const client = new DfsClient({ primaries: new PrimaryAddresses(primaryPorts.map((port) => ({ host: '127.0.0.1', port }))), clientId: 'bench', failoverWaitMs: 30_000 });
    const body = Buffer.alloc(4096, 'failover');
    await client.upload('warm-up', [body], body.length);
    const samplesMs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const leader = await leaderIndex();
      // The standby must know who leads before the kill, as it would in steady state.
      for (;;) {
        const status = await statusOf(1 - leader);
        if (status?.leader === `127.0.0.1:${primaryPorts[leader]}`) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const killedAt = performance.now();
      await killNow(primaries[leader]!.child);
      primaries[leader] = undefined;
      await client.upload(`after-kill-${round}`, [body], body.length);
      const tookMs = performance.now() - killedAt;
      samplesMs.push(tookMs);
      log(`  round ${round + 1}: ${(tookMs / 1000).toFixed(2)} s`);
      await startPrimary(leader);
    }
    const sorted = [...samplesMs].sort((a, b) => a - b);
    return { rounds, leaseTtlSeconds: LEASE_TTL_SECONDS, samplesMs, p50Ms: sorted[Math.floor((sorted.length - 1) / 2)], maxMs: sorted[sorted.length - 1] };
  } finally {
    await Promise.all([...primaries, ...replicas].filter((node): node is ServerProcess => node !== undefined).map((node) => stopServer(node.child)));
    await stopServer(etcd.child);
  }
}

function killNow(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
