import type { DownloadRun } from './download';
import type { FailoverRun } from './failover';
import type { Throughput } from './copy-limit';
import type { UploadRun } from './large-upload';
import type { ListingRun } from './listing';
import type { MachineInfo } from './machine';
import type { SmallFilesRun } from './small-files';

export interface ReplicaRun extends UploadRun {
  replicas: number;
}

export interface TargetCheck {
  name: string;
  value: number;
  unit: string;
  /** "min": value must be at least `target`; "max": below it. */
  kind: 'min' | 'max';
  target: number;
  pass: boolean;
}

export interface BenchResults {
  startedAt: string;
  durationSeconds: number;
  machine: MachineInfo;
  options: Record<string, unknown>;
  large?: UploadRun & { sizeBytes: number; replicas: number };
  loopback?: Throughput;
  download?: DownloadRun;
  small?: { fileBytes: number; one: SmallFilesRun; many: SmallFilesRun; ratio: number };
  listing?: ListingRun;
  replicas?: { sizeBytes: number; runs: ReplicaRun[] };
  failover?: FailoverRun;
  targets: TargetCheck[];
  errors: { phase: string; message: string }[];
}

const MiB = 1024 * 1024;

export function check(name: string, value: number, unit: string, kind: 'min' | 'max', target: number): TargetCheck {
  return { name, value, unit, kind, target, pass: kind === 'min' ? value >= target : value < target };
}

/** The targets of issue 5, from whatever phases ran. */
export function targetsOf(results: BenchResults): TargetCheck[] {
  const targets: TargetCheck[] = [];
  if (results.large) {
    targets.push(check(`${size(results.large.sizeBytes)} upload, 3 replicas / copy limit`, results.large.ratio, 'x', 'min', 0.8));
    targets.push(check('primary peak memory during it', results.large.primaryMemory.hwm / MiB, 'MiB', 'max', 100));
    if (results.large.replicaMemory) {
      targets.push(check('replica peak memory during it', results.large.replicaMemory.hwm / MiB, 'MiB', 'max', 100));
    }
  }
  if (results.download) {
    targets.push(check(`time to first byte of a ${size(results.download.sizeBytes)} download`, results.download.firstByteMs, 'ms', 'max', 50));
  }
  if (results.small) {
    targets.push(check(`small files: ${results.small.many.clients} clients / 1 client`, results.small.ratio, 'x', 'min', 3));
  }
  if (results.failover) {
    targets.push(check('failover p50', results.failover.p50Ms / 1000, 's', 'max', 3));
    targets.push(check('failover max', results.failover.maxMs / 1000, 's', 'max', 6));
  }
  if (results.listing) {
    targets.push(check(`LIST of ${results.listing.files} files`, results.listing.listMs, 'ms', 'max', 100));
    targets.push(check(`FILES of ${results.listing.files} files`, results.listing.filesMs, 'ms', 'max', 100));
  }
  return targets;
}

export function size(bytes: number): string {
  if (bytes >= 1024 ** 3 && bytes % 1024 ** 3 === 0) return `${bytes / 1024 ** 3} GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string => '| ' + cells.map((cell, column) => (cell ?? '').padEnd(widths[column])).join(' | ') + ' |';
  return [line(header), '|' + widths.map((width) => '-'.repeat(width + 2)).join('|') + '|', ...rows.map(line)].join('\n');
}

const mbps = (t: Throughput): string => `${t.mbps.toFixed(0)} MB/s`;
const ms = (value: number): string => (value < 10 ? value.toFixed(2) : value.toFixed(1)) + ' ms';
const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

/** The figures as a markdown table (readable as plain text too), then the targets. */
export function formatResults(results: BenchResults): string {
  const rows: string[][] = [];
  const verdict = (name: string): string => {
    const target = results.targets.find((t) => t.name === name);
    return target ? `${target.kind === 'min' ? '>=' : '<'} ${target.target}${target.unit === 'x' ? '' : ' ' + target.unit}: ${target.pass ? 'PASS' : 'MISS'}` : '';
  };
  if (results.large) {
    const large = results.large;
    const name = `${size(large.sizeBytes)} upload, 3 replicas / copy limit`;
    rows.push([`Large file (${size(large.sizeBytes)}), 3 replicas`, 'upload via DfsClient.uploadFile', mbps(large.upload), '', '']);
    rows.push(['', 'copy limit: same bytes into 4 files, fsync', mbps(large.copyLimit), '', '']);
    rows.push(['', 'upload / copy limit', '', large.ratio.toFixed(2), verdict(name)]);
  }
  if (results.loopback) {
    rows.push([`Raw loopback (${size(results.loopback.bytes)})`, 'one TCP stream into one file, fsync', mbps(results.loopback), '', '']);
  }
  if (results.large) {
    const large = results.large;
    rows.push(['Memory during the large upload', `primary peak RSS (VmHWM; idle ${mib(large.primaryMemory.startRss)})`, mib(large.primaryMemory.hwm), '', verdict('primary peak memory during it')]);
    if (large.replicaMemory) {
      rows.push(['', `replica 1 peak RSS (VmHWM; idle ${mib(large.replicaMemory.startRss)})`, mib(large.replicaMemory.hwm), '', verdict('replica peak memory during it')]);
    }
  }
  if (results.download) {
    const run = results.download;
    const name = `time to first byte of a ${size(run.sizeBytes)} download`;
    rows.push([`Download (${size(run.sizeBytes)}), 3 replicas`, `time to first byte (best of ${run.rounds})`, ms(run.firstByteMs), '', verdict(name)]);
    rows.push(['', 'verified download via DfsClient.download', mbps(run.download), '', '']);
    if (results.loopback) {
      rows.push(['', 'download / raw loopback', '', (run.download.mbps / results.loopback.mbps).toFixed(2), '']);
    }
  }
  if (results.small) {
    const { one, many, fileBytes, ratio } = results.small;
    const label = `Small files (${one.files} x ${size(fileBytes)}), 3 replicas`;
    rows.push([label, '1 client', `${one.filesPerSecond.toFixed(0)} files/s`, '', `p50 ${ms(one.p50Ms)}, p99 ${ms(one.p99Ms)}`]);
    rows.push(['', `${many.clients} concurrent clients`, `${many.filesPerSecond.toFixed(0)} files/s`, '', `p50 ${ms(many.p50Ms)}, p99 ${ms(many.p99Ms)}`]);
    rows.push(['', `${many.clients} clients / 1 client`, '', ratio.toFixed(2), verdict(`small files: ${many.clients} clients / 1 client`)]);
  }
  if (results.listing) {
    const listing = results.listing;
    rows.push([`Listing (${listing.files} files)`, 'LIST (names)', ms(listing.listMs), '', verdict(`LIST of ${listing.files} files`)]);
    rows.push(['', 'FILES (records)', ms(listing.filesMs), '', verdict(`FILES of ${listing.files} files`)]);
  }
  if (results.replicas) {
    for (const run of results.replicas.runs) {
      rows.push([
        run === results.replicas.runs[0] ? `Replicas (${size(results.replicas.sizeBytes)} upload)` : '',
        `${run.replicas} replica${run.replicas === 1 ? '' : 's'}: upload vs copy limit (${1 + run.replicas} files)`,
        `${mbps(run.upload)} vs ${mbps(run.copyLimit)}`,
        run.ratio.toFixed(2),
        '',
      ]);
    }
  }
  if (results.failover) {
    const run = results.failover;
    rows.push([`Failover (${run.rounds} rounds, lease ${run.leaseTtlSeconds} s)`, 'kill -9 of the leader to the next acknowledged upload: p50', `${(run.p50Ms / 1000).toFixed(2)} s`, '', verdict('failover p50')]);
    rows.push(['', 'max', `${(run.maxMs / 1000).toFixed(2)} s`, '', verdict('failover max')]);
  }
  const lines = [table(['Benchmark', 'Figure', 'Value', 'Ratio', 'Target / note'], rows)];
  if (results.targets.length > 0) {
    const missed = results.targets.filter((target) => !target.pass);
    lines.push('');
    lines.push(missed.length === 0 ? `All ${results.targets.length} targets met.` : `MISSED ${missed.length} of ${results.targets.length} targets: ${missed.map((t) => t.name).join('; ')}`);
  }
  for (const error of results.errors) {
    lines.push(`ERROR in ${error.phase}: ${error.message}`);
  }
  return lines.join('\n');
}

export function formatMachine(machine: MachineInfo): string {
  return `${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGiB} GiB RAM, ${machine.filesystem} (${machine.device}), ${machine.kernel}, Node ${machine.node}, load ${machine.loadAverage.join(' ')}`;
}
