import { promises as fs } from 'fs';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import type { ClusterStatus } from '../../server/protocol/records';
import { BridgedHosts, bridgedHostsUnavailable } from '../support/bridged-hosts';
import { waitFor } from '../support/wait';
import { throughput } from './copy-limit';
import { CpuMeter, CpuReport, formatCpu } from './cpu-usage';
import { LinkRate, measureLinkRate, StreamEnd } from './link-rate';
import { BENCH_IDLE_TIMEOUT_MS, BENCH_TIMEOUTS, ServerExitedEarly, ServerProcess, startServer, stopServer } from './launcher';
import { settleDisk } from './settle';
import { median } from './stats';
import { generateSource } from './source-file';

export type ReplicationMode = 'fanout' | 'pipeline';

export interface MultihostUpload {
  mode: ReplicationMode;
  /** The flags the primary ran with. */
  flags: string[];
  mbps?: number;
  seconds?: number;
  /** mbps over the measured link rate. */
  ratio?: number;
  /** Why there is no figure, or how it was obtained. */
  note?: string;
  cpu?: CpuReport;
}

export interface MultihostRun {
  sizeBytes: number;
  linkMbit: number;
  /** Raw TCP streams between hosts over the shaped links. */
  links: LinkRate[];
  /** The median of `links`: the rate an upload is set against. */
  linkMbps: number;
  fanout: MultihostUpload & { mbps: number; ratio: number };
  pipeline: MultihostUpload;
}

const HOSTS = ['primary', 'replica1', 'replica2', 'replica3'];
const PRIMARY_PORT = 8000;
const REPLICA_BASE_PORT = 9000;
/** A stream faster than this share of the configured rate means the shaping does not hold. */
const SHAPED_AT_MOST = 1.1;

/** The hook for the replication mode: `dfs primary --replication fanout|pipeline|auto`. */
export function replicationFlags(mode: ReplicationMode): string[] {
  return ['--replication', mode];
}

/** A primary that exited before listening because it does not know the flag (or the mode): its own words, else undefined. */
function refusedFlag(error: unknown): string | undefined {
  if (!(error instanceof ServerExitedEarly)) {
    return undefined;
  }
  const line = error.output.find((text) => /--replication|replication mode/i.test(text));
  // Its first sentence: "Unknown option '--replication'".
  return line?.replace(/^.*?dfs: /, '').split(/\. /)[0].trim();
}

/**
 * `npm run bench -- --only multihost`: a 3-replica upload between hosts whose links
 * are shaped to `linkMbit` (BridgedHosts: one namespace per host on one bridge, the
 * bench's client in the root namespace), set against a raw TCP stream over the same
 * links measured in the same run, with the primary in fan-out mode and then in
 * pipeline mode where this build has it. Returns the reason instead when the harness
 * cannot run here (not root, no `ip`/`tc`).
 */
export async function measureMultihost(
  options: { sizeBytes: number; linkMbit: number; linkBytes: number; scratch: string },
  log: (line: string) => void,
): Promise<MultihostRun | { skipped: string }> {
  const unavailable = await bridgedHostsUnavailable();
  if (unavailable) {
    return { skipped: unavailable };
  }
  const lan = await BridgedHosts.create({ hosts: HOSTS, linkMbit: options.linkMbit });
  const source = path.join(options.scratch, 'multihost-source.bin');
  try {
    const end = (name: string): StreamEnd =>
      name === 'client' ? { name, address: lan.rootAddress, launcher: [] } : { name, address: lan.host(name).address, launcher: lan.launcher(name) };
    log(`  hosts on one bridge, every link shaped to ${options.linkMbit} Mbit/s each way (tc tbf): client ${lan.rootAddress} (root namespace), ${HOSTS.map((name) => `${name} ${lan.host(name).address}`).join(', ')}`);
    const links: LinkRate[] = [];
    for (const [from, to] of [['client', 'primary'], ['primary', 'replica1'], ['replica1', 'replica2']]) {
      const link = await measureLinkRate(end(from), end(to), options.linkBytes, options.scratch);
      log(`  link rate ${link.path}: ${link.mbps.toFixed(1)} MB/s (${(link.mbps * 8).toFixed(0)} Mbit/s) over ${link.seconds.toFixed(1)} s`);
      links.push(link);
    }
    const shapedMbps = options.linkMbit / 8;
    const unshaped = links.find((link) => link.mbps > shapedMbps * SHAPED_AT_MOST);
    if (unshaped) {
      throw new Error(`the links are not shaped: ${unshaped.path} carried ${unshaped.mbps.toFixed(1)} MB/s, over the ${shapedMbps.toFixed(1)} MB/s of ${options.linkMbit} Mbit/s:\n${await lan.qdiscs()}`);
    }
    // The median: one stream slowed by another job on the machine should not move every ratio.
    const linkMbps = median(links.map((link) => link.mbps));
    if (linkMbps < shapedMbps * 0.7) {
      log(`  warning: the link rate (median of the streams) is ${linkMbps.toFixed(1)} MB/s, well under the ${shapedMbps.toFixed(1)} MB/s the links are shaped to: this machine, not the shaping, bounds it; the uploads are still set against it`);
    }

    log(`  generating ${(options.sizeBytes / 1024 / 1024).toFixed(0)} MiB of incompressible bytes`);
    await generateSource(source, options.sizeBytes);

    const upload = async (mode: ReplicationMode, flags: string[]): Promise<MultihostUpload> => {
      const dataDir = path.join(options.scratch, `multihost-${mode}`);
      const cluster = await startCluster(lan, dataDir, flags);
      try {
        const client = new DfsClient({ host: lan.host('primary').address, port: PRIMARY_PORT, clientId: 'bench', timeouts: BENCH_TIMEOUTS });
        // Timed from a primary that serves and sees every replica: its start-up is not the upload's.
        const status = await waitFor(
          async () => {
            const answer = (await client.status()) as ClusterStatus;
            return answer.recovering === undefined && answer.replicas.every((replica) => replica.reachable) && answer;
          },
          'the primary to serve with every replica reachable',
          30_000,
        );
        log(`  ${mode}: ${cluster.primary.output.find((line) => /replicas /.test(line))?.replace(/^\S+ /, '') ?? 'primary started'}`);
        const reported = (status as ClusterStatus & { replication?: unknown }).replication;
        log(`  ${mode}: STATUS reports replication ${reported === undefined ? '(not reported by this build)' : JSON.stringify(reported)}`);
        if (reported !== undefined && flags.length > 0 && reported !== mode) {
          throw new Error(`the primary started with ${flags.join(' ')} reports replication ${JSON.stringify(reported)}: the figure would not be ${mode}'s`);
        }
        await settleDisk();
        const meter = new CpuMeter(Object.fromEntries(cluster.all.map((node) => [node.role, node.pid])));
        const started = process.hrtime.bigint();
        const receipt = await client.uploadFile(source, `${mode}.bin`);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const cpu = meter.stop();
        if (receipt.copies !== HOSTS.length) {
          throw new Error(`the ${mode} upload stored ${receipt.copies} copies, expected ${HOSTS.length}`);
        }
        const { mbps } = throughput(receipt.size, seconds);
        log(`  ${mode}: ${mbps.toFixed(1)} MB/s over ${seconds.toFixed(1)} s, ${(mbps / linkMbps).toFixed(2)} of the link rate`);
        log(`    ${formatCpu(cpu)}`);
        return { mode, flags, mbps, seconds, ratio: mbps / linkMbps, cpu };
      } finally {
        await cluster.stop();
        await fs.rm(dataDir, { recursive: true, force: true });
      }
    };

    // An upload with `--replication MODE`, or the primary's words when it refuses the flag or the mode.
    const uploadIn = async (mode: ReplicationMode): Promise<MultihostUpload | { refused: string }> => {
      try {
        return await upload(mode, replicationFlags(mode));
      } catch (error) {
        const refused = refusedFlag(error);
        if (refused === undefined) {
          throw error;
        }
        log(`  the primary refused ${replicationFlags(mode).join(' ')}: ${refused}`);
        return { refused };
      }
    };
    let fanout = await uploadIn('fanout');
    if ('refused' in fanout) {
      log(`  fan-out is this build's only mode: measured without the flag`);
      fanout = { ...(await upload('fanout', [])), note: 'no --replication flag in this build: fan-out, its only mode' };
    }
    let pipeline = await uploadIn('pipeline');
    if ('refused' in pipeline) {
      log('  pipeline: not available in this build');
      pipeline = { mode: 'pipeline', flags: replicationFlags('pipeline'), note: `the primary refused ${replicationFlags('pipeline').join(' ')}: ${pipeline.refused}` };
    }
    return { sizeBytes: options.sizeBytes, linkMbit: options.linkMbit, links, linkMbps, fanout: fanout as MultihostRun['fanout'], pipeline };
  } finally {
    await fs.rm(source, { force: true });
    await lan.destroy();
  }
}

interface HostCluster {
  primary: ServerProcess;
  all: ServerProcess[];
  stop(): Promise<void>;
}

/** Three replicas, each on its own host, then the primary on its host with `flags`. */
async function startCluster(lan: BridgedHosts, dataDir: string, flags: string[]): Promise<HostCluster> {
  await fs.mkdir(dataDir, { recursive: true });
  const common = ['--data-dir', dataDir, '--idle-timeout', String(BENCH_IDLE_TIMEOUT_MS), '--insecure'];
  const replicaNames = HOSTS.slice(1);
  const started: ServerProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((node) => stopServer(node.child)));
  };
  try {
    for (const [index, name] of replicaNames.entries()) {
      const host = lan.host(name);
      started.push(
        await startServer(
          name,
          ['replica', '--host', host.address, '--port', String(REPLICA_BASE_PORT + index), '--base-port', String(REPLICA_BASE_PORT), '--replicas', String(replicaNames.length), ...common],
          { dataDir, launcher: lan.launcher(name) },
        ),
      );
    }
    const replicas = replicaNames.flatMap((name, index) => ['--replica', `${lan.host(name).address}:${REPLICA_BASE_PORT + index}`]);
    const primary = await startServer(
      'primary',
      ['primary', '--host', lan.host('primary').address, '--port', String(PRIMARY_PORT), ...replicas, '--write-quorum', 'all', ...flags, ...common],
      { dataDir, launcher: lan.launcher('primary') },
    );
    started.unshift(primary);
    return { primary, all: [...started], stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
