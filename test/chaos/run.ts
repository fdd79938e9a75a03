import { createHash, randomInt } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { parseArgs } from 'util';
import { catalogOnDisk } from '../support/catalog-on-disk';
import { stagedFiles } from '../support/cluster';
import { escapeFailure, takeEscapes } from '../support/escapes';
import { killAllChildren } from '../support/processes';
import { waitFor } from '../support/wait';
import { NodeContents, Verdict, checkConvergence, checkHistory, shrink } from './checker';
import { ReadOp, describe } from './history';
import { Nemesis } from './nemesis';
import { Random } from './random';
import { ChaosTarget, WRITE_QUORUM, haTarget, netnsTarget } from './targets';
import { NAMES, Workload, readCurrent } from './workload';

/**
 * The chaos run: several clients issue random operations on a few names while a
 * nemesis injects faults, then the faults stop, every copy must converge, and the
 * checker judges the whole history.
 *
 *   node out/test/chaos/run.js [--seconds S | --minutes M] [--seed N] [--clients C]
 *                              [--min-operations N] [--min-faults N] [--ha [--replication fanout|pipeline]]
 *
 * --ha runs it against two primaries elected through etcd instead of one primary in
 * network namespaces. --replication pipeline (with --ha only: the namespaces of the
 * other target give replicas no links to each other) replicates through a chain.
 */

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    minutes: { type: 'string' },
    seed: { type: 'string' },
    clients: { type: 'string', default: '4' },
    'min-operations': { type: 'string', default: '0' },
    'min-faults': { type: 'string', default: '0' },
    ha: { type: 'boolean', default: false },
    replication: { type: 'string', default: 'fanout' },
  },
});

const SECONDS = values.minutes !== undefined ? Number(values.minutes) * 60 : Number(values.seconds ?? 60);
const SEED = values.seed !== undefined ? Number(values.seed) : randomInt(2 ** 31);
const CLIENTS = Number(values.clients);
const CLIENT_ID = 'chaos';
const CONVERGE_WITHIN_MS = 60_000;
function log(line: string): void {
  console.log(`[chaos ${(performance.now() / 1000).toFixed(1)}s] ${line}`);
}

/** What a node holds at the end: its catalog's current versions, each checked against the bytes in its folder. */
async function contentsOf(root: string): Promise<{ contents: NodeContents; problems: string[] }> {
  const contents: NodeContents = new Map();
  const problems: string[] = [];
  const { names } = await catalogOnDisk(root);
  for (const name of NAMES) {
    const current = names.get(`${CLIENT_ID}/${name}`)?.versions[0];
    const file = path.join(root, CLIENT_ID, name);
    const bytes = await fs.readFile(file).catch(() => undefined);
    if (current) {
      contents.set(name, { generation: current.generation, sha256: current.sha256 });
      const actual = bytes && createHash('sha256').update(bytes).digest('hex');
      if (actual !== current.sha256) {
        problems.push(`${root}: ${name} is generation ${current.generation} in the catalog but its file ${bytes ? `hashes to ${actual!.slice(0, 8)}` : 'is missing'}`);
      }
    } else if (bytes) {
      problems.push(`${root}: ${name} has a file but no current version in the catalog`);
    }
  }
  return { contents, problems };
}

async function converge(target: ChaosTarget, since: number): Promise<number> {
  await waitFor(
    async () => {
      const status = await target.status();
      return status?.recovering === undefined && status?.replicas.every((replica) => replica.reachable && replica.filesBehind === 0 && (replica.lastSyncMs ?? 0) > since);
    },
    'every replica to catch up after the faults stopped',
    CONVERGE_WITHIN_MS,
  );
  const roots = await target.roots();
  await waitFor(
    async () => {
      for (const [, root] of roots) {
        if ((await stagedFiles(root)).length > 0) {
          return false;
        }
      }
      return true;
    },
    'staged bytes to be discarded everywhere',
    CONVERGE_WITHIN_MS,
  );
  return Date.now() - since;
}

/** One last read of every name once everything has converged: the checker judges these too. */
async function finalReads(target: ChaosTarget, nextId: number): Promise<ReadOp[]> {
  const client = target.connect(CLIENT_ID);
  const reads: ReadOp[] = [];
  for (const name of NAMES) {
    const op: ReadOp = { id: nextId++, client: -1, name, kind: 'read', start: performance.now(), end: 0, outcome: 'ok' };
    const current = await readCurrent(client, name);
    if (current) {
      op.found = current;
    } else {
      op.absent = true;
    }
    op.end = performance.now();
    reads.push(op);
  }
  return reads;
}

function report(verdict: Verdict, history: Parameters<typeof shrink>[0]): string[] {
  const lines: string[] = [];
  for (const violation of verdict.violations.slice(0, 5)) {
    lines.push(`VIOLATION ${violation.kind} on ${violation.name}: ${violation.message}`);
    lines.push(`  shortest history that shows it:`);
    for (const op of shrink(history, violation)) {
      lines.push(`    ${describe(op)}`);
    }
  }
  if (verdict.violations.length > 5) {
    lines.push(`... and ${verdict.violations.length - 5} more violations`);
  }
  return lines;
}

async function main(): Promise<number> {
  const random = new Random(SEED);
  const workloadRandom = random.fork(100);
  const nemesisRandom = random.fork(200);
  if (values.replication !== 'fanout' && values.replication !== 'pipeline') {
    throw new Error(`--replication must be fanout or pipeline, not ${values.replication}`);
  }
  if (values.replication === 'pipeline' && !values.ha) {
    throw new Error('--replication pipeline needs --ha: the network namespaces of the other target give replicas no links to each other');
  }
  const target = await (values.ha ? haTarget(log, values.replication) : netnsTarget(log));
  log(`seed ${SEED} (replay with --seed ${SEED}${values.ha ? ' --ha' : ''}${values.replication === 'pipeline' ? ' --replication pipeline' : ''}), ${SECONDS} s of operations, ${CLIENTS} clients, ${target.describe}, write quorum ${WRITE_QUORUM}`);
  const failures: string[] = [];
  try {
    const workload = new Workload({ clients: CLIENTS, seed: SEED, random: workloadRandom, connect: (clientId) => target.connect(clientId), clientId: CLIENT_ID });
    const nemesis = new Nemesis(target.faults, nemesisRandom, log);
    workload.start();
    nemesis.start();
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    await nemesis.stop();
    const healedAt = Date.now();
    log(`faults stopped after ${nemesis.faults.length}; letting the clients finish`);
    await workload.stop();
    const convergedMs = await converge(target, healedAt);
    log(`every copy caught up ${convergedMs} ms after the last fault was healed`);

    const roots = await target.roots();
    const ends = await Promise.all(roots.map(([, root]) => contentsOf(root)));
    failures.push(...ends.flatMap((end) => end.problems));
    failures.push(...checkConvergence(new Map(ends.map((end, index) => [roots[index][0], end.contents]))));

    const history = [...workload.history, ...(await finalReads(target, workload.history.length + 1_000_000))];
    const verdict = checkHistory(history);
    const outcomes = { ok: 0, failed: 0, unknown: 0 };
    for (const op of history) {
      outcomes[op.outcome]++;
    }
    const byKind = new Map<string, number>();
    for (const fault of nemesis.faults) {
      byKind.set(fault.kind, (byKind.get(fault.kind) ?? 0) + 1);
    }
    const historyFile = path.join(os.tmpdir(), `dfs-chaos-${SEED}.json`);
    await fs.writeFile(historyFile, JSON.stringify({ seed: SEED, history, faults: nemesis.faults }));
    log(`operations checked: ${verdict.operations} (${outcomes.ok} ok, ${outcomes.failed} failed, ${outcomes.unknown} unknown) on ${verdict.names} names`);
    log(`faults injected: ${nemesis.faults.length} (${[...byKind].map(([kind, count]) => `${kind} ${count}`).join(', ')})`);
    log(`history written to ${historyFile}`);
    failures.push(...report(verdict, history));
    const minOperations = Number(values['min-operations']);
    const minFaults = Number(values['min-faults']);
    if (verdict.operations < minOperations) {
      failures.push(`only ${verdict.operations} operations were checked; this run must check at least ${minOperations}`);
    }
    if (nemesis.faults.length < minFaults) {
      failures.push(`only ${nemesis.faults.length} faults were injected; this run must inject at least ${minFaults}`);
    }
  } catch (error) {
    failures.push(`the run itself failed: ${(error as Error).stack ?? error}`);
    console.error(target.logs().split('\n').slice(-200).join('\n'));
  } finally {
    await killAllChildren();
    await target.destroy();
  }
  const escaped = escapeFailure(takeEscapes(), 'during the chaos run');
  if (escaped) {
    failures.push(escaped.message);
  }
  if (failures.length > 0) {
    console.error(`\nCHAOS RUN FAILED (seed ${SEED}; replay with --seed ${SEED}${values.ha ? ' --ha' : ''}${values.replication === 'pipeline' ? ' --replication pipeline' : ''}):\n${failures.join('\n')}`);
    return 1;
  }
  log(`passed: seed ${SEED}`);
  return 0;
}

// Ctrl-C of a soak still removes the namespaces and the mount (their hooks run on exit).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130));
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
