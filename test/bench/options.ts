import { parseArgs } from 'util';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export type Phase = 'large' | 'loopback' | 'download' | 'small' | 'list' | 'replicas' | 'failover' | 'multihost';
export const PHASES: readonly Phase[] = ['large', 'loopback', 'download', 'small', 'list', 'replicas', 'failover', 'multihost'];

/** Every knob of one benchmark run; the defaults are the figures the README reports. */
export interface BenchOptions {
  /** Bytes of the large-file upload (3 replicas) and of its baselines. */
  size: number;
  /** Bytes of each upload in the 1/3/5-replica comparison. */
  replicaSize: number;
  replicaCounts: number[];
  smallCount: number;
  smallSize: number;
  concurrency: number;
  /** The small-file runs alternate 1 client / many clients this many times. */
  smallSlices: number;
  listCount: number;
  listRuns: number;
  /** Leader kills in the failover phase. */
  failoverRounds: number;
  /** Large-file rounds (copy limit, then upload); the best of each is reported. */
  rounds: number;
  /** Bytes of the multihost upload (3 replicas on other hosts). */
  multihostSize: number;
  /** Rate of every link between the multihost bench's hosts, each way, in Mbit/s. */
  linkMbit: number;
  /** Bytes per read from the source, as the client reads (DfsClient READ_CHUNK) and the baseline writes. */
  chunk: number;
  phases: Phase[];
  /** Parent of the bench's scratch folder (source file, copy-limit files, cluster data). */
  dir: string;
  keep: boolean;
  /** When set, every server process runs under --cpu-prof and its profile is summarised. */
  profileDir?: string;
  json: string;
  quick: boolean;
}

const HELP = `npm run bench -- [options]

  --size N            large-file size (default 1GiB; suffixes K, M, G are binary)
  --replica-size N    size of each upload in the 1/3/5-replica comparison (default 256MiB)
  --replica-counts L  replica counts to compare (default 1,3,5)
  --small-count N     small files per run (default 2000)
  --small-size N      bytes per small file (default 4KiB)
  --concurrency N     concurrent clients in the second small-file run (default 16)
  --small-slices N    alternate the 1-client and N-client runs this many times (default 4)
  --list-count N      files in the listed client (default 10000)
  --list-runs N       timed runs of each listing; the median is reported (default 7)
  --rounds N          large-file rounds; the best of each side is reported (default 1)
  --chunk N           read size of the source (default 256KiB, the client's)
  --failover-rounds N kill -9 of the leader this many times (default 10; needs etcd)
  --multihost-size N  size of the upload between hosts (default 128MiB)
  --link-mbit N       rate of every link between hosts, each way, in Mbit/s (default 200)
  --only L            phases to run, of large,loopback,download,small,list,replicas,failover,
                      multihost (default all; multihost needs root, ip and tc, and --quick
                      leaves it out)
  --dir D             where the scratch folder goes (default the OS temp folder)
  --keep              keep the scratch folder
  --profile D         run the servers under --cpu-prof, profiles and summaries in D
  --json F            where the figures go (default bench-results/latest.json)
  --quick             small sizes and counts (about 2 minutes on a loaded 2-core machine)
`;

export function parseBenchOptions(argv: string[], defaults: { dir: string; json: string }): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      size: { type: 'string' },
      'replica-size': { type: 'string' },
      'replica-counts': { type: 'string' },
      'small-count': { type: 'string' },
      'small-size': { type: 'string' },
      concurrency: { type: 'string' },
      'small-slices': { type: 'string' },
      'list-count': { type: 'string' },
      'list-runs': { type: 'string' },
      'failover-rounds': { type: 'string' },
      'multihost-size': { type: 'string' },
      'link-mbit': { type: 'string' },
      rounds: { type: 'string' },
      chunk: { type: 'string' },
      only: { type: 'string' },
      dir: { type: 'string' },
      keep: { type: 'boolean' },
      profile: { type: 'string' },
      json: { type: 'string' },
      quick: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return undefined;
  }
  const quick = values.quick ?? false;
  const options: BenchOptions = {
    size: quick ? 64 * MiB : GiB,
    replicaSize: quick ? 32 * MiB : 256 * MiB,
    replicaCounts: [1, 3, 5],
    smallCount: quick ? 200 : 2000,
    smallSize: 4 * 1024,
    concurrency: 16,
    smallSlices: quick ? 2 : 4,
    listCount: quick ? 1000 : 10_000,
    listRuns: quick ? 3 : 7,
    failoverRounds: quick ? 3 : 10,
    rounds: 1,
    multihostSize: quick ? 64 * MiB : 128 * MiB,
    linkMbit: 200,
    chunk: 256 * 1024,
    // The multihost phase builds namespaces and takes a minute at 200 Mbit/s: not part of a quick run unless asked for.
    phases: PHASES.filter((phase) => !quick || phase !== 'multihost'),
    dir: defaults.dir,
    keep: values.keep ?? false,
    profileDir: values.profile,
    json: values.json ?? defaults.json,
    quick,
  };
  if (values.size !== undefined) options.size = parseBytes(values.size, '--size');
  if (values['replica-size'] !== undefined) options.replicaSize = parseBytes(values['replica-size'], '--replica-size');
  if (values['replica-counts'] !== undefined) options.replicaCounts = values['replica-counts'].split(',').map((text) => parseCount(text, '--replica-counts', 0));
  if (values['small-count'] !== undefined) options.smallCount = parseCount(values['small-count'], '--small-count');
  if (values['small-size'] !== undefined) options.smallSize = parseBytes(values['small-size'], '--small-size');
  if (values.concurrency !== undefined) options.concurrency = parseCount(values.concurrency, '--concurrency');
  if (values['small-slices'] !== undefined) options.smallSlices = parseCount(values['small-slices'], '--small-slices');
  if (values['list-count'] !== undefined) options.listCount = parseCount(values['list-count'], '--list-count');
  if (values['list-runs'] !== undefined) options.listRuns = parseCount(values['list-runs'], '--list-runs');
  if (values['failover-rounds'] !== undefined) options.failoverRounds = parseCount(values['failover-rounds'], '--failover-rounds');
  if (values['multihost-size'] !== undefined) options.multihostSize = parseBytes(values['multihost-size'], '--multihost-size');
  if (values['link-mbit'] !== undefined) options.linkMbit = parseCount(values['link-mbit'], '--link-mbit');
  if (values.rounds !== undefined) options.rounds = parseCount(values.rounds, '--rounds');
  if (values.chunk !== undefined) options.chunk = parseBytes(values.chunk, '--chunk');
  if (values.dir !== undefined) options.dir = values.dir;
  if (values.only !== undefined) {
    const wanted = values.only.split(',').map((phase) => phase.trim());
    for (const phase of wanted) {
      if (!PHASES.includes(phase as Phase)) {
        throw new Error(`--only: unknown phase "${phase}"; expected some of ${PHASES.join(',')}`);
      }
    }
    options.phases = PHASES.filter((phase) => wanted.includes(phase));
  }
  return options;
}

/** "1GiB", "256M", "4k", "1048576": binary multiples. */
export function parseBytes(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  if (!match) {
    throw new Error(`${flag} ${JSON.stringify(text)} is not a size like 1GiB, 256M or 4096`);
  }
  const unit = { '': 1, k: 1024, m: MiB, g: GiB }[match[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  const bytes = Math.round(Number(match[1]) * unit);
  if (bytes < 1) {
    throw new Error(`${flag} must be at least one byte`);
  }
  return bytes;
}

function parseCount(text: string, flag: string, min = 1): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < min) {
    throw new Error(`${flag} ${JSON.stringify(text)} is not a whole number >= ${min}`);
  }
  return Number(text);
}
