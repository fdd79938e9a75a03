import type { DownloadRun } from './download';
import type { FailoverRun } from './failover';
import type { Throughput } from './copy-limit';
import type { UploadRun } from './large-upload';
import type { ListingRun } from './listing';
import type { MachineInfo } from './machine';
import type { MultihostRun } from './multihost';
import { cpuPerUpload, SmallFilesRun } from './small-files';

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
  /** A "max" target that the bound itself meets (fan-out <= 0.34). */
  inclusive?: boolean;
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
  small?: {
    fileBytes: number;
    one: SmallFilesRun;
    many: SmallFilesRun;
    /** many over one: printed, no longer a target (issue 13 replaced it with `vsPerFile`). */
    ratio: number;
    perFile?: SmallFilesRun;
    groupCommit?: SmallFilesRun;
    /** DFS's `many` over the minimal per-file-fsync server's, same clients, same copies. */
    vsPerFile?: number;
  };
  multihost?: MultihostRun;
  listing?: ListingRun;
  replicas?: { sizeBytes: number; runs: ReplicaRun[] };
  failover?: FailoverRun;
  targets: TargetCheck[];
  errors: { phase: string; message: string }[];
  /** Phases that cannot run here, and why (the multihost phase without root). */
  skipped: { phase: string; reason: string }[];
}

const MiB = 1024 * 1024;

export function check(name: string, value: number, unit: string, kind: 'min' | 'max', target: number): TargetCheck {
  return { name, value, unit, kind, target, pass: kind === 'min' ? value >= target : value < target };
}

/** "at most" targets that include their bound (fan-out <= 0.34). */
function checkAtMost(name: string, value: number, unit: string, target: number): TargetCheck {
  return { ...check(name, value, unit, 'max', target), inclusive: true, pass: value <= target };
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
  if (results.small?.vsPerFile !== undefined) {
    targets.push(check(`small files: DFS / minimal per-file-fsync server, ${results.small.many.clients} clients`, results.small.vsPerFile, 'x', 'min', 2));
  }
  if (results.multihost) {
    const run = results.multihost;
    targets.push(checkAtMost('multihost: fan-out upload / link rate', run.fanout.ratio, 'x', 0.34));
    if (run.pipeline.ratio !== undefined) {
      targets.push(check('multihost: pipeline upload / link rate', run.pipeline.ratio, 'x', 'min', 0.8));
    }
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
const filesPerSecond = (run: SmallFilesRun): string => `${run.filesPerSecond.toFixed(0)} files/s`;
const ms = (value: number): string => (value < 10 ? value.toFixed(2) : value.toFixed(1)) + ' ms';
const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

/** The figures as a markdown table (readable as plain text too), then the targets. */
export function formatResults(results: BenchResults): string {
  const rows: string[][] = [];
  const verdict = (name: string): string => {
    const target = results.targets.find((t) => t.name === name);
    return target ? `${target.kind === 'min' ? '>=' : target.inclusive ? '<=' : '<'} ${target.target}${target.unit === 'x' ? '' : ' ' + target.unit}: ${target.pass ? 'PASS' : 'MISS'}` : '';
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
    const { one, many, fileBytes, ratio, perFile, groupCommit, vsPerFile } = results.small;
    const label = `Small files (${one.files} x ${size(fileBytes)}), 3 replicas`;
    const latency = (run: SmallFilesRun): string => `p50 ${ms(run.p50Ms)}, p99 ${ms(run.p99Ms)}`;
    rows.push([label, '1 client', filesPerSecond(one), '', latency(one)]);
    rows.push(['', `${many.clients} concurrent clients`, filesPerSecond(many), '', latency(many)]);
    rows.push(['', `${many.clients} clients / 1 client`, '', ratio.toFixed(2), 'no target (issue 13 replaced >= 3)']);
    if (perFile) {
      rows.push(['', `minimal per-file-fsync server, ${perFile.clients} clients (${perFile.copies} copies)`, filesPerSecond(perFile), '', latency(perFile)]);
      if (vsPerFile !== undefined) {
        rows.push(['', `DFS / minimal per-file-fsync server, ${many.clients} clients`, '', vsPerFile.toFixed(2), verdict(`small files: DFS / minimal per-file-fsync server, ${many.clients} clients`)]);
      }
    }
    if (groupCommit) {
      rows.push(['', `minimal server with group commit, ${groupCommit.clients} clients (reference)`, filesPerSecond(groupCommit), (many.filesPerSecond / groupCommit.filesPerSecond).toFixed(2), `DFS / it, no target; ${latency(groupCommit)}`]);
    }
    let first = true;
    const cpuRow = (figure: string, run: SmallFilesRun): void => {
      const cpu = cpuPerUpload(run);
      const parts = Object.entries(cpu.processes).map(([role, value]) => `${role} ${value.toFixed(2)} ms`);
      rows.push([first ? `CPU per small upload (${size(fileBytes)})` : '', `${figure}: all processes`, `${cpu.totalMs.toFixed(2)} ms`, '', parts.join(', ')]);
      first = false;
    };
    cpuRow('DFS, 1 client', one);
    cpuRow(`DFS, ${many.clients} clients`, many);
    if (perFile) cpuRow(`minimal per-file-fsync server, ${perFile.clients} clients`, perFile);
    if (groupCommit) cpuRow(`minimal server with group commit, ${groupCommit.clients} clients`, groupCommit);
  }
  if (results.multihost) {
    rows.push(...multihostRows(results.multihost, verdict));
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
    const targets = `${results.targets.length} target${results.targets.length === 1 ? '' : 's'}`;
    lines.push(missed.length === 0 ? `All ${targets} met.` : `MISSED ${missed.length} of ${targets}: ${missed.map((t) => t.name).join('; ')}`);
  }
  for (const skipped of results.skipped) {
    lines.push(`SKIPPED ${skipped.phase}: ${skipped.reason}`);
  }
  for (const error of results.errors) {
    lines.push(`ERROR in ${error.phase}: ${error.message}`);
  }
  return lines.join('\n');
}

export function formatMachine(machine: MachineInfo): string {
  return `${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGiB} GiB RAM, ${machine.filesystem} (${machine.device}), ${machine.kernel}, Node ${machine.node}, load ${machine.loadAverage.join(' ')}`;
}

function multihostRows(run: MultihostRun, verdict: (name: string) => string): string[][] {
  const rate = (value: number): string => `${value.toFixed(1)} MB/s (${(value * 8).toFixed(0)} Mbit/s)`;
  const rows: string[][] = [];
  rows.push([`Multihost (${size(run.sizeBytes)}, 3 replicas, links of ${run.linkMbit} Mbit/s)`, `link rate: raw TCP stream between hosts (median of ${run.links.length})`, rate(run.linkMbps), '', run.links.map((link) => `${link.path} ${link.mbps.toFixed(1)}`).join(', ')]);
  rows.push(['', 'upload, primary in fan-out mode', rate(run.fanout.mbps), run.fanout.ratio.toFixed(2), verdict('multihost: fan-out upload / link rate') + (run.fanout.note ? `; ${run.fanout.note}` : '')]);
  if (run.pipeline.ratio !== undefined && run.pipeline.mbps !== undefined) {
    rows.push(['', 'upload, primary in pipeline mode', rate(run.pipeline.mbps), run.pipeline.ratio.toFixed(2), verdict('multihost: pipeline upload / link rate')]);
  } else {
    rows.push(['', 'upload, primary in pipeline mode', 'not available in this build', '', `>= 0.8: not measured; ${run.pipeline.note ?? ''}`]);
  }
  return rows;
}
