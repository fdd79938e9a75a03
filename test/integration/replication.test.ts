import * as assert from 'assert';
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TestCluster, storedFiles } from '../support/cluster';

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

async function tempFile(data: Buffer, name = 'upload.bin'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-src-'));
  const file = path.join(dir, name);
  await fs.writeFile(file, data);
  return file;
}

async function assertEverywhere(cluster: TestCluster, clientId: string, name: string, data: Buffer): Promise<void> {
  for (const root of cluster.allRoots()) {
    const stored = await fs.readFile(path.join(root, clientId, name));
    assert.strictEqual(sha(stored), sha(data), `${name} differs under ${root}`);
  }
}

for (const replicas of [3, 5]) {
  describe(`replication to ${replicas} replicas`, () => {
    let cluster: TestCluster;

    before(async () => {
      cluster = await TestCluster.start({ replicas });
    });

    after(async () => {
      await cluster.destroy();
    });

    it('stores byte-identical copies on the primary and every replica', async () => {
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const receipt = await cluster.client('alice').uploadFile(await tempFile(data), 'data/blob.bin');
      assert.strictEqual(receipt.sha256, sha(data));
      assert.strictEqual(receipt.copies, replicas + 1);
      await assertEverywhere(cluster, 'alice', 'data/blob.bin', data);
      const [record] = await cluster.client('alice').files();
      assert.deepStrictEqual([record.name, record.size, record.sha256, record.copies], ['data/blob.bin', data.length, sha(data), replicas + 1]);
    });
  });
}

describe('the primary serves many clients at once', () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start({ replicas: 3 });
  });

  after(async () => {
    await cluster.destroy();
  });

  it('16 clients uploading at once all succeed, every copy intact', async () => {
    const uploads = await Promise.all(
      Array.from({ length: 16 }, async (_, index) => {
        const data = randomBytes(256 * 1024 + index);
        const file = await tempFile(data, `f${index}.bin`);
        const receipt = await cluster.client(`client${index}`).uploadFile(file, `f${index}.bin`);
        return { index, data, receipt };
      }),
    );
    for (const { index, data, receipt } of uploads) {
      assert.strictEqual(receipt.sha256, sha(data));
      await assertEverywhere(cluster, `client${index}`, `f${index}.bin`, data);
    }
    assert.strictEqual((await cluster.client().clients()).length, 16);
  });

  it('a slow client does not hold up the others (no iterative server)', async () => {
    const { RawClient } = await import('../support/raw-client');
    const slow = await RawClient.connect(cluster.primaryPort);
    await slow.send('UPLOAD slow s.bin 1000\n');
    assert.strictEqual(await slow.recv(), 'SEND_FILE {"replaces":null}\n');
    await slow.send(Buffer.alloc(10));
    const data = randomBytes(1000);
    const receipt = await cluster.client('fast').uploadFile(await tempFile(data), 'fast.bin');
    assert.strictEqual(receipt.sha256, sha(data));
    slow.destroy();
  });

  it('re-uploading a name replaces it in every copy; download verifies; delete removes everywhere', async () => {
    const client = cluster.client('bob');
    await client.uploadFile(await tempFile(Buffer.from('version one')), 'notes.txt');
    const second = Buffer.from('version two, longer');
    await client.uploadFile(await tempFile(second), 'notes.txt');
    await assertEverywhere(cluster, 'bob', 'notes.txt', second);
    const target = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-get-')), 'notes.txt');
    const got = await client.downloadToFile('notes.txt', target);
    assert.strictEqual(got.sha256, sha(second));
    assert.ok((await fs.readFile(target)).equals(second));
    await client.delete('notes.txt');
    for (const root of cluster.allRoots()) {
      assert.deepStrictEqual((await storedFiles(root)).filter((f) => f.startsWith('bob/')), [], root);
    }
    await assert.rejects(client.delete('notes.txt'), /NOT_FOUND|not stored/);
    await assert.rejects(client.downloadToFile('notes.txt', target + '2'), /not stored/);
    await assert.rejects(fs.stat(target + '2'), /ENOENT/);
  });
});
