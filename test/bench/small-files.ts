import { randomBytes } from 'crypto';
import { CpuMeter, CpuReport, mergeCpu } from './cpu-usage';
import type { BenchCluster } from './launcher';
import { elapsedMs, quantile } from './stats';

export interface SmallFilesRun {
  clients: number;
  /** Copies stored of every file. */
  copies: number;
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

/** One client's way of storing a small file, on DFS or on a baseline. */
interface SmallFileClient {
  upload(name: string, body: Buffer): Promise<void>;
  close(): void;
}

/** What the small-file batches upload to: its processes (for CPU) and a client per simulated user. */
export interface SmallFileTarget {
  copies: number;
  processes: Record<string, number>;
  client(clientId: string): Promise<SmallFileClient>;
}

/** DFS: every upload through DfsClient.upload from memory, as the CLI and the extension do. */
export function dfsTarget(cluster: BenchCluster): SmallFileTarget {
  return {
    copies: cluster.all.length,
    processes: Object.fromEntries(cluster.all.map((node) => [node.role, node.pid])),
    client: async (clientId) => {
      const client = cluster.client(clientId);
      return {
        upload: async (name, body) => {
          const receipt = await client.upload(name, [body], body.length);
          if (receipt.copies !== cluster.all.length) {
            throw new Error(`${name}: ${receipt.copies} copies stored, expected ${cluster.all.length}`);
          }
        },
        close: () => undefined,
      };
    },
  };
}

/**
 * `count` uploads of `size` incompressible bytes spread over `clients` concurrent
 * clients (each its own client id and its own connections, as separate users would
 * be), each from memory, so the figure is the store's and not the bench's local
 * disk. Latency is one upload: the call to its acknowledgement.
 */
async function uploadBatch(target: SmallFileTarget, options: { count: number; size: number; clients: number; clientPrefix: string; firstFile: number }): Promise<Batch> {
  const bodies = Array.from({ length: Math.min(options.count, 64) }, () => randomBytes(options.size));
  const latencies: number[] = [];
  let next = 0;
  const clients = await Promise.all(Array.from({ length: options.clients }, (_, index) => target.client(`${options.clientPrefix}-${index}`)));
  const worker = async (client: SmallFileClient): Promise<void> => {
    for (let file = next++; file < options.count; file = next++) {
      const body = bodies[file % bodies.length];
      const started = process.hrtime.bigint();
      await client.upload(`f${String(options.firstFile + file).padStart(6, '0')}.bin`, body);
      latencies.push(elapsedMs(started));
    }
  };
  try {
    const meter = new CpuMeter(target.processes);
    const started = process.hrtime.bigint();
    await Promise.all(clients.map(worker));
    return { seconds: elapsedMs(started) / 1000, latencies, cpu: meter.stop() };
  } finally {
    clients.forEach((client) => client.close());
  }
}

function summarise(clients: number, copies: number, batches: Batch[]): SmallFilesRun {
  const latencies = batches.flatMap((batch) => batch.latencies);
  const seconds = batches.reduce((sum, batch) => sum + batch.seconds, 0);
  return {
    clients,
    copies,
    files: latencies.length,
    seconds,
    filesPerSecond: latencies.length / seconds,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    cpu: mergeCpu(batches.map((batch) => batch.cpu)),
  };
}

/** The small-file runs of one bench run; the baselines are there when they were given. */
export interface SmallFilesRuns {
  one: SmallFilesRun;
  many: SmallFilesRun;
  /** The minimal per-file-fsync server, `concurrency` clients. */
  perFile?: SmallFilesRun;
  /** The minimal server with group commit, `concurrency` clients (a reference). */
  groupCommit?: SmallFilesRun;
}

/**
 * `count` files from 1 client and `count` from `concurrency` clients, on DFS and on
 * each baseline, in `slices` alternating slices (DFS 1 client, DFS many, each
 * baseline many, then again...), so that a change in the machine's load during the
 * run weighs on every side of the ratios alike.
 */
export async function measureSmallFiles(
  dfs: SmallFileTarget,
  baselines: { perFile?: SmallFileTarget; groupCommit?: SmallFileTarget },
  options: { count: number; size: number; concurrency: number; slices: number },
): Promise<SmallFilesRuns> {
  const sides: { key: keyof SmallFilesRuns; target: SmallFileTarget; clients: number; prefix: string }[] = [
    { key: 'one', target: dfs, clients: 1, prefix: 'single' },
    { key: 'many', target: dfs, clients: options.concurrency, prefix: 'many' },
  ];
  if (baselines.perFile) sides.push({ key: 'perFile', target: baselines.perFile, clients: options.concurrency, prefix: 'many' });
  if (baselines.groupCommit) sides.push({ key: 'groupCommit', target: baselines.groupCommit, clients: options.concurrency, prefix: 'many' });
  const batches = new Map<keyof SmallFilesRuns, Batch[]>(sides.map((side) => [side.key, []]));
  const slices = Math.max(1, Math.min(options.slices, options.count));
  let done = 0;
  for (let slice = 0; slice < slices; slice++) {
    const count = Math.round(((slice + 1) * options.count) / slices) - done;
    for (const side of sides) {
      batches.get(side.key)!.push(await uploadBatch(side.target, { count, size: options.size, clients: side.clients, clientPrefix: side.prefix, firstFile: done }));
    }
    done += count;
  }
  const runs: Partial<SmallFilesRuns> = {};
  for (const side of sides) {
    runs[side.key] = summarise(side.clients, side.target.copies, batches.get(side.key)!);
  }
  return runs as SmallFilesRuns;
}

export const WARM_UP_FILES = 20;

/** Untimed uploads that warm the code paths of every process. */
export async function warmUp(target: SmallFileTarget, size: number): Promise<void> {
  await uploadBatch(target, { count: WARM_UP_FILES, size, clients: 4, clientPrefix: 'warmup', firstFile: 0 });
}

/** CPU milliseconds per upload, by process and in total (the bench process is the clients'). */
export function cpuPerUpload(run: SmallFilesRun): { processes: Record<string, number>; totalMs: number } {
  const perUpload = (seconds: number): number => Math.round((seconds * 1e5) / run.files) / 100;
  const processes = Object.fromEntries(Object.entries(run.cpu.processes).map(([role, seconds]) => [role, perUpload(seconds)]));
  const total = Object.values(run.cpu.processes).reduce((sum, seconds) => sum + seconds, 0);
  return { processes, totalMs: perUpload(total) };
}
