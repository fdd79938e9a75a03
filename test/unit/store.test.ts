import * as assert from 'assert';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsError } from '../../server/protocol';
import { DiskStore } from '../../server/storage/disk-store';
import type { Store } from '../../server/storage/store';

const sha = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

async function put(store: Store, clientId: string, name: string, data: string): Promise<void> {
  const staged = await store.stage();
  await staged.write(Buffer.from(data));
  await store.commit(staged, clientId, name, sha(data));
}

async function readAll(store: Store, clientId: string, name: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.openRead(clientId, name)) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString();
}

/** The behaviour every Store must have; each implementation runs this suite. */
function describeStore(label: string, create: (root: string) => Store): void {
  describe(`store contract: ${label}`, () => {
    let root: string;
    let store: Store;

    beforeEach(async () => {
      root = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-store-'));
      store = create(root);
      await store.open();
    });

    afterEach(async () => {
      await store.close();
      await fs.rm(root, { recursive: true, force: true });
    });

    it('keeps staged bytes invisible until committed', async () => {
      const staged = await store.stage();
      await staged.write(Buffer.from('half'));
      assert.deepStrictEqual(store.list('alice'), []);
      await store.commit(staged, 'alice', 'a.txt', sha('half'));
      assert.deepStrictEqual(
        store.list('alice').map((f) => [f.name, f.size, f.sha256]),
        [['a.txt', 4, sha('half')]],
      );
      assert.strictEqual(await readAll(store, 'alice', 'a.txt'), 'half');
    });

    it('leaves nothing behind when a staged write is aborted', async () => {
      const staged = await store.stage();
      await staged.write(Buffer.from('gone'));
      await staged.abort();
      assert.deepStrictEqual(store.all(), []);
      assert.deepStrictEqual(await fs.readdir(path.join(store.root, '.dfs', 'tmp')), []);
    });

    it('replaces an existing name with the new bytes', async () => {
      await put(store, 'alice', 'a.txt', 'old');
      await put(store, 'alice', 'a.txt', 'newer');
      assert.strictEqual(await readAll(store, 'alice', 'a.txt'), 'newer');
      assert.strictEqual(store.get('alice', 'a.txt')?.sha256, sha('newer'));
    });

    it('stores nested names as folders and prunes them on removal', async () => {
      await put(store, 'alice', 'docs/sub/b.md', 'b');
      assert.strictEqual(await fs.readFile(path.join(store.root, 'alice', 'docs', 'sub', 'b.md'), 'utf8'), 'b');
      assert.strictEqual(await store.remove('alice', 'docs/sub/b.md'), true);
      assert.strictEqual(await store.remove('alice', 'docs/sub/b.md'), false);
      assert.deepStrictEqual(await fs.readdir(path.join(store.root, 'alice')), []);
    });

    it('refuses a name whose folder is a file, keeping the file', async () => {
      await put(store, 'alice', 'a', 'file');
      const staged = await store.stage();
      await staged.write(Buffer.from('x'));
      await assert.rejects(store.commit(staged, 'alice', 'a/b', sha('x')), (error: unknown) => error instanceof DfsError && error.code === 'CONFLICT');
      await staged.abort();
      assert.strictEqual(await readAll(store, 'alice', 'a'), 'file');
    });

    it('lists clients with counts, never its own state folder', async () => {
      await put(store, 'alice', 'a', '12');
      await put(store, 'bob', 'b', '3');
      assert.deepStrictEqual(store.clients(), [
        { clientId: 'alice', files: 1, bytes: 2 },
        { clientId: 'bob', files: 1, bytes: 1 },
      ]);
    });

    it('rebuilds its index on reopen and empties the staging area', async () => {
      await put(store, 'alice', 'keep.txt', 'kept');
      const staged = await store.stage();
      await staged.write(Buffer.from('crash'));
      const reopened = create(root);
      await reopened.open();
      assert.deepStrictEqual(reopened.list('alice').map((f) => [f.name, f.sha256]), [['keep.txt', sha('kept')]]);
      assert.deepStrictEqual(await fs.readdir(path.join(reopened.root, '.dfs', 'tmp')), []);
      await staged.abort();
      await reopened.close();
    });

    it('trusts a remembered checksum only while the bytes are unchanged', async () => {
      await put(store, 'alice', 'kept.txt', 'same');
      await put(store, 'alice', 'edited.txt', 'before');
      // Changed behind the store's back, as an operator or a crash mid-rename could.
      await fs.writeFile(path.join(store.root, 'alice', 'edited.txt'), 'after!');
      await store.close();
      const reopened = create(root);
      await reopened.open();
      assert.strictEqual(reopened.get('alice', 'kept.txt')?.sha256, sha('same'));
      assert.strictEqual(reopened.get('alice', 'edited.txt')?.sha256, sha('after!'));
      await reopened.close();
      store = create(root);
      await store.open();
    });

    it('detects a flipped byte', async () => {
      await put(store, 'alice', 'a.bin', 'abcdef');
      assert.strictEqual(await store.verify('alice', 'a.bin'), true);
      const file = path.join(store.root, 'alice', 'a.bin');
      const stat = await fs.stat(file);
      await fs.writeFile(file, 'abcdeX');
      await fs.utimes(file, stat.atime, stat.mtime);
      assert.strictEqual(await store.verify('alice', 'a.bin'), false);
    });

    it('refuses paths outside the client folder', async () => {
      const staged = await store.stage();
      await assert.rejects(store.commit(staged, 'alice', '../escape', sha('')), DfsError);
      await assert.rejects(store.commit(staged, '..', 'x', sha('')), DfsError);
      await staged.abort();
    });
  });
}

describeStore('DiskStore', (root) => new DiskStore(root));
describeStore('DiskStore without fsync', (root) => new DiskStore(root, { durable: false }));
