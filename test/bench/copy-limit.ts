import { promises as fs } from 'fs';
import * as path from 'path';
import { CpuMeter, CpuReport } from './cpu-usage';
import { DurableFile } from './durable-file';
import { readChunks } from './source-file';
import { settleDisk } from './settle';

export interface Throughput {
  bytes: number;
  seconds: number;
  /** 10^6 bytes per second. */
  mbps: number;
  /** Where the CPU went meanwhile (counters, not part of the figure). */
  cpu?: CpuReport;
}

export function throughput(bytes: number, seconds: number): Throughput {
  return { bytes, seconds, mbps: bytes / 1e6 / seconds };
}

/**
 * The copy limit: the same bytes the cluster stores, written by one process into
 * `copies` files on the same disk with DiskStore's durability, in parallel, chunk by
 * chunk. Each `copies` root stands for one node's root (the primary's and each
 * replica's), so the folders, renames and fsyncs match the cluster's.
 */
export async function measureCopyLimit(source: string, scratch: string, copies: number, chunk: number): Promise<Throughput> {
  const roots = Array.from({ length: copies }, (_, index) => path.join(scratch, `node${index}`));
  await Promise.all(roots.map((root) => fs.mkdir(path.join(root, '.dfs', 'tmp'), { recursive: true })));
  await settleDisk();
  const meter = new CpuMeter({});
  const started = process.hrtime.bigint();
  const files = await Promise.all(roots.map((root) => DurableFile.create(root, 'bench', 'copy.bin')));
  let bytes = 0;
  for await (const piece of readChunks(source, chunk)) {
    await Promise.all(files.map((file) => file.write(piece)));
    bytes += piece.length;
  }
  await Promise.all(files.map((file) => file.commit()));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = meter.stop();
  await fs.rm(scratch, { recursive: true, force: true });
  await settleDisk();
  return { ...throughput(bytes, seconds), cpu };
}
