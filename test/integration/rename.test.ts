import * as assert from 'assert';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { DfsError, ErrorCode, currentGenerationOf } from '../../server/protocol';
import { Held, catalogOnDisk, heldOnDisk } from '../support/catalog-on-disk';
import { TestCluster } from '../support/cluster';
import { assertIdenticalCopies, downloadBytes, sha256, waitForConvergence } from '../support/convergence';
import { runDfs, stopChild } from '../support/processes';
import { rejectsWithCode } from '../support/rejects';
import { waitFor } from '../support/wait';

const SYNC = ['--sync-interval', '200'];

const rejectsWith = (promise: Promise<unknown>, code: ErrorCode): Promise<DfsError> => rejectsWithCode(promise, DfsError, code);

/** Every node (primary first) holds exactly `expected`: names, generations and bytes. */
async function assertEveryNode(cluster: TestCluster, clientId: string, expected: Record<string, Held>): Promise<void> {
  for (const root of cluster.allRoots()) {
    assert.deepStrictEqual(Object.fromEntries([...(await heldOnDisk(root, clientId))].sort()), expected, `${root} does not hold what the rename left`);
  }
}

describe('rename: RENAME on every copy', function () {
  this.timeout(120_000);
  let cluster: TestCluster;

  afterEach(async () => {
    await cluster?.destroy();
  });

  it('moves the bytes to the new name at a new generation on the primary and every replica, and the old name is gone everywhere', async () => {
    cluster = await TestCluster.start({ replicas: 3, args: SYNC });
    const client = cluster.client('mv');
    const data = randomBytes(300_000);
    const stored = await client.upload('report draft.txt', [data], data.length);
    const receipt = await client.rename('report draft.txt', 'final/report.txt');
    assert.ok(receipt.generation > stored.generation);
    assert.strictEqual(receipt.sha256, sha256(data));
    assert.strictEqual(receipt.size, data.length);
    assert.strictEqual(receipt.copies, 4);
    assert.deepStrictEqual(receipt.replicasBehind, []);
    assert.strictEqual(receipt.replaced, undefined);
    await assertEveryNode(cluster, 'mv', { 'final/report.txt': { generation: receipt.generation, sha256: sha256(data) } });
    assert.ok((await downloadBytes(client, 'final/report.txt')).equals(data));
    await rejectsWith(downloadBytes(client, 'report draft.txt'), 'NOT_FOUND');
    assert.deepStrictEqual((await client.versions('final/report.txt')).map((info) => info.generation), [receipt.generation]);
  });

  it('refuses an existing destination with EXISTS and its generation, changing nothing; --replace (or its generation) replaces it, kept as history', async () => {
    cluster = await TestCluster.start({ replicas: 2, args: SYNC });
    const client = cluster.client('mv');
    const a = await client.upload('a.txt', [Buffer.from('aaa')], 3);
    const b = await client.upload('b.txt', [Buffer.from('bb')], 2);
    const error = await rejectsWith(client.rename('a.txt', 'b.txt'), 'EXISTS');
    assert.match(error.message, /b\.txt exists already/);
    assert.strictEqual(currentGenerationOf(error), b.generation, 'the reason starts with the destination\'s generation');
    const before = { 'a.txt': { generation: a.generation, sha256: sha256('aaa') }, 'b.txt': { generation: b.generation, sha256: sha256('bb') } };
    await assertEveryNode(cluster, 'mv', before);
    await rejectsWith(client.rename('a.txt', 'b.txt', { replace: b.generation + 100 }), 'EXISTS');
    await assertEveryNode(cluster, 'mv', before);
    const receipt = await client.rename('a.txt', 'b.txt', { replace: b.generation });
    assert.strictEqual(receipt.replaced, b.generation);
    await assertEveryNode(cluster, 'mv', { 'b.txt': { generation: receipt.generation, sha256: sha256('aaa') } });
    assert.deepStrictEqual((await client.versions('b.txt')).map((info) => info.generation), [receipt.generation, b.generation]);
    const c = await client.upload('c.txt', [Buffer.from('c')], 1);
    const again = await client.rename('c.txt', 'b.txt', { replace: true });
    assert.strictEqual(again.replaced, receipt.generation);
    assert.ok(again.generation > c.generation);
  });

  it('a source precondition that fails is CONFLICT with the current generation; a missing source is NOT_FOUND; nothing changes', async () => {
    cluster = await TestCluster.start({ replicas: 2, args: SYNC });
    const client = cluster.client('mv');
    const first = await client.upload('doc.txt', [Buffer.from('one')], 3);
    const second = await client.upload('doc.txt', [Buffer.from('two')], 3);
    const conflict = await rejectsWith(client.rename('doc.txt', 'moved.txt', { ifGeneration: first.generation }), 'CONFLICT');
    assert.strictEqual(currentGenerationOf(conflict), second.generation);
    await rejectsWith(client.rename('nothing.txt', 'moved.txt'), 'NOT_FOUND');
    await rejectsWith(client.rename('doc.txt', 'doc.txt'), 'BAD_FILE_NAME');
    await rejectsWith(client.rename('doc.txt', 'doc.txt/inside'), 'CONFLICT');
    await assertEveryNode(cluster, 'mv', { 'doc.txt': { generation: second.generation, sha256: sha256('two') } });
    const receipt = await client.rename('doc.txt', 'moved.txt', { ifGeneration: second.generation });
    await assertEveryNode(cluster, 'mv', { 'moved.txt': { generation: receipt.generation, sha256: sha256('two') } });
  });

  it('too few replicas reachable for the write quorum: QUORUM, and nothing changes on any node', async () => {
    cluster = await TestCluster.start({ replicas: 2, args: SYNC });
    const client = cluster.client('mv');
    const stored = await client.upload('x.txt', [Buffer.from('x')], 1);
    await cluster.killReplica(1);
    await rejectsWith(client.rename('x.txt', 'y.txt'), 'QUORUM');
    for (const root of [cluster.primaryRoot(), cluster.replicaRoot(0), cluster.replicaRoot(1)]) {
      assert.deepStrictEqual(Object.fromEntries(await heldOnDisk(root, 'mv')), { 'x.txt': { generation: stored.generation, sha256: sha256('x') } }, root);
    }
  });

  it('a replica down during the rename is caught up: the old name leaves its disk, the new one arrives at the rename\'s generation', async () => {
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', args: SYNC });
    const client = cluster.client('mv');
    const data = randomBytes(50_000);
    await client.upload('old/name.bin', [data], data.length);
    await client.upload('stays.bin', [Buffer.from('stays')], 5);
    await cluster.killReplica(2);
    const receipt = await client.rename('old/name.bin', 'new name.bin');
    assert.deepStrictEqual(receipt.replicasBehind, [3]);
    assert.strictEqual(receipt.copies, 3);
    const missed = await heldOnDisk(cluster.replicaRoot(2), 'mv');
    assert.ok(missed.has('old/name.bin') && !missed.has('new name.bin'), 'the stopped replica missed the rename');
    const since = Date.now();
    await cluster.startReplica(2);
    await waitForConvergence(cluster, since);
    const stays = (await client.files()).find((file) => file.name === 'stays.bin')!;
    await assertEveryNode(cluster, 'mv', {
      'new name.bin': { generation: receipt.generation, sha256: sha256(data) },
      'stays.bin': { generation: stays.generation, sha256: sha256('stays') },
    });
    assert.deepStrictEqual(await fs.readdir(path.join(cluster.replicaRoot(2), 'mv')).then((names) => names.sort()), ['new name.bin', 'stays.bin'], 'the empty old folder went too');
  });

  it('4 files renamed in and out of one folder at once, 75 times each, while catch-up passes run every 200 ms: every rename is confirmed by every replica, and every node ends the same', async () => {
    cluster = await TestCluster.start({ replicas: 3, args: SYNC });
    const client = cluster.client('mv');
    const files = await Promise.all(
      [0, 1, 2, 3].map(async (file) => {
        const data = randomBytes(1_000 + file * 20_000);
        await client.upload(`f${file}.bin`, [data], data.length);
        return { names: [`f${file}.bin`, `shared/f${file}.bin`], at: 0, sha256: sha256(data) };
      }),
    );
    const failures: string[] = [];
    let last = 0;
    await Promise.all(
      files.map(async (file) => {
        for (let round = 0; round < 75; round++) {
          const from = file.names[file.at];
          const to = file.names[1 - file.at];
          try {
            const receipt = await client.rename(from, to);
            file.at = 1 - file.at;
            last = Math.max(last, receipt.generation);
            if (receipt.copies !== 4) {
              failures.push(`${from} -> ${to}: ${receipt.copies} copies, replicas behind ${receipt.replicasBehind.join(', ')}`);
            }
          } catch (error) {
            // Out of the shared folder, its last file's removal races another's: neither
            // may fail, on the primary or on a replica, nor may catch-up land in between.
            failures.push(`${from} -> ${to}: ${(error as Error).message}`);
            return;
          }
        }
      }),
    );
    assert.deepStrictEqual(failures, []);
    await waitForConvergence(cluster, Date.now());
    const onPrimary = await heldOnDisk(cluster.primaryRoot(), 'mv');
    assert.deepStrictEqual(
      [...onPrimary].map(([name, held]) => [name, held.sha256]).sort(),
      files.map((file) => [file.names[file.at], file.sha256]).sort(),
      'the primary does not hold each file under its last name',
    );
    await assertEveryNode(cluster, 'mv', Object.fromEntries([...onPrimary].sort()));
    await assertIdenticalCopies(cluster);
    assert.ok(last > 300, `only ${last} generations issued`);
  });

  it('dfs mv renames, refuses an existing destination with a clear message and exit status 1, and --replace replaces it', async () => {
    cluster = await TestCluster.start({ replicas: 1, args: SYNC });
    const client = cluster.client('cli');
    await client.upload('one.txt', [Buffer.from('1')], 1);
    await client.upload('two.txt', [Buffer.from('22')], 2);
    const flags = ['--server', cluster.address, '--client', 'cli'];
    const refused = await runDfs(['mv', 'one.txt', 'two.txt', ...flags]);
    assert.strictEqual(refused.code, 1);
    assert.match(refused.stderr, /two\.txt exists already .*--replace/);
    const moved = await runDfs(['mv', 'one.txt', 'two.txt', '--replace', ...flags]);
    assert.strictEqual(moved.code, 0, moved.stderr);
    assert.match(moved.stdout, /^renamed one\.txt to two\.txt at generation \d+, replacing generation \d+\n$/);
    const stale = await runDfs(['mv', 'two.txt', 'three.txt', '--if-generation', '1', ...flags]);
    assert.strictEqual(stale.code, 1);
    assert.match(stale.stderr, /two\.txt was expected to be at generation 1/);
    await assertEveryNode(cluster, 'cli', { 'two.txt': { generation: (await client.files())[0].generation, sha256: sha256('1') } });
  });
});

describe('rename: kill -9 of the primary around a rename', function () {
  this.timeout(300_000);
  let cluster: TestCluster;

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && cluster) {
      console.log(['primary', ...cluster.primary.output, ...cluster.replicas.flatMap((node, index) => [`replica ${index + 1}`, ...(node?.output ?? [])])].join('\n'));
    }
    await cluster?.destroy();
  });

  /** Each pair holds exactly one of its two names on this node, with the pair's bytes. */
  function assertOneOfEach(held: Map<string, Held>, pairs: Map<string, { names: [string, string]; sha256: string }>, where: string): void {
    for (const [label, pair] of pairs) {
      const present = pair.names.filter((name) => held.has(name));
      assert.strictEqual(present.length, 1, `${where}: ${label} is held under ${present.length === 0 ? 'neither name' : 'both names'}`);
      assert.strictEqual(held.get(present[0])!.sha256, pair.sha256, `${where}: ${present[0]} holds other bytes`);
    }
  }

  it('after the primary\'s record, before the replicas applied it: replicas keep the old state, the restarted primary the new, and all converge on it', async () => {
    cluster = await TestCluster.start({ replicas: 2, args: SYNC });
    const client = cluster.client('crash');
    const data = randomBytes(20_000);
    await client.upload('before.bin', [data], data.length);
    // Paused replicas still accept connections (the kernel does): the primary records
    // the rename and then waits for their answers, which never come before the kill.
    cluster.replicas.forEach((node) => node!.child.kill('SIGSTOP'));
    try {
      const outcome = client.rename('before.bin', 'after.bin').then(
        () => 'renamed',
        (error: DfsError) => error.code,
      );
      await waitFor(async () => (await catalogOnDisk(cluster.primaryRoot())).names.get('crash/after.bin') !== undefined, 'the primary to record the rename');
      await stopChild(cluster.primary.child, 'SIGKILL');
      assert.notStrictEqual(await outcome, 'renamed', 'a rename the replicas never confirmed was acknowledged');
      for (let index = 0; index < 2; index++) {
        const held = await heldOnDisk(cluster.replicaRoot(index), 'crash');
        assert.deepStrictEqual([...held.keys()], ['before.bin'], `replica ${index + 1} holds the old state only`);
      }
    } finally {
      cluster.replicas.forEach((node) => node!.child.kill('SIGCONT'));
    }
    await cluster.startPrimary(cluster.primaryPort);
    const onPrimary = await heldOnDisk(cluster.primaryRoot(), 'crash');
    assert.deepStrictEqual([...onPrimary.keys()], ['after.bin'], 'the restarted primary finished the rename it recorded');
    const since = Date.now();
    await waitForConvergence(cluster, since);
    await assertEveryNode(cluster, 'crash', { 'after.bin': { generation: onPrimary.get('after.bin')!.generation, sha256: sha256(data) } });
  });

  it('10 rounds of renames back and forth cut by kill -9 at varying points: every node holds each file under exactly one name, the acknowledged one or a later one', async () => {
    cluster = await TestCluster.start({ replicas: 3, args: SYNC });
    const client = cluster.client('crash');
    const pairs = new Map<string, { names: [string, string]; sha256: string }>();
    /** Per file: the name and generation of its last acknowledged state. */
    const acknowledged = new Map<string, { name: string; generation: number }>();
    for (let file = 0; file < 4; file++) {
      const data = randomBytes(1 + Math.floor(Math.random() * 64 * 1024));
      const names: [string, string] = [`f${file}.bin`, `moved/f${file}.bin`];
      const receipt = await client.upload(names[0], [data], data.length);
      pairs.set(`file ${file}`, { names, sha256: sha256(data) });
      acknowledged.set(`file ${file}`, { name: names[0], generation: receipt.generation });
    }
    let renamed = 0;
    let cut = 0;
    for (let round = 0; round < 10; round++) {
      const killAfter = round % 4;
      let acks = 0;
      let killed = false;
      let kill: () => void = () => undefined;
      const killNow = new Promise<void>((resolve) => (kill = resolve));
      const worker = async (label: string): Promise<void> => {
        const pair = pairs.get(label)!;
        while (!killed) {
          const from = acknowledged.get(label)!.name;
          const to = pair.names[from === pair.names[0] ? 1 : 0];
          try {
            const receipt = await client.rename(from, to);
            acknowledged.set(label, { name: to, generation: receipt.generation });
            renamed++;
            if (++acks > killAfter) {
              kill();
            }
          } catch (error) {
            assert.ok(error instanceof DfsError, String(error));
            if (!killed) {
              refused.push(`${label}: ${error.code} ${error.message}`);
            }
            cut++;
            return;
          }
        }
      };
      const refused: string[] = [];
      const workers = [...pairs.keys()].map(worker);
      // Every worker stops at its first failure: if all fail before the kill, nothing would ever kill.
      await Promise.race([killNow, Promise.allSettled(workers)]);
      assert.ok(acks > killAfter || killed || refused.length < pairs.size, `round ${round}: every rename failed before the primary was killed: ${refused.join('; ')}`);
      killed = true;
      await stopChild(cluster.primary.child, 'SIGKILL');
      await Promise.all(workers);
      // The replicas did not crash: what their catalogs say now is what they applied.
      for (let index = 0; index < 3; index++) {
        assertOneOfEach(await heldOnDisk(cluster.replicaRoot(index), 'crash', true), pairs, `round ${round}, replica ${index + 1}`);
      }
      const restartedAt = Date.now();
      await cluster.startPrimary(cluster.primaryPort);
      const onPrimary = await heldOnDisk(cluster.primaryRoot(), 'crash');
      assertOneOfEach(onPrimary, pairs, `round ${round}, restarted primary`);
      for (const [label, last] of acknowledged) {
        const name = pairs.get(label)!.names.find((candidate) => onPrimary.has(candidate))!;
        const generation = onPrimary.get(name)!.generation;
        assert.ok(name === last.name ? generation === last.generation : generation > last.generation, `round ${round}: ${label} is at ${name} generation ${generation}, not its acknowledged state or a later one`);
        acknowledged.set(label, { name, generation });
      }
      await waitForConvergence(cluster, restartedAt);
      for (const [index, root] of cluster.allRoots().entries()) {
        assertOneOfEach(await heldOnDisk(root, 'crash'), pairs, `round ${round}, ${index === 0 ? 'the primary' : `replica ${index}`} after catch-up`);
      }
    }
    await assertIdenticalCopies(cluster);
    console.log(`      ${renamed} renames acknowledged, ${cut} cut off by the kills; every node held each file under exactly one name throughout`);
  });
});
