import * as assert from 'assert';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { PassThrough } from 'stream';
import { DfsClient } from '../../server/client/dfs-client';
import { ClusterStatus, DfsError, currentGenerationOf } from '../../server/protocol';
import { catalogOnDisk, heldOnDisk } from '../support/catalog-on-disk';
import { TestCluster, stagedSize, storedFiles } from '../support/cluster';
import { assertIdenticalCopies, downloadBytes, sha256, waitForConvergence } from '../support/convergence';
import { stopChild } from '../support/processes';
import { RawClient } from '../support/raw-client';
import { waitFor } from '../support/wait';

const SYNC = ['--sync-interval', '200'];

/** The current generation of `client/name` on every node, from its catalog checked against its disk (heldOnDisk); undefined where it is deleted or unknown. */
async function generationsEverywhere(cluster: TestCluster, key: string): Promise<(number | undefined)[]> {
  const slash = key.indexOf('/');
  return Promise.all(cluster.allRoots().map(async (root) => (await heldOnDisk(root, key.slice(0, slash))).get(key.slice(slash + 1))?.generation));
}

async function put(client: DfsClient, name: string, text: string): Promise<number> {
  return (await client.upload(name, [Buffer.from(text)], Buffer.byteLength(text))).generation;
}

describe('generations: recovery never rolls back or resurrects', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  afterEach(async () => {
    await cluster?.destroy();
  });

  it('a restored old copy of the primary folder catches itself up instead of rolling the cluster back', async () => {
    cluster = await TestCluster.start({ replicas: 3, args: SYNC });
    const client = cluster.client('stale');
    await put(client, 'a', 'a v1');
    const backup = `${cluster.dataDir}/servidor-backup`;
    await fs.cp(cluster.primaryRoot(), backup, { recursive: true });
    const b = await put(client, 'b', 'b v1');
    const a2 = await put(client, 'a', 'a v2');
    await put(client, 'c', 'deleted later');
    const cDeleted = (await client.delete('c')).generation;
    // Put the old copy back (a restored backup, a VM snapshot, the wrong --data-dir) and restart.
    await stopChild(cluster.primary.child, 'SIGKILL');
    await fs.rm(cluster.primaryRoot(), { recursive: true });
    await fs.rename(backup, cluster.primaryRoot());
    const restartedAt = Date.now();
    await cluster.startPrimary(cluster.primaryPort);
    await waitForConvergence(cluster, restartedAt);
    const copies = await assertIdenticalCopies(cluster);
    assert.strictEqual(copies.get('stale/a'), sha256('a v2'), 'a kept its newer version');
    assert.strictEqual(copies.get('stale/b'), sha256('b v1'), 'b was not deleted');
    assert.ok(!copies.has('stale/c'), 'c stayed deleted');
    assert.deepStrictEqual(await generationsEverywhere(cluster, 'stale/a'), [a2, a2, a2, a2]);
    assert.deepStrictEqual(await generationsEverywhere(cluster, 'stale/b'), [b, b, b, b]);
    for (const state of await generationsEverywhere(cluster, 'stale/c')) {
      assert.strictEqual(state, undefined, `c is ${state}`);
    }
    assert.strictEqual((await downloadBytes(client, 'a')).toString(), 'a v2');
    // New writes get generations above everything the cluster ever issued.
    assert.ok((await put(client, 'd', 'after')) > Math.max(a2, b, cDeleted));
  });

  it('a tombstone is dropped once every copy has it, and even then an old copy of the primary folder cannot bring the file back', async () => {
    cluster = await TestCluster.start({ replicas: 3, args: SYNC });
    const client = cluster.client('gone');
    await put(client, 'doomed.txt', 'doomed');
    await put(client, 'kept.txt', 'kept');
    const backup = `${cluster.dataDir}/servidor-backup`;
    await fs.cp(cluster.primaryRoot(), backup, { recursive: true });
    const { generation } = await client.delete('doomed.txt');
    await waitFor(
      async () => {
        for (const root of cluster.allRoots()) {
          if ((await catalogOnDisk(root)).names.has('gone/doomed.txt')) {
            return false;
          }
        }
        return true;
      },
      `the tombstone at generation ${generation} to be dropped from every catalog`,
      30_000,
    );
    await stopChild(cluster.primary.child, 'SIGKILL');
    await fs.rm(cluster.primaryRoot(), { recursive: true });
    await fs.rename(backup, cluster.primaryRoot());
    const restartedAt = Date.now();
    await cluster.startPrimary(cluster.primaryPort);
    await waitForConvergence(cluster, restartedAt);
    const copies = await assertIdenticalCopies(cluster);
    assert.ok(!copies.has('gone/doomed.txt'), 'the deleted file stayed deleted');
    assert.strictEqual(copies.get('gone/kept.txt'), sha256('kept'));
    assert.deepStrictEqual((await client.files()).map((file) => file.name), ['kept.txt']);
  });

  for (const [label, firstBack] of [
    ['every replica answers at once', [0, 1, 2]],
    ['the stale replica is the first to answer', [2]],
    ['the stale replica and one other answer first', [2, 1]],
  ] as const) {
    it(`a primary on a new disk never takes a stale replica's word over a newer one (${label})`, async () => {
      cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', args: SYNC });
      const client = cluster.client('adopt');
      await put(client, 'x', 'x v1');
      await put(client, 'y', 'y v1');
      await cluster.killReplica(2);
      const x2 = await put(client, 'x', 'x v2');
      const yDeleted = await client.delete('y');
      assert.deepStrictEqual(yDeleted.replicasBehind, [3]);
      // The primary's disk is replaced; replica 3 (which missed both) comes back.
      await stopChild(cluster.primary.child, 'SIGKILL');
      await fs.rm(cluster.primaryRoot(), { recursive: true, force: true });
      await cluster.killReplica(0);
      await cluster.killReplica(1);
      await Promise.all(firstBack.map((index) => cluster.startReplica(index)));
      const restartedAt = Date.now();
      await cluster.startPrimary(cluster.primaryPort);
      await Promise.all([0, 1, 2].filter((index) => !(firstBack as readonly number[]).includes(index)).map((index) => cluster.startReplica(index)));
      await waitForConvergence(cluster, restartedAt);
      const copies = await assertIdenticalCopies(cluster);
      assert.strictEqual(copies.get('adopt/x'), sha256('x v2'));
      assert.ok(!copies.has('adopt/y'), 'the acknowledged delete held');
      assert.deepStrictEqual(await generationsEverywhere(cluster, 'adopt/x'), [x2, x2, x2, x2]);
      assert.deepStrictEqual((await client.files()).map((file) => [file.name, file.generation]), [['x', x2]]);
    });
  }

  it('a primary on a new disk never serves a file whose delete only certified replicas remember, whatever order it hears them in', async () => {
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', args: SYNC });
    const client = cluster.client('forgot');
    await put(client, 'v.txt', 'deleted long ago');
    await put(client, 'w.txt', 'kept');
    await cluster.killReplica(2);
    await client.delete('v.txt');
    // Replicas 1 and 2 drop their tombstone once certified past it: they remember the
    // delete only through what they are complete through. Replica 3 still holds v.
    await waitFor(
      async () => {
        for (const index of [0, 1]) {
          if ((await catalogOnDisk(cluster.replicaRoot(index))).names.has('forgot/v.txt')) {
            return false;
          }
        }
        return true;
      },
      'replicas 1 and 2 to drop the tombstone of v.txt',
      30_000,
    );
    const behind = (await client.status()) as ClusterStatus;
    assert.strictEqual(behind.replicas[0].filesBehind, 0, 'a replica that dropped a tombstone is not behind for it');
    await stopChild(cluster.primary.child, 'SIGKILL');
    await fs.rm(cluster.primaryRoot(), { recursive: true, force: true });
    await cluster.startReplica(2);
    const restartedAt = Date.now();
    await cluster.startPrimary(cluster.primaryPort);
    const seen = new Set<string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const file of await client.files().catch(() => [])) {
          seen.add(file.name);
        }
      }
    })();
    await waitForConvergence(cluster, restartedAt);
    watching = false;
    await watcher;
    assert.ok(!seen.has('v.txt'), 'v.txt was served after its delete');
    assert.ok(seen.has('w.txt'));
    const copies = await assertIdenticalCopies(cluster);
    assert.deepStrictEqual([...copies.keys()].filter((key) => key.startsWith('forgot/')), ['forgot/w.txt']);
  });

  it('a replica refuses to be certified for an inventory of an earlier start', async () => {
    cluster = await TestCluster.start({ replicas: 1, args: SYNC });
    const raw = await RawClient.connect(cluster.replicas[0]!.port);
    await raw.send('SYNCED 999 0123456789abcdef\n');
    assert.match(await raw.readToClose(), /^ERROR CONFLICT this replica restarted since the inventory that was compared/);
    const marks = (await catalogOnDisk(cluster.replicaRoot(0))).marks;
    assert.ok(marks.synced < 999, `synced is ${marks.synced}`);
  });

  it('a primary that cannot yet hear from enough replicas serves nothing rather than its possibly stale disk', async () => {
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', args: [...SYNC, '--header-timeout', '1500'] });
    const client = cluster.client('wait');
    await put(client, 'f', 'v1');
    await stopChild(cluster.primary.child, 'SIGKILL');
    await cluster.killReplica(0);
    await cluster.killReplica(1);
    await cluster.startPrimary(cluster.primaryPort);
    const status = (await client.status()) as ClusterStatus;
    assert.match(status.recovering ?? '', /compare its catalog with 2 of the 3 replicas/);
    await assert.rejects(client.files(), (error: unknown) => error instanceof DfsError && error.code === 'QUORUM' && /still recovering/.test(error.message));
    await assert.rejects(put(client, 'g', 'refused'), (error: unknown) => error instanceof DfsError && error.code === 'QUORUM');
    await cluster.startReplica(0);
    await waitFor(async () => !((await client.status()) as ClusterStatus).recovering, 'the primary to finish recovering');
    assert.deepStrictEqual((await client.files()).map((file) => file.name), ['f']);
  });
});

describe('generations: catch-up derived from generations', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  afterEach(async () => {
    await cluster?.destroy();
  });

  it('after a primary restart, a replica that is down shows the files it lacks, and the copies count says so', async () => {
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', args: SYNC });
    const client = cluster.client('behind');
    for (let i = 0; i < 3; i++) {
      await put(client, `early-${i}`, `early ${i}`);
    }
    await waitForConvergence(cluster, Date.now());
    await cluster.killReplica(2);
    for (let i = 0; i < 4; i++) {
      await put(client, `late-${i}`, `late ${i}`);
    }
    await client.delete('early-0');
    const restartedAt = Date.now();
    await cluster.restartPrimary();
    // Once the first pass has compared the replicas that answer:
    const status = await waitFor(async () => {
      const current = (await client.status()) as ClusterStatus;
      return current.replicas.slice(0, 2).every((replica) => (replica.lastSyncMs ?? 0) > restartedAt) ? current : undefined;
    }, 'the first pass over replicas 1 and 2');
    assert.strictEqual(status.replicas[2].reachable, false);
    assert.strictEqual(status.replicas[2].filesBehind, 5, JSON.stringify(status.replicas[2]));
    assert.strictEqual(status.replicas[0].filesBehind, 0);
    const copies = new Map((await client.files()).map((file) => [file.name, file.copies]));
    assert.strictEqual(copies.get('early-1'), 4);
    assert.strictEqual(copies.get('late-0'), 3);
    const back = Date.now();
    await cluster.startReplica(2);
    await waitForConvergence(cluster, back);
    assert.strictEqual((await assertIdenticalCopies(cluster)).size, 6);
  });

  it('one file a replica keeps refusing never stops the pass: the others are copied, its reason is in dfs status', async () => {
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', args: SYNC });
    const client = cluster.client('refused');
    await cluster.killReplica(0);
    await client.upload('big.bin', [randomBytes(5000)], 5000);
    for (let i = 0; i < 6; i++) {
      await put(client, `small-${i}`, `small ${i}`);
    }
    // Replica 1 comes back with a smaller size limit: it can never take big.bin.
    await cluster.startReplica(0, ['--max-file-size', '1000']);
    await waitFor(
      async () => {
        const status = (await client.status()) as ClusterStatus;
        return status.replicas[0].failing?.some((failure) => failure.name === 'big.bin') && status.replicas[0].filesBehind === 1 ? status : undefined;
      },
      'replica 1 to report big.bin as the one file it cannot take',
    );
    const onReplica = (await storedFiles(cluster.replicaRoot(0))).filter((file) => file.startsWith('refused/'));
    assert.deepStrictEqual(onReplica, Array.from({ length: 6 }, (_, i) => `refused/small-${i}`));
    const status = (await client.status()) as ClusterStatus;
    assert.match(status.replicas[0].failing![0].reason, /over this server's limit of 1000 bytes/);
    assert.strictEqual(status.replicas[1].filesBehind, 0);
  });

  it('catch-up holds no lock while it streams: a re-upload of the name it is copying does not wait for it', async function () {
    this.timeout(180_000);
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', args: SYNC });
    const client = cluster.client('nolock');
    await cluster.killReplica(2);
    const size = 192 * 1024 * 1024;
    const big = randomBytes(1024 * 1024);
    await client.upload('same.bin', (function* () {
      for (let offset = 0; offset < size; offset += big.length) {
        yield big;
      }
    })(), size);
    await cluster.startReplica(2);
    await waitFor(async () => (await stagedSize(cluster.replicaRoot(2))) > 0, 'catch-up to start streaming same.bin to replica 3');
    const receipt = await client.upload('same.bin', [Buffer.from('small and new')], 13);
    assert.ok((await stagedSize(cluster.replicaRoot(2))) > 0, 'the catch-up copy was still streaming when the re-upload was acknowledged');
    assert.strictEqual(receipt.copies, 4, 'replica 3 took the new version while the old one was still on its way');
    const settled = Date.now();
    await waitForConvergence(cluster, settled);
    const copies = await assertIdenticalCopies(cluster);
    assert.strictEqual(copies.get('nolock/same.bin'), sha256('small and new'));
    assert.deepStrictEqual(await generationsEverywhere(cluster, 'nolock/same.bin'), Array(4).fill(receipt.generation));
  });
});

describe('generations: a replica that fails after the commit point', function () {
  this.timeout(60_000);
  let cluster: TestCluster;

  afterEach(async () => {
    await cluster?.destroy();
  });

  it('answers INCOMPLETE, not failure: the version stands, is served, and reaches the replica once it can take it', async () => {
    cluster = await TestCluster.start({ replicas: 3, args: SYNC });
    // Replica 2 can stage and prepare, but cannot put files of this client in place:
    // a file sits where the client's folder must go.
    await fs.writeFile(path.join(cluster.replicaRoot(1), 'late'), 'in the way');
    const client = cluster.client('late');
    const error = await client.upload('x.txt', [Buffer.from('committed')], 9).then(
      () => assert.fail('the upload reached the quorum although replica 2 failed'),
      (failure: unknown) => failure,
    );
    assert.ok(error instanceof DfsError && error.code === 'INCOMPLETE', String(error));
    assert.match(error.message, /x\.txt is stored as generation \d+, but only 2 of the 3 replicas/);
    const [stored] = await client.files();
    assert.strictEqual(stored.name, 'x.txt');
    assert.strictEqual((await downloadBytes(client, 'x.txt')).toString(), 'committed');
    const status = (await client.status()) as ClusterStatus;
    assert.strictEqual(status.replicas[1].filesBehind, 1);
    await fs.rm(path.join(cluster.replicaRoot(1), 'late'));
    await waitForConvergence(cluster, Date.now());
    const copies = await assertIdenticalCopies(cluster);
    assert.strictEqual(copies.get('late/x.txt'), sha256('committed'));
    assert.deepStrictEqual(await generationsEverywhere(cluster, 'late/x.txt'), Array(4).fill(stored.generation));
  });
});

describe('generations: concurrency, conditional writes and versions', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start({ replicas: 3, args: SYNC });
  });

  after(async () => {
    await cluster?.destroy();
  });

  it('the quota is checked at the commit: 8 parallel uploads never exceed it', async () => {
    const limited = await TestCluster.start({ replicas: 2, args: SYNC, primaryArgs: ['--quota', '1000'] });
    try {
      const client = limited.client('quota');
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => client.upload(`f${i}`, [Buffer.alloc(300, i)], 300)));
      const stored = results.filter((result) => result.status === 'fulfilled').length;
      assert.strictEqual(stored, 3, results.map((result) => (result.status === 'rejected' ? (result.reason as Error).message : 'ok')).join('\n'));
      for (const result of results) {
        if (result.status === 'rejected') {
          assert.strictEqual((result.reason as DfsError).code, 'LIMIT');
        }
      }
      for (const root of limited.allRoots()) {
        assert.strictEqual((await storedFiles(root)).filter((file) => file.startsWith('quota/')).length, 3, root);
      }
    } finally {
      await limited.destroy();
    }
  });

  it('a name and a folder of that name uploaded at once: one wins, the other is refused, every node agrees', async () => {
    const client = cluster.client('shape');
    for (let round = 0; round < 8; round++) {
      const [file, nested] = await Promise.allSettled([put(client, `r${round}`, 'a file'), put(client, `r${round}/inner`, 'inside a folder')]);
      const won = [file, nested].filter((result) => result.status === 'fulfilled');
      assert.strictEqual(won.length, 1, `round ${round}: ${JSON.stringify([file, nested].map((result) => result.status))}`);
      const lost = [file, nested].find((result) => result.status === 'rejected') as PromiseRejectedResult;
      assert.strictEqual((lost.reason as DfsError).code, 'CONFLICT');
      assert.match((lost.reason as DfsError).message, /file|folder/);
    }
    await waitForConvergence(cluster, Date.now());
    const copies = await assertIdenticalCopies(cluster);
    for (let round = 0; round < 8; round++) {
      assert.notStrictEqual(copies.has(`shape/r${round}`), copies.has(`shape/r${round}/inner`), `round ${round}: exactly one of the two exists`);
    }
  });

  it('conditional writes: the precondition is checked with the commit; a failed one changes nothing and says the current generation', async () => {
    const client = cluster.client('cond');
    const first = (await client.upload('doc', [Buffer.from('one')], 3, { precondition: { kind: 'absent' } })).generation;
    await assert.rejects(client.upload('doc', [Buffer.from('two')], 3, { precondition: { kind: 'absent' } }), (error: unknown) => currentGenerationOf(error) === first);
    const second = (await client.upload('doc', [Buffer.from('two')], 3, { precondition: { kind: 'generation', generation: first } })).generation;
    assert.ok(second > first);
    await assert.rejects(client.upload('doc', [Buffer.from('late')], 4, { precondition: { kind: 'generation', generation: first } }), (error: unknown) => currentGenerationOf(error) === second);
    await assert.rejects(client.delete('doc', { ifGeneration: first }), (error: unknown) => currentGenerationOf(error) === second);
    assert.strictEqual((await downloadBytes(client, 'doc')).toString(), 'two');
    const deleted = await client.delete('doc', { ifGeneration: second });
    assert.ok(deleted.generation > second);
    await assert.rejects(client.upload('doc', [Buffer.from('x')], 1, { precondition: { kind: 'generation', generation: second } }), (error: unknown) => currentGenerationOf(error) === null);
  });

  it('of two saves racing on one generation exactly one wins, and no reader of any node ever sees the loser', async () => {
    const client = cluster.client('race');
    const base = await put(client, 'page', 'base');
    const seen = new Set<string>();
    let polling = true;
    const readers = [cluster.primaryPort, ...cluster.replicas.map((replica) => replica!.port)].map(async (port) => {
      const reader = new DfsClient({ host: '127.0.0.1', port, clientId: 'race' });
      while (polling) {
        for (const file of await reader.files().catch(() => [])) {
          seen.add(file.sha256);
        }
      }
    });
    const contenders = Array.from({ length: 6 }, (_, i) => `contender ${i} ${'x'.repeat(20_000)}`);
    const results = await Promise.allSettled(contenders.map((text) => client.upload('page', [Buffer.from(text)], text.length, { precondition: { kind: 'generation', generation: base } })));
    polling = false;
    await Promise.all(readers);
    const winners = results.flatMap((result, index) => (result.status === 'fulfilled' ? [contenders[index]] : []));
    assert.strictEqual(winners.length, 1, JSON.stringify(results.map((result) => result.status)));
    for (const [index, result] of results.entries()) {
      if (result.status === 'rejected') {
        assert.strictEqual((result.reason as DfsError).code, 'CONFLICT');
        assert.ok(!seen.has(sha256(contenders[index])), `contender ${index} lost, yet a reader saw it`);
      }
    }
    assert.strictEqual((await downloadBytes(client, 'page')).toString(), winners[0]);
  });

  it('downloads racing overwrites and deletes of the same name get a version or NOT_FOUND, never "damaged" (found by the chaos run)', async () => {
    const client = cluster.client('churn');
    let writing = true;
    const writers = [0, 1].map(async (writer) => {
      for (let round = 0; writing; round++) {
        await put(client, 'hot', `round ${writer}.${round}`);
        await client.delete('hot').catch((error: unknown) => assert.strictEqual((error as DfsError).code, 'NOT_FOUND'));
      }
    });
    const answers = new Map<string, number>();
    try {
      await Promise.all(
        [0, 1, 2, 3].map(async () => {
          for (let attempt = 0; attempt < 150; attempt++) {
            const outcome = await downloadBytes(client, 'hot').then(
              (bytes) => (/^round \d+\.\d+$/.test(bytes.toString()) ? 'a version' : `bytes ${bytes.toString().slice(0, 40)}`),
              (error: unknown) => (error instanceof DfsError ? error.code : String(error)),
            );
            answers.set(outcome, (answers.get(outcome) ?? 0) + 1);
          }
        }),
      );
    } finally {
      writing = false;
      await Promise.all(writers);
    }
    assert.deepStrictEqual([...answers.keys()].filter((answer) => answer !== 'a version' && answer !== 'NOT_FOUND'), [], JSON.stringify(Object.fromEntries(answers)));
    assert.ok((answers.get('a version') ?? 0) > 0 && (answers.get('NOT_FOUND') ?? 0) > 0, `the downloads must have met both states: ${JSON.stringify(Object.fromEntries(answers))}`);
  });

  it('keeps older versions on every copy, out of the listing; serves and restores them', async () => {
    const client = cluster.client('history');
    const generations = [];
    for (const text of ['v1', 'v2', 'v3']) {
      generations.push(await put(client, 'notes.md', text));
    }
    const versions = await client.versions('notes.md');
    assert.deepStrictEqual(versions.map((version) => [version.generation, version.current]), [[generations[2], true], [generations[1], false], [generations[0], false]]);
    assert.deepStrictEqual(versions.map((version) => version.sha256), ['v3', 'v2', 'v1'].map(sha256));
    assert.deepStrictEqual(await client.list(), ['notes.md'], 'LIST never shows older versions');
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (chunk: Buffer) => chunks.push(chunk));
    const old = await client.download('notes.md', sink, { generation: generations[0] });
    assert.strictEqual(Buffer.concat(chunks).toString(), 'v1');
    assert.strictEqual(old.generation, generations[0]);
    const restored = await client.restore('notes.md', generations[0]);
    assert.ok(restored.generation > generations[2]);
    assert.strictEqual((await downloadBytes(client, 'notes.md')).toString(), 'v1');
    await waitForConvergence(cluster, Date.now());
    for (const root of cluster.allRoots()) {
      const state = (await catalogOnDisk(root)).names.get('history/notes.md')!;
      assert.deepStrictEqual(state.versions.map((version) => version.generation), [restored.generation, ...generations.slice().reverse()], root);
      const versionFiles = await fs.readdir(path.join(root, '.dfs', 'versions', 'history'));
      for (const generation of generations) {
        assert.ok(versionFiles.includes(String(generation)), `${root} keeps generation ${generation}`);
      }
      assert.strictEqual(await fs.readFile(path.join(root, 'history', 'notes.md'), 'utf8'), 'v1');
    }
    await assert.rejects(client.restore('notes.md', 999_999), (error: unknown) => error instanceof DfsError && error.code === 'NOT_FOUND');
  });
});
