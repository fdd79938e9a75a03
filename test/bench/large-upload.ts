import * as path from 'path';
import { measureCopyLimit, throughput, Throughput } from './copy-limit';
import { BenchCluster } from './launcher';
import { MemoryPeak, MemorySampler } from './memory';
import { settleDisk } from './settle';

export interface UploadRun {
  upload: Throughput;
  copyLimit: Throughput;
  /** upload MB/s over copy-limit MB/s for 1 + replicas files. */
  ratio: number;
  copies: number;
  primaryMemory: MemoryPeak;
  replicaMemory?: MemoryPeak;
}

export interface UploadSetup {
  source: string;
  scratch: string;
  replicas: number;
  chunk: number;
  profileDir?: string;
  label: string;
}

/**
 * One upload of the source through DfsClient.uploadFile to a fresh cluster, timed
 * from the call to the receipt, with the resident memory of the primary and of
 * replica 1 sampled throughout; the cluster is started just before, so each
 * process's VmHWM is its peak over start-up plus this one upload.
 */
export async function measureUpload(setup: UploadSetup): Promise<Omit<UploadRun, 'copyLimit' | 'ratio'>> {
  const cluster = await BenchCluster.start({
    replicas: setup.replicas,
    dataDir: path.join(setup.scratch, `cluster-${setup.label}`),
    profileDir: setup.profileDir && path.join(setup.profileDir, setup.label),
  });
  try {
    const client = cluster.client('bench');
    await settleDisk();
    const primarySampler = new MemorySampler(cluster.primary.pid);
    const replicaSampler = cluster.replicas[0] && new MemorySampler(cluster.replicas[0].pid);
    const started = process.hrtime.bigint();
    const receipt = await client.uploadFile(setup.source, 'large.bin');
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const primaryMemory = primarySampler.stop();
    const replicaMemory = replicaSampler?.stop();
    if (receipt.copies !== 1 + setup.replicas) {
      throw new Error(`upload stored ${receipt.copies} copies, expected ${1 + setup.replicas}`);
    }
    return { upload: throughput(receipt.size, seconds), copies: receipt.copies, primaryMemory, replicaMemory };
  } finally {
    await cluster.stop();
    await settleDisk();
  }
}

/**
 * Rounds of (copy limit for 1 + replicas files, then the upload), back to back so
 * both see the same machine; the best of each side over the rounds is kept, and the
 * largest memory peak.
 */
export async function measureUploadAgainstCopyLimit(setup: UploadSetup, rounds: number, log: (line: string) => void): Promise<UploadRun> {
  let best: UploadRun | undefined;
  for (let round = 1; round <= rounds; round++) {
    const copyLimit = await measureCopyLimit(setup.source, path.join(setup.scratch, 'copy-limit'), 1 + setup.replicas, setup.chunk);
    log(`  round ${round}: copy limit (${1 + setup.replicas} files) ${copyLimit.mbps.toFixed(0)} MB/s`);
    const run = await measureUpload({ ...setup, label: rounds > 1 ? `${setup.label}-r${round}` : setup.label });
    log(`  round ${round}: upload (${setup.replicas} replicas) ${run.upload.mbps.toFixed(0)} MB/s, primary peak ${mib(run.primaryMemory.hwm)} MiB, replica peak ${run.replicaMemory ? mib(run.replicaMemory.hwm) : '-'} MiB`);
    if (!best) {
      best = { ...run, copyLimit, ratio: 0 };
    } else {
      best = {
        upload: run.upload.mbps > best.upload.mbps ? run.upload : best.upload,
        copyLimit: copyLimit.mbps > best.copyLimit.mbps ? copyLimit : best.copyLimit,
        ratio: 0,
        copies: run.copies,
        primaryMemory: larger(best.primaryMemory, run.primaryMemory)!,
        replicaMemory: larger(best.replicaMemory, run.replicaMemory),
      };
    }
  }
  best!.ratio = best!.upload.mbps / best!.copyLimit.mbps;
  return best!;
}

function larger(a: MemoryPeak | undefined, b: MemoryPeak | undefined): MemoryPeak | undefined {
  if (!a || !b) {
    return a ?? b;
  }
  return a.hwm >= b.hwm ? a : b;
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
