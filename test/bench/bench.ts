/**
 * `npm run bench`: how close DFS gets to this machine's limits, measured against
 * baselines taken in the same run. Starts real clusters (separate processes), prints
 * a table with the targets of issues 5 and 13 and writes the same figures as JSON. Exits 0
 * when targets are missed (it is a benchmark); 1 only when a phase could not run.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { measureDownload } from './download';
import { measureUploadAgainstCopyLimit } from './large-upload';
import { BenchCluster, killStartedServers } from './launcher';
import { measureFailover } from './failover';
import { measureListing } from './listing';
import { measureLoopback } from './loopback';
import { formatCpu } from './cpu-usage';
import { describeMachine } from './machine';
import { summariseProfiles } from './cpu-profile';
import { BenchOptions, parseBenchOptions } from './options';
import { BenchResults, ReplicaRun, formatMachine, formatResults, size, targetsOf } from './report';
import { settleDisk } from './settle';
import { MinimalBaseline } from './minimal-baseline';
import { measureMultihost } from './multihost';
import { cpuPerUpload, dfsTarget, measureSmallFiles, SmallFilesRun, WARM_UP_FILES, warmUp } from './small-files';
import { generateSource } from './source-file';

const REPO_ROOT = path.resolve(__dirname, '..');

function log(line: string): void {
  process.stdout.write(line + '\n');
}

// A closed stdout (`npm run bench | head`) must not end the run before its clean-up.
process.stdout.on('error', () => undefined);
// Whatever ends this process, no server it started outlives it.
process.on('exit', killStartedServers);

async function main(): Promise<number> {
  const options = parseBenchOptions(process.argv.slice(2), {
    dir: os.tmpdir(),
    json: path.join(REPO_ROOT, 'bench-results', 'latest.json'),
  });
  if (!options) {
    return 0;
  }
  await fs.mkdir(options.dir, { recursive: true });
  const scratch = await fs.mkdtemp(path.join(path.resolve(options.dir), 'dfs-bench-'));
  const cleanup = async (): Promise<void> => {
    if (!options.keep) {
      await fs.rm(scratch, { recursive: true, force: true });
    }
  };
  const interrupted = (): void => {
    killStartedServers();
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  const startedAt = new Date();
  const machine = describeMachine(scratch);
  const results: BenchResults = {
    startedAt: startedAt.toISOString(),
    durationSeconds: 0,
    machine,
    options: { ...options },
    targets: [],
    errors: [],
    skipped: [],
  };
  log(`DFS benchmark${options.quick ? ' (quick)' : ''} on ${formatMachine(machine)}`);
  log(`scratch folder ${scratch}`);
  try {
    await runPhases(options, scratch, results);
  } finally {
    await cleanup();
  }
  results.durationSeconds = Math.round((Date.now() - startedAt.getTime()) / 100) / 10;
  results.targets = targetsOf(results);

  log('');
  log(formatResults(results));
  log('');
  log(`Machine: ${formatMachine(machine)}; ${results.durationSeconds} s in all.`);
  await fs.mkdir(path.dirname(options.json), { recursive: true });
  await fs.writeFile(options.json, JSON.stringify(results, null, 2) + '\n');
  log(`Figures written to ${path.relative(process.cwd(), options.json) || options.json}`);
  if (options.profileDir) {
    log('');
    log(`CPU profiles (self time per function) in ${options.profileDir}:`);
    log(await summariseProfiles(options.profileDir));
  }
  return results.errors.length > 0 ? 1 : 0;
}

async function runPhases(options: BenchOptions, scratch: string, results: BenchResults): Promise<void> {
  const wants = (phase: BenchOptions['phases'][number]): boolean => options.phases.includes(phase);
  const attempt = async (phase: string, work: () => Promise<void>): Promise<void> => {
    log(`\n== ${phase}`);
    try {
      await work();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`  failed: ${message}`);
      results.errors.push({ phase, message });
    }
  };

  const source = path.join(scratch, 'source.bin');
  if (wants('large') || wants('loopback') || wants('download')) {
    log(`generating ${size(options.size)} of incompressible bytes`);
    await generateSource(source, options.size);
  }
  const profileDir = options.profileDir && path.resolve(options.profileDir);

  if (wants('large')) {
    await attempt(`large file: ${size(options.size)} with 3 replicas against the copy limit (4 files)`, async () => {
      const run = await measureUploadAgainstCopyLimit({ source, scratch, replicas: 3, chunk: options.chunk, profileDir, label: 'large' }, options.rounds, log);
      results.large = { ...run, sizeBytes: options.size, replicas: 3 };
    });
  }
  if (wants('loopback')) {
    await attempt(`raw loopback: ${size(options.size)} over one TCP stream into one file`, async () => {
      results.loopback = await measureLoopback(source, scratch, options.chunk);
      log(`  ${results.loopback.mbps.toFixed(0)} MB/s`);
      if (results.loopback.cpu) log(`    ${formatCpu(results.loopback.cpu)}`);
    });
  }
  if (wants('download')) {
    const rounds = Math.max(options.rounds, 3);
    await attempt(`download: ${size(options.size)} stored with 3 replicas, time to first byte and throughput (${rounds} rounds)`, async () => {
      results.download = await measureDownload(source, scratch, rounds, log);
    });
  }
  await fs.rm(source, { force: true });

  if (wants('replicas')) {
    await attempt(`replicas: ${size(options.replicaSize)} with ${options.replicaCounts.join(', ')} replicas`, async () => {
      const replicaSource = path.join(scratch, 'replica-source.bin');
      await generateSource(replicaSource, options.replicaSize);
      const runs: ReplicaRun[] = [];
      for (const replicas of options.replicaCounts) {
        const run = await measureUploadAgainstCopyLimit(
          { source: replicaSource, scratch, replicas, chunk: options.chunk, profileDir, label: `replicas-${replicas}` },
          options.rounds,
          log,
        );
        runs.push({ ...run, replicas });
      }
      await fs.rm(replicaSource, { force: true });
      results.replicas = { sizeBytes: options.replicaSize, runs };
    });
  }

  if (wants('failover')) {
    await attempt(`failover: kill -9 of the leader to the first upload through the new one, ${options.failoverRounds} rounds (etcd, 2 primaries, 3 replicas)`, async () => {
      const run = await measureFailover(scratch, options.failoverRounds, log);
      results.failover = run;
      log(`  p50 ${(run.p50Ms / 1000).toFixed(2)} s, max ${(run.maxMs / 1000).toFixed(2)} s (lease ${run.leaseTtlSeconds} s)`);
    });
  }

  if (wants('small')) {
    await attempt(
      `small files: ${options.smallCount} x ${size(options.smallSize)} from 1 client and from ${options.concurrency}, and from ${options.concurrency} to a minimal per-file-fsync server and one with group commit (4 copies each), in ${options.smallSlices} alternating slices`,
      async () => {
        const cluster = await BenchCluster.start({ replicas: 3, dataDir: path.join(scratch, 'cluster-small'), profileDir: profileDir && path.join(profileDir, 'small') });
        const copies = cluster.all.length;
        const baselines: MinimalBaseline[] = [];
        try {
          const perFile = await MinimalBaseline.start('per-file', copies, path.join(scratch, 'minimal-per-file'));
          baselines.push(perFile);
          const groupCommit = await MinimalBaseline.start('group-commit', copies, path.join(scratch, 'minimal-group-commit'));
          baselines.push(groupCommit);
          const dfs = dfsTarget(cluster);
          for (const target of [dfs, perFile.target, groupCommit.target]) {
            await warmUp(target, options.smallSize);
          }
          await settleDisk();
          const runs = await measureSmallFiles(
            dfs,
            { perFile: perFile.target, groupCommit: groupCommit.target },
            { count: options.smallCount, size: options.smallSize, concurrency: options.concurrency, slices: options.smallSlices },
          );
          const report = (label: string, run: SmallFilesRun | undefined): void => {
            if (!run) return;
            const cpu = cpuPerUpload(run);
            log(`  ${label}: ${run.filesPerSecond.toFixed(0)} files/s, p50 ${run.p50Ms.toFixed(1)} ms, p99 ${run.p99Ms.toFixed(1)} ms; CPU per upload ${cpu.totalMs.toFixed(2)} ms`);
            log(`    ${formatCpu(run.cpu)}`);
          };
          await perFile.checkStored(WARM_UP_FILES + options.smallCount, options.smallSize);
          await groupCommit.checkStored(WARM_UP_FILES + options.smallCount, options.smallSize);
          report('DFS, 1 client', runs.one);
          report(`DFS, ${options.concurrency} clients`, runs.many);
          report(`minimal per-file-fsync server, ${options.concurrency} clients`, runs.perFile);
          report(`minimal server with group commit, ${options.concurrency} clients`, runs.groupCommit);
          results.small = {
            fileBytes: options.smallSize,
            ...runs,
            ratio: runs.many.filesPerSecond / runs.one.filesPerSecond,
            vsPerFile: runs.perFile && runs.many.filesPerSecond / runs.perFile.filesPerSecond,
          };
        } finally {
          await Promise.all(baselines.map((baseline) => baseline.stop()));
          await cluster.stop();
        }
      },
    );
  }

  if (wants('list')) {
    await attempt(`listing: one client with ${options.listCount} files`, async () => {
      const cluster = await BenchCluster.start({ replicas: 3, dataDir: path.join(scratch, 'cluster-list'), profileDir: profileDir && path.join(profileDir, 'list') });
      try {
        const listing = await measureListing(cluster, options.listCount, options.listRuns);
        log(`  populated in ${listing.populateSeconds.toFixed(1)} s; LIST ${listing.listMs.toFixed(1)} ms, FILES ${listing.filesMs.toFixed(1)} ms (medians of ${options.listRuns})`);
        results.listing = listing;
      } finally {
        await cluster.stop();
      }
    });
  }

  if (wants('multihost')) {
    await attempt(`multihost: ${size(options.multihostSize)} with 3 replicas on other hosts, links of ${options.linkMbit} Mbit/s, fan-out and pipeline against the link rate`, async () => {
      const run = await measureMultihost(
        { sizeBytes: options.multihostSize, linkMbit: options.linkMbit, linkBytes: Math.min(options.multihostSize, 64 * 1024 * 1024), scratch },
        log,
      );
      if ('skipped' in run) {
        log(`  skipped: ${run.skipped}`);
        results.skipped.push({ phase: 'multihost', reason: run.skipped });
      } else {
        results.multihost = run;
      }
    });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    killStartedServers();
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
