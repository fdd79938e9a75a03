import { randomBytes } from 'crypto';
import type { BenchCluster } from './launcher';
import { elapsedMs, quantile } from './stats';

export interface SmallFilesRun {
  clients: number;
  files: number;
  seconds: number;
  filesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * `count` uploads of `size` incompressible bytes spread over `clients` concurrent
 * clients (each its own client id and its own connections, as separate users would
 * be), each through DfsClient.upload from memory, so the figure is the store's and
 * not the bench's local disk. Latency is one upload: connect to UPLOAD_SUCCESS.
 */
export async function uploadSmallFiles(cluster: BenchCluster, options: { count: number; size: number; clients: number; clientPrefix: string }): Promise<SmallFilesRun> {
  const bodies = Array.from({ length: Math.min(options.count, 64) }, () => randomBytes(options.size));
  const latencies: number[] = [];
  let next = 0;
  const worker = async (index: number): Promise<void> => {
    const client = cluster.client(`${options.clientPrefix}-${index}`);
    for (let file = next++; file < options.count; file = next++) {
      const body = bodies[file % bodies.length];
      const started = process.hrtime.bigint();
      await client.upload(`f${String(file).padStart(6, '0')}.bin`, [body], body.length);
      latencies.push(elapsedMs(started));
    }
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: options.clients }, (_, index) => worker(index)));
  const seconds = elapsedMs(started) / 1000;
  return {
    clients: options.clients,
    files: options.count,
    seconds,
    filesPerSecond: options.count / seconds,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
  };
}
