import * as assert from 'assert';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { ClusterStatus, DfsError } from '../../server/protocol';
import { DfsClient } from '../../server/client/dfs-client';
import { TestCluster } from '../support/cluster';
import { waitFor } from '../support/wait';

/**
 * Links planted in data folders (a folder or a file replaced by a symbolic link,
 * pointing outside the data folder or inside it) never lead to a write, read or
 * delete outside: every test checks the bytes outside are untouched and the link is
 * still there, left alone.
 */

async function snapshot(dir: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  const walk = async (folder: string, prefix: string): Promise<void> => {
    for (const entry of await fs.readdir(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) {
        await walk(full, `${prefix}${entry.name}/`);
      } else {
        result[prefix + entry.name] = createHash('sha256').update(await fs.readFile(full)).digest('hex');
      }
    }
  };
  await walk(dir, '');
  return result;
}

async function isLink(file: string): Promise<boolean> {
  return (await fs.lstat(file)).isSymbolicLink();
}

describe('containment: nothing goes through a symbolic link in a data folder', function () {
  this.timeout(60_000);
  let cluster: TestCluster;
  let outside: string;
  let before: Record<string, string>;

  beforeEach(async () => {
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', args: ['--sync-interval', '200'] });
    outside = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-outside-'));
    await fs.writeFile(path.join(outside, 'x'), 'outside x');
    await fs.writeFile(path.join(outside, 'passwd'), 'not yours');
    before = await snapshot(outside);
  });

  afterEach(async () => {
    try {
      assert.deepStrictEqual(await snapshot(outside), before, 'the folder outside the data folder was changed');
    } finally {
      await cluster.destroy();
      await fs.rm(outside, { recursive: true, force: true });
    }
  });

  it('an upload into a folder that is a link (outside, or inside the data folder) is refused before any byte; the link stays', async () => {
    const client = cluster.client('alice');
    await client.upload('real/a.txt', [Buffer.from('a')], 1);
    await fs.mkdir(path.join(cluster.primaryRoot(), 'alice'), { recursive: true });
    await fs.symlink(outside, path.join(cluster.primaryRoot(), 'alice', 'docs'));
    await fs.symlink(path.join(cluster.primaryRoot(), 'alice', 'real'), path.join(cluster.primaryRoot(), 'alice', 'alias'));
    for (const name of ['docs/x', 'docs/new.txt', 'alias/b.txt']) {
      await assert.rejects(client.upload(name, [Buffer.from('through the link')], 16), (error: unknown) => {
        assert.ok(error instanceof DfsError && error.code === 'STORAGE', String(error));
        assert.match(error.message, /symbolic link in this node's data folder, which is never followed/);
        return true;
      });
    }
    assert.ok(await isLink(path.join(cluster.primaryRoot(), 'alice', 'docs')));
    assert.deepStrictEqual(await fs.readdir(path.join(cluster.primaryRoot(), 'alice', 'real')), ['a.txt']);
    assert.ok(cluster.primary.output.some((line) => /refused alice\/docs\/x: alice\/docs is a symbolic link/.test(line)), cluster.primary.output.join('\n'));
  });

  it('a file replaced by a link is never read, overwritten or deleted through it', async () => {
    const client = cluster.client('bob');
    await client.upload('secret.txt', [Buffer.from('stored')], 6);
    const stored = path.join(cluster.primaryRoot(), 'bob', 'secret.txt');
    await fs.rm(stored);
    await fs.symlink(path.join(outside, 'passwd'), stored);
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The primary never serves the link's target: it repairs from a replica (which it
    // cannot place over the link) or refuses; the bytes served, if any, are the stored ones.
    await client.download('secret.txt', sink).then(
      () => assert.strictEqual(Buffer.concat(chunks).toString(), 'stored'),
      (error: unknown) => assert.ok(error instanceof DfsError, String(error)),
    );
    assert.ok(!Buffer.concat(chunks).toString().includes('not yours'));
    await assert.rejects(client.upload('secret.txt', [Buffer.from('overwrite')], 9), /symbolic link/);
    await client.delete('secret.txt').catch(() => undefined);
    assert.ok(await isLink(stored), 'the link was left alone');
  });

  it('a replica whose folder is a link refuses to store there; the others carry the upload, nothing lands outside', async () => {
    const client = cluster.client('carol');
    await fs.mkdir(path.join(cluster.replicaRoot(0), 'carol'), { recursive: true });
    await fs.symlink(outside, path.join(cluster.replicaRoot(0), 'carol', 'docs'));
    const receipt = await client.upload('docs/x', [Buffer.from('replicated')], 10);
    assert.deepStrictEqual(receipt.replicasBehind, [1]);
    assert.ok(await isLink(path.join(cluster.replicaRoot(0), 'carol', 'docs')));
    for (const index of [1, 2]) {
      assert.strictEqual(await fs.readFile(path.join(cluster.replicaRoot(index), 'carol', 'docs', 'x'), 'utf8'), 'replicated');
    }
  });

  it('a delete through a folder swapped for a link removes nothing outside', async () => {
    const client = cluster.client('dave');
    await client.upload('sub/x', [Buffer.from('inside x')], 8);
    const sub = path.join(cluster.primaryRoot(), 'dave', 'sub');
    await fs.rm(sub, { recursive: true });
    await fs.symlink(outside, sub);
    await client.delete('sub/x').catch(() => undefined);
    assert.ok(await isLink(sub));
    assert.strictEqual(await fs.readFile(path.join(outside, 'x'), 'utf8'), 'outside x');
    assert.deepStrictEqual((await client.files()).map((file) => file.name), [], 'the delete itself stands');
  });

  it('older versions are never kept through a link in the versions folder, and a restart leaves links alone', async () => {
    const client = cluster.client('erin');
    await fs.mkdir(path.join(cluster.primaryRoot(), '.dfs', 'versions'), { recursive: true });
    await fs.symlink(outside, path.join(cluster.primaryRoot(), '.dfs', 'versions', 'erin'));
    await client.upload('v.txt', [Buffer.from('one')], 3);
    await client.upload('v.txt', [Buffer.from('two')], 3);
    const sink = new PassThrough();
    sink.resume();
    assert.strictEqual((await client.download('v.txt', sink)).generation, (await client.files())[0].generation);
    await cluster.restartPrimary();
    await waitFor(async () => (await client.files().catch(() => []))[0]?.name === 'v.txt', 'the primary to serve again');
    assert.ok(await isLink(path.join(cluster.primaryRoot(), '.dfs', 'versions', 'erin')));
    assert.ok(cluster.primary.output.some((line) => /versions\/erin is not a folder of older versions: left alone/.test(line)), cluster.primary.output.join('\n'));
  });
  it("a replica's folder swapped for a link: its delete, scrub and catch-up never go through it", async () => {
    const client = cluster.client('frank');
    await client.upload('docs/x', [Buffer.from('inside x')], 8);
    const docs = path.join(cluster.replicaRoot(1), 'frank', 'docs');
    await fs.rm(docs, { recursive: true });
    await fs.symlink(outside, docs);
    // The scrub finds the replica's copy missing and catch-up tries to put it back: never through the link.
    const report = await client.scrub();
    assert.strictEqual(report.unrecoverable.length, 0);
    await waitFor(
      async () => (((await client.status()) as ClusterStatus).replicas[1]!.failing ?? []).some((entry) => entry.name === 'docs/x' && /frank\/docs is a symbolic link/.test(entry.reason)),
      "the primary's status to show the replica refusing the link",
      15_000,
    );
    assert.strictEqual(cluster.primary.output.filter((line) => /could not settle frank\/docs\/x/.test(line)).length, 1, 'a failure repeated on every pass is logged once');
    await client.delete('docs/x');
    const deletedAt = Date.now();
    await waitFor(
      async () => {
        const replica = ((await client.status()) as ClusterStatus).replicas[1]!;
        return (replica.lastSyncMs ?? 0) > deletedAt || (replica.failing ?? []).some((entry) => entry.name === 'docs/x');
      },
      'a catch-up pass over the replica after the delete',
      15_000,
    );
    assert.ok(await isLink(docs), 'the link was left alone');
    assert.strictEqual(await fs.readFile(path.join(outside, 'x'), 'utf8'), 'outside x');
    assert.deepStrictEqual((await client.files()).map((file) => file.name), []);
  });

  it("a replica's file replaced by a link: it never serves, scrubs through, overwrites or deletes the link's target", async () => {
    const client = cluster.client('hal');
    await client.upload('f.txt', [Buffer.from('stored')], 6);
    const stored = path.join(cluster.replicaRoot(2), 'hal', 'f.txt');
    await fs.rm(stored);
    await fs.symlink(path.join(outside, 'passwd'), stored);
    const fromReplica = new DfsClient({ host: '127.0.0.1', port: cluster.replicas[2]!.port, clientId: 'hal' });
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (chunk: Buffer) => chunks.push(chunk));
    assert.deepStrictEqual((await client.scrub()).replicaCorrupted['3'], 1, 'the scrub counts the copy as damaged');
    await assert.rejects(fromReplica.download('f.txt', sink), (error: unknown) => error instanceof DfsError);
    assert.ok(!Buffer.concat(chunks).toString().includes('not yours'));
    const second = await client.upload('f.txt', [Buffer.from('second')], 6);
    assert.deepStrictEqual(second.replicasBehind, [3], 'the replica refuses to write over the link');
    await client.delete('f.txt');
    const deletedAt = Date.now();
    await waitFor(
      async () => {
        const replica = ((await client.status()) as ClusterStatus).replicas[2]!;
        return (replica.lastSyncMs ?? 0) > deletedAt || (replica.failing ?? []).some((entry) => entry.name === 'f.txt');
      },
      'a catch-up pass over the replica after the delete',
      15_000,
    );
    assert.ok(await isLink(stored), 'the link was left alone');
  });

  it('a folder swapped for a link and back while uploads into it run never lets a byte out', async () => {
    const client = cluster.client('gina');
    await client.upload('race/seed', [Buffer.from('seed')], 4);
    const race = path.join(cluster.primaryRoot(), 'gina', 'race');
    const payload = Buffer.alloc(64 * 1024, 0x61);
    let swapping = true;
    const swapper = (async () => {
      let swaps = 0;
      while (swapping) {
        // The primary may make the folder again at any moment: each step tolerates that.
        await fs.rename(race, `${race}.away-${swaps}`).catch(() => undefined);
        const planted = await fs.symlink(outside, race).then(
          () => true,
          () => false,
        );
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (planted) {
          await fs.unlink(race);
          swaps++;
        }
      }
      return swaps;
    })();
    const outcomes = { stored: 0, refused: 0 };
    try {
      for (let round = 0; round < 40; round++) {
        await Promise.all(
          ['x', 'passwd', `new-${round}`].map((name) =>
            client.upload(`race/${name}`, [payload], payload.length).then(
              () => outcomes.stored++,
              (error: unknown) => {
                assert.ok(error instanceof DfsError, String(error));
                outcomes.refused++;
              },
            ),
          ),
        );
      }
    } finally {
      swapping = false;
    }
    const swaps = await swapper;
    assert.ok(swaps > 0 && outcomes.stored + outcomes.refused === 120, JSON.stringify({ swaps, ...outcomes }));
    assert.ok(!(await fs.lstat(race).then((stat) => stat.isSymbolicLink(), () => false)), 'the last link planted was removed by the test, not followed');
    // What the afterEach checks is the point: the folder outside is byte for byte as it was.
  });
});
