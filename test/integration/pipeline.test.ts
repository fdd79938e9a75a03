import * as assert from 'assert';
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import { ClusterStatus, DfsError, formatFence, formatReplicaChecksum, formatRequest, parseHopFailures } from '../../server/protocol';
import { generationOnDisk, heldOnDisk } from '../support/catalog-on-disk';
import { TestCluster, stagedFiles, stagedSize, storedFiles } from '../support/cluster';
import { freePortRange } from '../support/ports';
import { SpawnedNode, runDfs, spawnDfs, stopChild } from '../support/processes';
import { RawClient } from '../support/raw-client';
import { waitFor } from '../support/wait';

/**
 * Pipeline replication: the primary sends each byte once, to the first replica, which
 * forwards it down the chain (REPLICA_CHAIN); every hop checks the SHA-256, and each
 * replica's outcome comes back up the chain, so the write quorum, INCOMPLETE and
 * catch-up work as with fan-out.
 */

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const PIPELINE = ['--replication', 'pipeline'];

/** The same bytes and the same generation on every node's disk. */
async function assertStoredEverywhere(cluster: TestCluster, roots: string[], clientId: string, name: string, data: Buffer, generation: number): Promise<void> {
  for (const root of roots) {
    // heldOnDisk checks the file's bytes against the record: the record's checksum is then the data's.
    assert.deepStrictEqual((await heldOnDisk(root, clientId)).get(name), { generation, sha256: sha(data) }, `${name} differs under ${root}`);
  }
}

async function assertNothingAnywhere(cluster: TestCluster, clientId: string, roots = cluster.allRoots()): Promise<void> {
  for (const root of roots) {
    assert.deepStrictEqual((await storedFiles(root)).filter((file) => file.startsWith(clientId + '/')), [], `stored file left under ${root}`);
    assert.deepStrictEqual(await stagedFiles(root), [], `staged bytes left under ${root}`);
  }
}

/** Bytes the process has written through write(2) and friends, sockets included. */
async function bytesWrittenBy(pid: number): Promise<number> {
  const io = await fs.readFile(`/proc/${pid}/io`, 'utf8');
  return Number(/^wchar: (\d+)$/m.exec(io)![1]);
}

/** A raw 16 MiB upload during which replica `victim` is killed with kill -9 once the last replica staged a quarter: the reply, and the bytes. */
async function uploadKillingMidway(cluster: TestCluster, clientId: string, victim: number): Promise<{ reply: string; data: Buffer }> {
  const size = 16 * 1024 * 1024;
  const data = randomBytes(size);
  const raw = await RawClient.connect(cluster.primaryPort);
  await raw.send(`UPLOAD ${clientId} big.bin ${size}\n`);
  assert.strictEqual(await raw.recv(), 'SEND_FILE {"replaces":null}\n');
  await raw.send(data.subarray(0, size / 2));
  await waitFor(async () => (await stagedSize(cluster.replicaRoot(2))) >= size / 4, 'the last replica to stage bytes through the chain');
  await cluster.killReplica(victim);
  await raw.send(data.subarray(size / 2)).catch(() => undefined);
  return { reply: await raw.readToClose(30_000), data };
}

describe('pipeline replication', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  afterEach(async () => {
    await cluster?.destroy();
  });

  it('stores small and large files byte-identical with one generation on all 3 replicas; STATUS and dfs status say pipeline', async () => {
    cluster = await TestCluster.start({ replicas: 3, primaryArgs: PIPELINE });
    const client = cluster.client('alice');
    const small = Buffer.from('hello, chain');
    const empty = Buffer.alloc(0);
    const large = randomBytes(24 * 1024 * 1024 + 5);
    const smallReceipt = await client.upload('small.txt', [small], small.length);
    const emptyReceipt = await client.upload('empty.bin', [empty], 0);
    const largeReceipt = await client.upload('dir/large.bin', [large.subarray(0, 10_000_000), large.subarray(10_000_000)], large.length);
    for (const [receipt, data] of [[smallReceipt, small], [emptyReceipt, empty], [largeReceipt, large]] as const) {
      assert.strictEqual(receipt.sha256, sha(data));
      assert.strictEqual(receipt.copies, 4);
      assert.deepStrictEqual(receipt.replicasBehind, []);
    }
    await assertStoredEverywhere(cluster, cluster.allRoots(), 'alice', 'small.txt', small, smallReceipt.generation);
    await assertStoredEverywhere(cluster, cluster.allRoots(), 'alice', 'empty.bin', empty, emptyReceipt.generation);
    await assertStoredEverywhere(cluster, cluster.allRoots(), 'alice', 'dir/large.bin', large, largeReceipt.generation);
    for (const root of cluster.allRoots()) {
      assert.deepStrictEqual(await stagedFiles(root), [], `staged bytes left under ${root}`);
    }
    const status = (await cluster.client().status()) as ClusterStatus;
    assert.strictEqual(status.replication, 'pipeline');
    const printed = await runDfs(['status', '--server', cluster.address], { cwd: os.tmpdir() });
    assert.match(printed.stdout, /; replication pipeline;/, printed.stdout + printed.stderr);
  });

  it('the primary sends each byte once (fan-out sends it once per replica)', async () => {
    const size = 32 * 1024 * 1024;
    const data = randomBytes(size);
    const written: Record<string, number> = {};
    for (const mode of ['pipeline', 'fanout']) {
      cluster = await TestCluster.start({ replicas: 3, primaryArgs: ['--replication', mode] });
      const pid = cluster.primary.child.pid!;
      const before = await bytesWrittenBy(pid);
      await cluster.client('once').upload('big.bin', [data], size);
      written[mode] = (await bytesWrittenBy(pid)) - before;
      await assertStoredEverywhere(cluster, cluster.allRoots(), 'once', 'big.bin', data, 1);
      await cluster.destroy();
    }
    // Its own copy plus one stream, against its own copy plus three.
    assert.ok(written.pipeline < 2.2 * size, `pipeline: the primary wrote ${written.pipeline} bytes for ${size}`);
    assert.ok(written.fanout > 3.8 * size, `fan-out: the primary wrote ${written.fanout} bytes for ${size}`);
  });

  for (const quorum of ['majority', 'all']) {
    it(`the middle replica killed with kill -9 mid-transfer (quorum ${quorum}): ${quorum === 'majority' ? 'cut out, the chain goes on, catch-up fills it' : 'fails cleanly, nothing stored anywhere'}`, async () => {
      cluster = await TestCluster.start({ replicas: 3, writeQuorum: quorum, primaryArgs: PIPELINE, args: ['--sync-interval', '500'] });
      const { reply, data } = await uploadKillingMidway(cluster, 'mid', 1);
      if (quorum === 'all') {
        assert.match(reply, /^UPLOAD_FAILURE QUORUM .*replica 2/);
        // The killed replica's staged bytes go when it starts again.
        await assertNothingAnywhere(cluster, 'mid', [cluster.primaryRoot(), cluster.replicaRoot(0), cluster.replicaRoot(2)]);
        await cluster.startReplica(1);
        await assertNothingAnywhere(cluster, 'mid');
        return;
      }
      assert.match(reply, /^UPLOAD_SUCCESS /);
      const receipt = JSON.parse(reply.slice('UPLOAD_SUCCESS '.length)) as { generation: number; copies: number; replicasBehind: number[] };
      assert.deepStrictEqual([receipt.copies, receipt.replicasBehind], [3, [2]]);
      const roots = [cluster.primaryRoot(), cluster.replicaRoot(0), cluster.replicaRoot(2)];
      await assertStoredEverywhere(cluster, roots, 'mid', 'big.bin', data, receipt.generation);
      await cluster.startReplica(1);
      await waitFor(async () => (await generationOnDisk(cluster.replicaRoot(1), 'mid/big.bin')) === receipt.generation, 'catch-up to give the killed replica the file', 30_000);
      await assertStoredEverywhere(cluster, cluster.allRoots(), 'mid', 'big.bin', data, receipt.generation);
    });
  }

  it('the first replica killed mid-transfer: the primary rebuilds the chain from the second and replays its own staged bytes', async () => {
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', primaryArgs: PIPELINE, args: ['--sync-interval', '500'] });
    const { reply, data } = await uploadKillingMidway(cluster, 'first', 0);
    assert.match(reply, /^UPLOAD_SUCCESS /);
    const receipt = JSON.parse(reply.slice('UPLOAD_SUCCESS '.length)) as { generation: number; copies: number; replicasBehind: number[] };
    assert.deepStrictEqual([receipt.copies, receipt.replicasBehind], [3, [1]]);
    await assertStoredEverywhere(cluster, [cluster.primaryRoot(), cluster.replicaRoot(1), cluster.replicaRoot(2)], 'first', 'big.bin', data, receipt.generation);
    const status = (await cluster.client().status()) as ClusterStatus;
    assert.strictEqual(status.replicas[0].reachable, false, JSON.stringify(status));
  });

  it('a replica that cannot stage is cut out at the start and the chain goes on past it; with quorum all nothing is stored', async () => {
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', primaryArgs: PIPELINE });
    for (const index of [1, 2]) {
      // The middle one, then the last one: each refuses, the others take the file.
      const tmp = path.join(cluster.replicaRoot(index), '.dfs', 'tmp');
      await fs.rm(tmp, { recursive: true });
      await fs.writeFile(tmp, 'not a folder: staging is impossible');
      const data = Buffer.from(`refused by replica ${index + 1}`);
      const receipt = await cluster.client('ro').upload(`r${index}.txt`, [data], data.length);
      assert.deepStrictEqual([receipt.copies, receipt.replicasBehind], [3, [index + 1]]);
      const roots = [cluster.primaryRoot(), ...[0, 1, 2].filter((other) => other !== index).map((other) => cluster.replicaRoot(other))];
      await assertStoredEverywhere(cluster, roots, 'ro', `r${index}.txt`, data, receipt.generation);
      await assert.rejects(fs.stat(path.join(cluster.replicaRoot(index), 'ro', `r${index}.txt`)));
      const status = (await cluster.client().status()) as ClusterStatus;
      assert.match(status.replicas[index].lastError ?? '', /cannot stage bytes/, JSON.stringify(status));
      await fs.rm(tmp);
      await fs.mkdir(tmp);
    }
    await cluster.destroy();

    cluster = await TestCluster.start({ replicas: 3, primaryArgs: PIPELINE });
    const tmp = path.join(cluster.replicaRoot(2), '.dfs', 'tmp');
    await fs.rm(tmp, { recursive: true });
    await fs.writeFile(tmp, 'x');
    await assert.rejects(cluster.client('ro').upload('b.txt', [Buffer.from('b')], 1), (error: unknown) => {
      assert.ok(error instanceof DfsError);
      assert.strictEqual(error.code, 'QUORUM');
      assert.match(error.message, /replica 3 .*cannot stage bytes/);
      return true;
    });
    for (const root of cluster.allRoots()) {
      assert.deepStrictEqual(await storedFiles(root), [], `stored under ${root}`);
    }
  });

  it('the hops authenticate to each other as the primary when the cluster has a secret', async () => {
    const secret = randomBytes(32).toString('hex');
    cluster = await TestCluster.start({ replicas: 3, primaryArgs: PIPELINE, env: { DFS_SECRET: secret }, clientSecurity: { secret: Buffer.from(secret) } });
    const data = randomBytes(3 * 1024 * 1024);
    const receipt = await cluster.client('sec').upload('s.bin', [data], data.length);
    assert.deepStrictEqual([receipt.copies, receipt.replicasBehind], [4, []]);
    await assertStoredEverywhere(cluster, cluster.allRoots(), 'sec', 's.bin', data, receipt.generation);
  });
});

describe('pipeline replication under fencing', function () {
  this.timeout(60_000);
  let dataDir: string;
  let basePort: number;
  const replicas: SpawnedNode[] = [];

  const start = async (index: number): Promise<void> => {
    replicas[index] = await spawnDfs(['replica', '--host', '127.0.0.1', '--port', String(basePort + index), '--base-port', String(basePort), '--replicas', '2', '--data-dir', dataDir]);
  };
  const request = async (index: number, lines: string[]): Promise<string> => {
    const raw = await RawClient.connect(basePort + index);
    try {
      await raw.send(lines.map((line) => line + '\n').join(''));
      return await raw.recvLine();
    } finally {
      raw.socket.destroy();
    }
  };
  const chainTo2 = (): { id: number; host: string; port: number }[] => [{ id: 2, host: '127.0.0.1', port: basePort + 1 }];

  beforeEach(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-chain-fence-'));
    basePort = await freePortRange(2);
    await Promise.all([start(0), start(1)]);
  });

  afterEach(async () => {
    await Promise.all(replicas.map((replica) => stopChild(replica.child, 'SIGKILL')));
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('the primary\'s epoch travels down the chain: a replica that knows a newer one refuses the forwarded upload and its commit', async () => {
    // A new leader (epoch 6) has reached replica 2 only.
    assert.ok(!(await request(1, [formatFence(6), formatRequest({ verb: 'INVENTORY' })])).startsWith('ERROR'));
    const body = Buffer.from('from a deposed primary, through the chain');
    const header = `${formatFence(5)}\n${formatRequest({ verb: 'REPLICA_CHAIN', clientId: 'c', next: chainTo2(), name: 'late.txt', size: body.length })}\n`;
    const opened = await request(0, [header.trimEnd()]);
    assert.match(opened, /^SEND_FILE /);
    const failures = parseHopFailures(opened.slice('SEND_FILE '.length));
    assert.strictEqual(failures.get(2)?.code, 'FENCED', opened);

    // Raised on replica 2 between PREPARED and COMMIT: the forwarded COMMIT is refused there.
    const old = await RawClient.connect(basePort);
    try {
      await old.send(`${formatFence(6)}\n${formatRequest({ verb: 'REPLICA_CHAIN', clientId: 'c', next: chainTo2(), name: 'later.txt', size: body.length })}\n`);
      assert.strictEqual(await old.recvLine(), 'SEND_FILE {}');
      await old.send(body);
      await old.send(formatReplicaChecksum({ sha256: sha(body), generation: 101, mtimeMs: Date.now(), keep: 5 }) + '\n');
      assert.strictEqual(await old.recvLine(), 'REPLICA_PREPARED {}');
      assert.ok(!(await request(1, [formatFence(7), formatRequest({ verb: 'INVENTORY' })])).startsWith('ERROR'));
      await old.send('COMMIT\n');
      const committed = await old.recvLine();
      assert.match(committed, /^REPLICA_SUCCESS /, 'replica 1 has not seen epoch 7: it commits');
      assert.strictEqual(parseHopFailures(committed.slice('REPLICA_SUCCESS '.length)).get(2)?.code, 'FENCED', committed);
    } finally {
      old.socket.destroy();
    }
    const secondRoot = path.join(dataDir, 'replica2');
    assert.deepStrictEqual(await storedFiles(secondRoot), [], 'the deposed primary stored nothing on the replica that knew better');
    await waitFor(async () => (await stagedFiles(secondRoot)).length === 0, 'replica 2 to drop the refused bytes');
    assert.strictEqual(await new DfsClient({ host: '127.0.0.1', port: basePort + 1, clientId: 'x' }).status().then((status) => (status as { epoch: number }).epoch), 7);
  });
});
