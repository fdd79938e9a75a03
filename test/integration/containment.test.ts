import * as assert from 'assert';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { DfsError } from '../../server/protocol';
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
});
