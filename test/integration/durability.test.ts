import * as assert from 'assert';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import type { ClusterStatus } from '../../server/protocol';
import { DfsError } from '../../server/protocol';
import { TestCluster, stagedFiles, stagedSize, storedFiles } from '../support/cluster';
import { assertIdenticalCopies, sha256, waitForConvergence } from '../support/convergence';
import { stopChild } from '../support/processes';
import { waitFor } from '../support/wait';

const SYNC = ['--sync-interval', '200'];

async function flipByte(file: string, offset = 0): Promise<void> {
  const handle = await fs.open(file, 'r+');
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, offset);
  byte[0] ^= 0xff;
  await handle.write(byte, 0, 1, offset);
  await handle.close();
}

async function download(cluster: TestCluster, clientId: string, name: string): Promise<Buffer> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  await cluster.client(clientId).download(name, sink);
  return Buffer.concat(chunks);
}

describe('durability: kill -9 of the primary during uploads', function () {
  this.timeout(300_000);

  it('20 rounds: nothing partial or unacknowledged is ever listed, every acknowledged file survives in every copy', async () => {
    const cluster = await TestCluster.start({ replicas: 3, args: SYNC });
    const sources = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-crash-src-'));
    const acknowledged = new Map<string, string>();
    let failedUploads = 0;
    try {
      for (let round = 0; round < 20; round++) {
        // The kill comes after a varying number of acknowledgements, so the uploads still
        // in flight are caught at every stage: header, bytes, prepare, commit.
        const killAfter = round % 5;
        let acksThisRound = 0;
        let killed = false;
        let kill: () => void = () => undefined;
        const killNow = new Promise<void>((resolve) => (kill = resolve));
        const uploader = async (worker: number): Promise<void> => {
          for (let i = 0; !killed; i++) {
            // Every third upload overwrites the worker's own shared name; the rest are new names.
            const name = i % 3 === 2 ? `shared-${worker}.bin` : `r${round}-w${worker}-${i}.bin`;
            const data = randomBytes(1 + Math.floor(Math.random() * 256 * 1024));
            try {
              // Half the workers send from a file, whose checksum the client computes only if the answer is lost.
              let receipt;
              if (worker % 2 === 0) {
                const source = path.join(sources, `${name}.${i}`);
                await fs.writeFile(source, data);
                receipt = await cluster.client('crash').uploadFile(source, name);
              } else {
                receipt = await cluster.client('crash').upload(name, [data], data.length);
              }
              assert.strictEqual(receipt.sha256, sha256(data));
              acknowledged.set(name, receipt.sha256);
              if (++acksThisRound > killAfter) {
                kill();
              }
            } catch (error) {
              assert.ok(error instanceof DfsError, String(error));
              failedUploads++;
              return;
            }
          }
        };
        const workers = Array.from({ length: 4 }, (_, worker) => uploader(worker));
        await killNow;
        killed = true;
        await stopChild(cluster.primary.child, 'SIGKILL');
        const restartedAt = Date.now();
        await cluster.startPrimary(cluster.primaryPort);
        assert.deepStrictEqual(await stagedFiles(cluster.primaryRoot()), [], `round ${round}: staged bytes survived the restart`);
        await Promise.all(workers);
        await waitForConvergence(cluster, restartedAt);
        for (const record of await cluster.client('crash').files()) {
          assert.strictEqual(record.sha256, acknowledged.get(record.name), `round ${round}: ${record.name} is listed but was never acknowledged with that content`);
        }
      }
      const copies = await assertIdenticalCopies(cluster);
      assert.strictEqual(copies.size, acknowledged.size);
      for (const [name, digest] of acknowledged) {
        assert.strictEqual(copies.get(`crash/${name}`), digest, `acknowledged ${name} is missing or changed`);
      }
      console.log(`      ${acknowledged.size} acknowledged files intact in 4 copies; ${failedUploads} uploads cut off by the kills left nothing`);
    } finally {
      await cluster.destroy();
      await fs.rm(sources, { recursive: true, force: true });
    }
  });
});

describe('durability: replicas that miss writes catch up', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  afterEach(async () => {
    await cluster.destroy();
  });

  it('kill -9 of a replica mid-transfer with quorum majority: success, then the replica converges', async () => {
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', args: SYNC });
    const size = 16 * 1024 * 1024;
    const data = randomBytes(size);
    const upload = cluster.client('maj').upload('big.bin', (async function* () {
      for (let offset = 0; offset < size; offset += 1024 * 1024) {
        yield data.subarray(offset, offset + 1024 * 1024);
      }
    })(), size);
    await waitFor(async () => (await stagedSize(cluster.replicaRoot(2))) > 0, 'replica 3 to receive bytes');
    await cluster.killReplica(2);
    const receipt = await upload;
    assert.strictEqual(receipt.sha256, sha256(data));
    assert.deepStrictEqual(receipt.replicasBehind, [3]);
    const behind = (await cluster.client().status()) as ClusterStatus;
    assert.strictEqual(behind.replicas[2].reachable, false);
    const restartedAt = Date.now();
    await cluster.startReplica(2);
    await waitForConvergence(cluster, restartedAt);
    const copies = await assertIdenticalCopies(cluster);
    assert.strictEqual(copies.get('maj/big.bin'), sha256(data));
  });

  it('a replica down during 50 uploads, 10 overwrites and 10 deletes converges; deleted files never come back', async () => {
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', args: SYNC });
    const client = cluster.client('lag');
    for (let i = 0; i < 20; i++) {
      await client.upload(`old-${i}.txt`, [Buffer.from(`old ${i}`)], `old ${i}`.length);
    }
    await cluster.killReplica(1);
    for (let i = 0; i < 50; i++) {
      const receipt = await client.upload(`new-${i}.txt`, [Buffer.from(`new ${i}`)], `new ${i}`.length);
      assert.deepStrictEqual(receipt.replicasBehind, [2]);
    }
    for (let i = 0; i < 10; i++) {
      await client.upload(`old-${i}.txt`, [Buffer.from(`overwritten ${i}`)], `overwritten ${i}`.length);
    }
    for (let i = 10; i < 20; i++) {
      await client.delete(`old-${i}.txt`);
    }
    const status = (await cluster.client().status()) as ClusterStatus;
    assert.ok(status.replicas[1].filesBehind >= 70, `replica 2 should be behind by 70 files, status says ${status.replicas[1].filesBehind}`);
    const restartedAt = Date.now();
    await cluster.startReplica(1);
    await waitForConvergence(cluster, restartedAt);
    const copies = await assertIdenticalCopies(cluster);
    assert.strictEqual(copies.size, 60);
    for (let i = 10; i < 20; i++) {
      assert.ok(!copies.has(`lag/old-${i}.txt`));
      await assert.rejects(fs.stat(path.join(cluster.replicaRoot(1), 'lag', `old-${i}.txt`)));
    }
    assert.strictEqual(await fs.readFile(path.join(cluster.replicaRoot(1), 'lag', 'old-3.txt'), 'utf8'), 'overwritten 3');
  });

  it('a fresh empty replica joining an existing cluster is filled', async () => {
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', args: SYNC, startReplicas: [0, 1] });
    const client = cluster.client('join');
    for (let i = 0; i < 25; i++) {
      await client.upload(`dir/f${i}.bin`, [randomBytes(1000 + i)], 1000 + i);
    }
    assert.deepStrictEqual(await storedFiles(cluster.replicaRoot(2)), []);
    const joinedAt = Date.now();
    await cluster.startReplica(2);
    await waitForConvergence(cluster, joinedAt);
    assert.strictEqual((await assertIdenticalCopies(cluster)).size, 25);
  });

  it('a replica whose storage refuses writes reports failure; the other replicas are unaffected', async () => {
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', args: SYNC });
    const tmp = path.join(cluster.replicaRoot(0), '.dfs', 'tmp');
    await fs.rm(tmp, { recursive: true });
    await fs.writeFile(tmp, 'not a folder: staging is impossible');
    const receipt = await cluster.client('ro').upload('a.txt', [Buffer.from('hello')], 5);
    assert.deepStrictEqual(receipt.replicasBehind, [1]);
    assert.strictEqual(receipt.copies, 3);
    for (const index of [1, 2]) {
      assert.strictEqual(await fs.readFile(path.join(cluster.replicaRoot(index), 'ro', 'a.txt'), 'utf8'), 'hello');
    }
    await assert.rejects(fs.stat(path.join(cluster.replicaRoot(0), 'ro', 'a.txt')));
    const status = (await cluster.client().status()) as ClusterStatus;
    assert.match(status.replicas[0].lastError ?? '', /cannot stage bytes/, JSON.stringify(status));

    const strict = await TestCluster.start({ replicas: 2, args: SYNC });
    try {
      const strictTmp = path.join(strict.replicaRoot(1), '.dfs', 'tmp');
      await fs.rm(strictTmp, { recursive: true });
      await fs.writeFile(strictTmp, 'x');
      await assert.rejects(strict.client('ro').upload('b.txt', [Buffer.from('b')], 1), (error: unknown) => {
        assert.ok(error instanceof DfsError);
        assert.strictEqual(error.code, 'QUORUM');
        assert.match(error.message, /replica 2 .*cannot stage bytes/);
        return true;
      });
      for (const root of strict.allRoots()) {
        assert.deepStrictEqual(await storedFiles(root), []);
      }
    } finally {
      await strict.destroy();
    }
  });

  it('a primary started on an empty data folder copies the replicas\' files back instead of deleting them', async () => {
    cluster = await TestCluster.start({ replicas: 2, args: SYNC });
    const client = cluster.client('rebuild');
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 12; i++) {
      const data = randomBytes(2000 + i);
      files.set(`d${i % 3}/f${i}.bin`, data);
      await client.upload(`d${i % 3}/f${i}.bin`, [data], data.length);
    }
    // The primary's disk is replaced (or it is started on the wrong --data-dir).
    await stopChild(cluster.primary.child, 'SIGKILL');
    await fs.rm(cluster.primaryRoot(), { recursive: true, force: true });
    const restartedAt = Date.now();
    await cluster.startPrimary(cluster.primaryPort);
    await waitForConvergence(cluster, restartedAt);
    const copies = await assertIdenticalCopies(cluster);
    assert.strictEqual(copies.size, files.size);
    for (const [name, data] of files) {
      assert.strictEqual(copies.get(`rebuild/${name}`), sha256(data), name);
    }
    // Once in step, deletes work as always and nothing comes back.
    await client.delete('d0/f0.bin');
    const deletedAt = Date.now();
    await waitForConvergence(cluster, deletedAt);
    assert.ok(!(await assertIdenticalCopies(cluster)).has('rebuild/d0/f0.bin'));
  });

  it('concurrent uploads of one name end with one whole version, identical in every copy', async () => {
    cluster = await TestCluster.start({ replicas: 3, args: SYNC });
    const versions = Array.from({ length: 8 }, () => randomBytes(200_000 + Math.floor(Math.random() * 100_000)));
    await Promise.all(versions.map((data) => cluster.client('race').upload('same.bin', [data], data.length)));
    const copies = await assertIdenticalCopies(cluster);
    assert.ok(versions.some((data) => sha256(data) === copies.get('race/same.bin')), 'the stored version is none of those sent');
  });
});

describe('durability: corruption is detected and repaired', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start({ replicas: 3, args: SYNC });
  });

  after(async () => {
    await cluster.destroy();
  });

  it('a flipped byte in the primary\'s copy never reaches a download, and the copy is rewritten', async () => {
    const data = randomBytes(500_000);
    await cluster.client('rot').upload('p.bin', [data], data.length);
    const file = path.join(cluster.primaryRoot(), 'rot', 'p.bin');
    await flipByte(file, 1234);
    const downloaded = await download(cluster, 'rot', 'p.bin');
    assert.strictEqual(sha256(downloaded), sha256(data));
    assert.strictEqual(sha256(await fs.readFile(file)), sha256(data));
  });

  it('dfs scrub finds a flipped byte in a replica and in the primary, and repairs both', async () => {
    const replicaData = randomBytes(300_000);
    const primaryData = randomBytes(300_000);
    await cluster.client('rot').upload('r.bin', [replicaData], replicaData.length);
    await cluster.client('rot').upload('q.bin', [primaryData], primaryData.length);
    const replicaFile = path.join(cluster.replicaRoot(1), 'rot', 'r.bin');
    const primaryFile = path.join(cluster.primaryRoot(), 'rot', 'q.bin');
    await flipByte(replicaFile, 77);
    await flipByte(primaryFile, 99);
    const report = await cluster.client().scrub();
    assert.strictEqual(report.primaryCorrupted, 1);
    assert.strictEqual(report.primaryRepaired, 1);
    assert.strictEqual(report.replicaCorrupted[2], 1);
    assert.deepStrictEqual(report.unrecoverable, []);
    assert.strictEqual(sha256(await fs.readFile(primaryFile)), sha256(primaryData));
    assert.strictEqual(sha256(await fs.readFile(replicaFile)), sha256(replicaData));
    await assertIdenticalCopies(cluster);
    const status = (await cluster.client().status()) as ClusterStatus;
    assert.ok(status.replicas.reduce((sum, replica) => sum + replica.repairs, 0) >= 2);
  });

  it('a copy corrupted everywhere is reported, never served', async () => {
    const data = Buffer.from('will rot everywhere');
    await cluster.client('rot').upload('gone.txt', [data], data.length);
    for (const root of cluster.allRoots()) {
      await flipByte(path.join(root, 'rot', 'gone.txt'), 3);
    }
    await assert.rejects(download(cluster, 'rot', 'gone.txt'), (error: unknown) => error instanceof DfsError && error.code === 'CHECKSUM');
  });
});
