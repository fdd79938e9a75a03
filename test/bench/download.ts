import * as path from 'path';
import { Writable } from 'stream';
import { throughput, Throughput } from './copy-limit';
import { CpuMeter } from './cpu-usage';
import { BenchCluster } from './launcher';
import { settleDisk } from './settle';

export interface DownloadRun {
  sizeBytes: number;
  /** From the call to the first byte handed to the sink: the best of the rounds. */
  firstByteMs: number;
  /** The whole file through DfsClient.download (verified), into a sink that keeps nothing: the best of the rounds. */
  download: Throughput;
  rounds: number;
}

/**
 * Downloads of a file stored with 3 replicas, from the primary, each timed to its
 * first byte and to its last. The upload before is not timed; the sink discards the
 * bytes, so the figure is the cluster's and the client's, not a disk's.
 */
export async function measureDownload(source: string, scratch: string, rounds: number, log: (line: string) => void): Promise<DownloadRun> {
  const cluster = await BenchCluster.start({ replicas: 3, dataDir: path.join(scratch, 'cluster-download') });
  try {
    const client = cluster.client('bench');
    const { size } = await client.uploadFile(source, 'large.bin');
    await settleDisk();
    let firstByteMs = Infinity;
    let best: Throughput | undefined;
    for (let round = 1; round <= rounds; round++) {
      const meter = new CpuMeter(Object.fromEntries(cluster.all.map((node) => [node.role, node.pid])));
      let firstAt: bigint | undefined;
      const sink = new Writable({
        write(_chunk: Buffer, _encoding, done) {
          firstAt ??= process.hrtime.bigint();
          done();
        },
      });
      const started = process.hrtime.bigint();
      const result = await client.download('large.bin', sink);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const cpu = meter.stop();
      if (result.size !== size || firstAt === undefined) {
        throw new Error(`download returned ${result.size} of ${size} bytes`);
      }
      const first = Number(firstAt - started) / 1e6;
      const run = { ...throughput(size, seconds), cpu };
      log(`  round ${round}: first byte after ${first.toFixed(1)} ms, ${run.mbps.toFixed(0)} MB/s`);
      firstByteMs = Math.min(firstByteMs, first);
      best = !best || run.mbps > best.mbps ? run : best;
    }
    return { sizeBytes: size, firstByteMs, download: best!, rounds };
  } finally {
    await cluster.stop();
    await settleDisk();
  }
}
