import { randomBytes } from 'crypto';
import { CpuMeter, CpuReport, mergeCpu } from './cpu-usage';
import type { BenchCluster } from './launcher';
import { elapsedMs, quantile } from './stats';

export interface SmallFilesRun {
  clients: number;
  files: number;
  seconds: number;
  filesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpu: CpuReport;
}

interface Batch {
  seconds: number;
  latencies: number[];
  cpu: CpuReport;
}

/**
 * `count` uploads of `size` incompressible bytes spread over `clients` concurrent
 * clients (each its own client id and its own connections, as separate users would
 * be), each through DfsClient.upload from memory, so the figure is the store's and
 * not the bench's local disk. Latency is one upload: connect to UPLOAD_SUCCESS.
 */
async function uploadBatch(cluster: BenchCluster, options: { count: number; size: number; clients: number; clientPrefix: string; firstFile: number }): Promise<Batch> {
  const bodies = Array.from({ length: Math.min(options.count, 64) }, () => randomBytes(options.size));
  const latencies: number[] = [];
  let next = 0;
  const worker = async (index: number): Promise<void> => {
    const client = cluster.client(`${options.clientPrefix}-${index}`);
    for (let file = next++; file < options.count; file = next++) {
      const body = bodies[file % bodies.length];
      const started = process.hrtime.bigint();
      await client.upload(`f${String(options.firstFile + file).padStart(6, '0')}.bin`, [body], body.length);
      latencies.push(elapsedMs(started));
    }
  };
  const meter = new CpuMeter(Object.fromEntries(cluster.all.map((node) => [node.role, node.pid])));
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: options.clients }, (_, index) => worker(index)));
  return { seconds: elapsedMs(started) / 1000, latencies, cpu: meter.stop() };
}

function summarise(clients: number, batches: Batch[]): SmallFilesRun {
  const latencies = batches.flatMap((batch) => batch.latencies);
  const seconds = batches.reduce((sum, batch) => sum + batch.seconds, 0);
  return {
    clients,
    files: latencies.length,
    seconds,
    filesPerSecond: latencies.length / seconds,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    cpu: mergeCpu(batches.map((batch) => batch.cpu)),
  };
}

/**
 * `count` files from 1 client and `count` from `concurrency` clients, in `slices`
 * alternating slices (1 client, then many, then 1 client...), so that a change in the
 * machine's load during the run weighs on both sides of the ratio alike.
 */
export async function measureSmallFiles(
  cluster: BenchCluster,
  options: { count: number; size: number; concurrency: number; slices: number },
): Promise<{ one: SmallFilesRun; many: SmallFilesRun }> {
  const one: Batch[] = [];
  const many: Batch[] = [];
  const slices = Math.max(1, Math.min(options.slices, options.count));
  let done = 0;
  for (let slice = 0; slice < slices; slice++) {
    const count = Math.round(((slice + 1) * options.count) / slices) - done;
    one.push(await uploadBatch(cluster, { count, size: options.size, clients: 1, clientPrefix: 'single', firstFile: done }));
    many.push(await uploadBatch(cluster, { count, size: options.size, clients: options.concurrency, clientPrefix: 'many', firstFile: done }));
    done += count;
  }
  return { one: summarise(1, one), many: summarise(options.concurrency, many) };
}

/** Untimed uploads that warm the code paths of every process. */
export async function warmUp(cluster: BenchCluster, size: number): Promise<void> {
  await uploadBatch(cluster, { count: 20, size, clients: 4, clientPrefix: 'warmup', firstFile: 0 });
}
