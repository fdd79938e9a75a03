import * as assert from 'assert';
import { spawn } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { ClusterStatus, DfsError, ReplicaNodeStatus } from '../../server/protocol';
import { catalogOnDisk, heldOnDisk } from '../support/catalog-on-disk';
import { downloadBytes, sha256 } from '../support/convergence';
import { stagedFiles, storedFiles } from '../support/cluster';
import { etcdMissingReason } from '../support/etcd-cluster';
import { HaCluster, haClusterPerTest } from '../support/ha-cluster';
import { freePortRange } from '../support/ports';
import { DFS_SCRIPT, runDfs } from '../support/processes';
import { seedList, seedUpload } from '../support/raw-client';
import { waitFor } from '../support/wait';

/**
 * Failover through a real 3-member etcd: two primaries with their own disks share
 * three replicas. Whatever happens to the leader, every acknowledged file is served
 * with its bytes, nothing never acknowledged is listed, and a deposed leader commits
 * nothing.
 */


/** Every replica and the leader hold the same current generation and bytes of every name. */
async function assertConverged(cluster: HaCluster, leader: number, clientId: string, since: number): Promise<Map<string, string>> {
  await cluster.waitForReplicasCaughtUp(leader, since);
  const roots = [cluster.primaryRoot(leader), ...cluster.replicas.map((node, index) => (node ? cluster.replicaRoot(index) : undefined)).filter((root): root is string => root !== undefined)];
  const views = await Promise.all(
    // heldOnDisk checks each file's bytes against its catalog record, and that no other file of the client is there.
    roots.map(async (root) => new Map([...(await heldOnDisk(root, clientId))].map(([name, { generation, sha256: digest }]) => [name, `${generation} ${digest}`]))),
  );
  for (const [index, view] of views.entries()) {
    assert.deepStrictEqual(Object.fromEntries([...view].sort()), Object.fromEntries([...views[0]].sort()), `${roots[index]} differs from the leader's ${roots[0]}`);
    assert.deepStrictEqual(await stagedFiles(roots[index]), [], `${roots[index]} holds staged bytes`);
  }
  return new Map([...views[0]].map(([name, value]) => [name, value.split(' ')[1]]));
}

describe('failover through etcd', function () {
  this.timeout(300_000);
  const clusters = haClusterPerTest();

  it('kill -9 of the leader during uploads from several clients, 10 rounds: every acknowledged file is served, nothing else is listed, cut uploads are reported truthfully', async function () {
    const ha = await clusters.start(this);
    const acknowledged = new Map<string, string>();
    /** Uploads whose answer was lost and whose outcome the client could not tell: either state is right for them. */
    const undecided = new Map<string, string>();
    const outcomes = { acknowledged: 0, refused: 0, unknown: 0 };
    const refusals = new Map<string, number>();
    let { index: leader } = await ha.waitForLeader();
    let epoch = 0;
    for (let round = 0; round < 10; round++) {
      let stopping = false;
      let acksAfterKill = 0;
      let killed = false;
      let killNow!: () => void;
      const readyToKill = new Promise<void>((resolve) => (killNow = resolve));
      const worker = async (id: number): Promise<void> => {
        const client = ha.client('failover');
        for (let i = 0; !stopping; i++) {
          // Every third upload overwrites the worker's own name; the others are new names.
          const name = i % 3 === 2 ? `w${id}.bin` : `r${round}-w${id}-${i}.bin`;
          const data = randomBytes(1 + Math.floor(Math.random() * 64 * 1024));
          try {
            const receipt = await client.upload(name, [data], data.length);
            assert.strictEqual(receipt.sha256, sha256(data));
            acknowledged.set(name, receipt.sha256);
            undecided.delete(name);
            outcomes.acknowledged++;
            if (killed) {
              acksAfterKill++;
            } else if (outcomes.acknowledged % 4 === 0) {
              killNow();
            }
          } catch (error) {
            assert.ok(error instanceof DfsError, String(error));
            if (error.code === 'OUTCOME_UNKNOWN' || error.code === 'TIMEOUT') {
              outcomes.unknown++;
              undecided.set(name, sha256(data));
            } else {
              // A definite "not stored": the name keeps what it had (checked below).
              outcomes.refused++;
              refusals.set(error.code, (refusals.get(error.code) ?? 0) + 1);
            }
          }
        }
      };
      const workers = [0, 1, 2].map((id) => worker(id));
      await readyToKill;
      await ha.killPrimary(leader);
      killed = true;
      const next = await ha.waitForLeader({ not: leader });
      assert.ok(next.status.epoch! > epoch, `round ${round}: the new leader's epoch ${next.status.epoch} is above the last one's ${epoch}`);
      epoch = next.status.epoch!;
      await waitFor(async () => acksAfterKill >= 3 || undefined, 'uploads to succeed through the new leader', 30_000);
      stopping = true;
      await Promise.all(workers);
      await ha.startPrimary(leader);
      leader = next.index;
    }
    const since = Date.now();
    const stored = await assertConverged(ha, leader, 'failover', since);
    const client = ha.client('failover');
    const listed = new Map((await client.files()).map((file) => [file.name, file.sha256]));
    for (const [name, digest] of acknowledged) {
      assert.strictEqual(listed.get(name), digest, `acknowledged ${name} is missing or changed`);
      assert.strictEqual(stored.get(name), digest, `acknowledged ${name} is not on every copy`);
      assert.strictEqual(sha256(await downloadBytes(client, name)), digest);
    }
    for (const [name, digest] of listed) {
      assert.ok(acknowledged.get(name) === digest || undecided.get(name) === digest, `${name} is listed with content that was never acknowledged`);
    }
    console.log(
      `      ${outcomes.acknowledged} uploads acknowledged, ${outcomes.refused} refused (${[...refusals].map(([code, count]) => `${code} ${count}`).join(', ')}), ${outcomes.unknown} of unknown outcome over 10 failovers`,
    );
  });

  it('a paused leader (SIGSTOP past its lease, then SIGCONT) commits nothing after it resumes; the replicas follow the new epoch', async function () {
    const cluster = await clusters.start(this);
    const { index: old, status } = await cluster.waitForLeader();
    const data = randomBytes(8 * 1024 * 1024);
    // Straight to the leader, and slowly: it is paused with the upload in flight.
    const direct = cluster.clientOf(old, 'paused');
    let paused = false;
    const upload = direct
      .upload(
        'late.bin',
        (async function* () {
          for (let offset = 0; offset < data.length; offset += 256 * 1024) {
            yield data.subarray(offset, offset + 256 * 1024);
          }
        })(),
        data.length,
        {
          onProgress: (done) => {
            if (!paused && done > data.length / 4) {
              paused = true;
              cluster.primaries[old]!.child.kill('SIGSTOP');
            }
          },
        },
      )
      .then(
        () => 'stored',
        (error: unknown) => (error instanceof DfsError ? error.code : String(error)),
      );
    const next = await cluster.waitForLeader({ not: old });
    assert.ok(next.status.epoch! > status.epoch!);
    cluster.primaries[old]!.child.kill('SIGCONT');
    const outcome = await upload;
    assert.notStrictEqual(outcome, 'stored', 'a paused leader acknowledged an upload after another took over');
    const files = await cluster.client('paused').files();
    assert.deepStrictEqual(files.map((file) => file.name), [], 'the deposed leader committed nothing');
    for (let index = 0; index < 3; index++) {
      assert.strictEqual((await catalogOnDisk(cluster.replicaRoot(index))).names.get('paused/late.bin'), undefined, `replica ${index + 1} holds the late upload`);
      const replicaStatus = (await cluster.replicaClient(index, 'x').status()) as ReplicaNodeStatus;
      assert.strictEqual(replicaStatus.epoch, next.status.epoch, `replica ${index + 1} follows the new leader's epoch`);
    }
    // The resumed primary stands by: it forwards to the new leader.
    await waitFor(async () => ((await cluster.clientOf(old, 'probe').status().catch(() => undefined)) as ClusterStatus | undefined)?.leader === next.status.leader || undefined, 'the resumed primary to stand by');
  });

  it('a leader cut off from etcd stops leading within its lease, before another is elected; uploads go on through the new leader', async function () {
    // The first primary started leads, on a host (network namespace) of its own.
    const cluster = await clusters.start(this, { isolate: 0 });
    const { index: old, status } = await cluster.waitForLeader();
    assert.strictEqual(old, 0);
    const client = cluster.client('cut');
    await client.upload('before.txt', [Buffer.from('before')], 6);
    const cutAt = Date.now();
    // A blackhole route on its host: its packets to etcd vanish, the replicas and its clients still reach it.
    await cluster.cutFromEtcd(old);
    const next = await cluster.waitForLeader({ not: old });
    assert.ok(next.status.epoch! > status.epoch!);
    // Both log lines carry the same machine's clock.
    const timeOf = (lines: string[], pattern: RegExp): number => {
      const line = lines.find((candidate) => pattern.test(candidate));
      assert.ok(line, `no line matching ${pattern}:\n${lines.slice(-20).join('\n')}`);
      return Date.parse(line.slice(0, line.indexOf(' ')));
    };
    const steppedDown = timeOf(cluster.primaries[old]!.output, /no longer leading/);
    const elected = timeOf(cluster.primaries[next.index]!.output, new RegExp(`leading \\(epoch ${next.status.epoch}\\)`));
    assert.ok(steppedDown - cutAt <= 2_000, `stepped down ${steppedDown - cutAt} ms after the cut; the lease is 2 s`);
    assert.ok(steppedDown <= elected, `the cut-off leader stopped leading at ${steppedDown}, after the new one was elected at ${elected}`);
    await client.upload('after.txt', [Buffer.from('after')], 5);
    assert.deepStrictEqual((await client.files()).map((file) => file.name).sort(), ['after.txt', 'before.txt']);
    await cluster.reconnectToEtcd(old);
    await waitFor(
      async () => ((await cluster.clientOf(old, 'probe').status().catch(() => undefined)) as ClusterStatus | undefined)?.leader === next.status.leader || undefined,
      'the reconnected primary to stand by behind the new leader',
    );
  });
});

describe('failover through etcd: the cluster around it', function () {
  this.timeout(120_000);
  let cluster: HaCluster;

  before(async function () {
    cluster = await HaCluster.start(this);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      console.log(cluster.logs());
    }
  });

  after(async () => {
    await cluster?.destroy();
  });

  it('a client written against the report, given the standby, uploads and lists', async () => {
    const { index: leader } = await cluster.waitForLeader();
    const standby = 1 - leader;
    const body = Buffer.from('bytes from the report client through the standby\n'.repeat(100));
    const { first, final } = await seedUpload(cluster.primaryPorts[standby], 'seed', 'via-standby.txt', body);
    assert.strictEqual(first, 'SEND_FILE');
    assert.strictEqual(final, 'UPLOAD_SUCCESS');
    assert.strictEqual(await seedList(cluster.primaryPorts[standby], 'seed'), 'via-standby.txt');
    const stored = await fs.readFile(path.join(cluster.primaryRoot(leader), 'seed', 'via-standby.txt'));
    assert.ok(stored.equals(body), 'the leader stored the bytes');
    assert.deepStrictEqual(await storedFiles(cluster.primaryRoot(standby)).catch(() => []), [], 'the standby stores nothing itself');
  });

  it('dfs status names the leader, its epoch and since when, and the standby', async () => {
    const { index: leader, status } = await cluster.waitForLeader();
    const standby = 1 - leader;
    const viaStandby = (await cluster.clientOf(standby, 'probe').status()) as ClusterStatus;
    assert.strictEqual(viaStandby.leader, `127.0.0.1:${cluster.primaryPorts[leader]}`);
    assert.strictEqual(viaStandby.epoch, status.epoch);
    assert.ok(status.epoch! > 0);
    assert.ok((status.leaderSinceMs ?? 0) > 0 && status.leaderSinceMs! <= Date.now());
    assert.deepStrictEqual(status.standbys, [`127.0.0.1:${cluster.primaryPorts[standby]}`]);
  });

  it('one etcd member killed (a follower) changes nothing: same leader, same epoch, uploads succeed', async () => {
    const before = await cluster.waitForLeader();
    // A follower: killing etcd's own leader stalls etcd for its election, which may take
    // longer than what is left of a 2 s lease on a loaded machine, and then our leader
    // rightly steps down (see the README).
    const raftLeader = await cluster.etcd.leaderIndex();
    const member = ((raftLeader >= 0 ? raftLeader : 0) + 1) % cluster.etcd.members.length;
    await cluster.etcd.kill(member);
    try {
      const client = cluster.client('etcd-member');
      for (let i = 0; i < 10; i++) {
        await client.upload(`f${i}.txt`, [Buffer.from(`file ${i}`)], `file ${i}`.length);
      }
      const after = await cluster.waitForLeader();
      assert.strictEqual(after.index, before.index);
      assert.strictEqual(after.status.epoch, before.status.epoch);
      assert.strictEqual((await client.files()).length, 10);
    } finally {
      await cluster.etcd.restart(member);
    }
  });

  it('a replica down during a failover under majority: the new leader serves every file and takes uploads; the replica converges when back', async () => {
    const client = cluster.client('replica-down');
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 5; i++) {
      const data = randomBytes(1000 + i);
      files.set(`before-${i}.bin`, data);
      await client.upload(`before-${i}.bin`, [data], data.length);
    }
    await cluster.killReplica(2);
    const { index: old } = await cluster.waitForLeader();
    await cluster.killPrimary(old);
    const next = await cluster.waitForLeader({ not: old });
    for (const [name, data] of files) {
      assert.ok((await downloadBytes(client, name)).equals(data), `${name} after the failover`);
    }
    const after = randomBytes(3000);
    await client.upload('after.bin', [after], after.length);
    files.set('after.bin', after);
    await cluster.startPrimary(old);
    const since = Date.now();
    await cluster.startReplica(2);
    const stored = await assertConverged(cluster, next.index, 'replica-down', since);
    for (const [name, data] of files) {
      assert.strictEqual(stored.get(name), sha256(data));
    }
  });

  it('both primaries restarted: every acknowledged file is still served, under a new epoch', async () => {
    const client = cluster.client('restarts');
    const data = randomBytes(5000);
    await client.upload('kept.bin', [data], data.length);
    const before = await cluster.waitForLeader();
    await Promise.all([cluster.killPrimary(0), cluster.killPrimary(1)]);
    await Promise.all([cluster.startPrimary(0), cluster.startPrimary(1)]);
    const after = await cluster.waitForLeader();
    assert.ok(after.status.epoch! > before.status.epoch!);
    assert.ok((await downloadBytes(client, 'kept.bin')).equals(data));
  });
});

describe('dfs cluster --ha', function () {
  this.timeout(120_000);

  it('starts a local etcd, a leader and a standby on the next port; clients given both addresses follow a kill -9 of the leader; Ctrl-C stops everything', async function () {
    const missing = etcdMissingReason();
    if (missing) {
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    const base = await freePortRange(3);
    const port = await freePortRange(2);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-cluster-ha-'));
    const child = spawn(process.execPath, [DFS_SCRIPT, 'cluster', '--ha', '--port', String(port), '--base-port', String(base), '--write-quorum', 'majority'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        readline.createInterface({ input: child.stdout! }).on('line', (line) => {
          lines.push(line);
          if (line.startsWith('dfs cluster ready')) {
            resolve();
          }
        });
        readline.createInterface({ input: child.stderr! }).on('line', (line) => lines.push(`(stderr) ${line}`));
        child.once('exit', (code) => reject(new Error(`dfs cluster --ha exited ${code}: ${lines.join('\n')}`)));
        setTimeout(() => reject(new Error(`dfs cluster --ha was not ready after 60 s; it printed:\n${lines.join('\n')}`)), 60_000).unref();
      });
      assert.match(lines.join('\n'), new RegExp(`primaries 127\\.0\\.0\\.1:${port} and 127\\.0\\.0\\.1:${port + 1} \\(elected through etcd`));
      const servers = `127.0.0.1:${port},127.0.0.1:${port + 1}`;
      const source = path.join(dir, 'notes.txt');
      await fs.writeFile(source, 'kept through a failover');
      // Each command gets far less than the test's time, and a failure shows what the cluster printed.
      const dfs = async (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> => {
        const result = await runDfs(args, { cwd: dir, timeoutMs: 40_000 });
        assert.strictEqual(result.code, 0, `dfs ${args.join(' ')} failed: ${result.stderr}\ndfs cluster --ha printed:\n${lines.join('\n')}`);
        return result;
      };
      await dfs(['upload', source, '--server', servers, '--client', 'ha']);
      const status = JSON.parse((await dfs(['status', '--json', '--server', servers])).stdout) as ClusterStatus;
      assert.strictEqual(status.leader, `127.0.0.1:${port}`);
      assert.ok(status.epoch! > 0);
      assert.deepStrictEqual(status.standbys, [`127.0.0.1:${port + 1}`]);
      // The leader's own process, among dfs cluster's children by its command line.
      const children = (await fs.readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')).trim().split(/\s+/).map(Number);
      const commandLines = await Promise.all(children.map(async (pid) => [pid, (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')] as const));
      const leader = commandLines.find(([, args]) => args.includes('primary') && args[args.indexOf('--port') + 1] === String(port));
      assert.ok(leader, `no primary on port ${port} among ${JSON.stringify(commandLines)}`);
      process.kill(leader[0], 'SIGKILL');
      // The standby takes over within seconds; the client, given both addresses, waits for it.
      const ls = await dfs(['ls', '--server', servers, '--client', 'ha', '--failover-wait', '15000']);
      assert.match(ls.stdout, /notes\.txt/);
      const after = JSON.parse((await dfs(['status', '--json', '--server', servers])).stdout) as ClusterStatus;
      assert.strictEqual(after.leader, `127.0.0.1:${port + 1}`);
      assert.ok((await fs.stat(path.join(dir, 'dfs-data-ha', 'servidor', 'ha', 'notes.txt'))).isFile(), 'the first leader stored under dfs-data-ha');
      assert.ok(child.exitCode === null, 'dfs cluster --ha goes on without the primary that died');
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      const stuck = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(stuck);
      assert.strictEqual(code, 0, `dfs cluster --ha did not stop on Ctrl-C within 30 s (killed); it printed:\n${lines.join('\n')}`);
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
