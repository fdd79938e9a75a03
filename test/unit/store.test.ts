import * as assert from 'assert';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsError, VersionRecord } from '../../server/protocol';
import { DiskStore } from '../../server/storage/disk-store';
import type { Store } from '../../server/storage/store';

const sha = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

function version(name: string, data: string, generation: number, clientId = 'alice'): VersionRecord {
  return { clientId, name, generation, size: Buffer.byteLength(data), sha256: sha(data), mtimeMs: 1_700_000_000_000 + generation };
}

function tombstone(name: string, generation: number, clientId = 'alice'): VersionRecord {
  return { clientId, name, generation, size: 0, sha256: '', mtimeMs: 1_700_000_000_000 + generation, deleted: true };
}

async function put(store: Store, name: string, data: string, generation: number, keep = 2): Promise<string> {
  const staged = await store.stage();
  await staged.write(Buffer.from(data));
  return store.commitVersion(staged, version(name, data, generation), keep);
}

async function readAll(store: Store, name: string, generation?: number): Promise<string> {
  const chunks: Buffer[] = [];
  const { body } = await store.openRead('alice', name, generation);
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString();
}

/** Every file under a store's root outside its own state, as `client/name`. */
async function filesOnDisk(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      if (prefix === '' && entry.name === '.dfs') {
        continue;
      }
      if (entry.isDirectory()) {
        await walk(path.join(dir, entry.name), `${prefix}${entry.name}/`);
      } else {
        found.push(prefix + entry.name);
      }
    }
  };
  await walk(root, '');
  return found.sort();
}

/** The behaviour every Store must have; each implementation runs this suite. */
function describeStore(label: string, create: (root: string) => DiskStore): void {
  describe(`store contract: ${label}`, () => {
    let root: string;
    let store: DiskStore;

    const reopen = async (): Promise<DiskStore> => {
      await store.close();
      store = create(root);
      await store.open();
      return store;
    };

    beforeEach(async () => {
      root = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-store-'));
      store = create(root);
      await store.open();
    });

    afterEach(async () => {
      await store.close();
      await fs.rm(root, { recursive: true, force: true });
    });

    it('keeps staged bytes invisible until committed, then serves them with their generation', async () => {
      const staged = await store.stage();
      await staged.write(Buffer.from('half'));
      assert.deepStrictEqual(store.list('alice'), []);
      await store.commitVersion(staged, version('a.txt', 'half', 4), 2);
      assert.deepStrictEqual(
        store.list('alice').map((file) => [file.name, file.size, file.sha256, file.generation]),
        [['a.txt', 4, sha('half'), 4]],
      );
      assert.strictEqual(await readAll(store, 'a.txt'), 'half');
      assert.strictEqual(await fs.readFile(path.join(root, 'alice', 'a.txt'), 'utf8'), 'half', 'the report layout: a plain file');
    });

    it('leaves nothing behind when a staged write is aborted', async () => {
      const staged = await store.stage();
      await staged.write(Buffer.from('gone'));
      await staged.abort();
      assert.deepStrictEqual(store.all(), []);
      assert.deepStrictEqual(await fs.readdir(path.join(root, '.dfs', 'tmp')), []);
    });

    it('keeps older versions out of the listing, up to `keep` of them, and serves each one', async () => {
      for (const [generation, data] of [[1, 'one'], [3, 'three'], [5, 'five'], [7, 'seven']] as const) {
        assert.strictEqual(await put(store, 'x.txt', data, generation), 'current');
      }
      assert.deepStrictEqual(store.list('alice').map((file) => file.generation), [7]);
      assert.deepStrictEqual(store.versions('alice', 'x.txt').map((kept) => [kept.generation, kept.current]), [[7, true], [5, false], [3, false]]);
      assert.strictEqual(await readAll(store, 'x.txt', 3), 'three');
      assert.deepStrictEqual(await fs.readdir(path.join(root, '.dfs', 'versions', 'alice')).then((names) => names.sort()), ['3', '5']);
      assert.strictEqual(store.usage('alice'), 'seven'.length + 'five'.length + 'three'.length, 'older versions count in the usage');
      await assert.rejects(readAll(store, 'x.txt', 1), (error: unknown) => error instanceof DfsError && error.code === 'NOT_FOUND');
    });

    it('applies versions by generation, whatever order they arrive in', async () => {
      assert.strictEqual(await put(store, 'x.txt', 'newest', 9), 'current');
      assert.strictEqual(await put(store, 'x.txt', 'older', 4), 'history');
      assert.strictEqual(await put(store, 'x.txt', 'newest', 9), 'stale', 'the same version again changes nothing');
      assert.strictEqual(await readAll(store, 'x.txt'), 'newest');
      assert.strictEqual(await readAll(store, 'x.txt', 4), 'older');
    });

    it('a tombstone deletes the file and its older versions; nothing older than it comes back', async () => {
      await put(store, 'x.txt', 'one', 1);
      await put(store, 'x.txt', 'two', 2);
      assert.strictEqual(await store.commitTombstone(tombstone('x.txt', 3)), 'current');
      assert.deepStrictEqual(store.list('alice'), []);
      assert.strictEqual(store.current('alice', 'x.txt')?.deleted, true);
      assert.deepStrictEqual(await filesOnDisk(root), []);
      assert.deepStrictEqual(await fs.readdir(path.join(root, '.dfs', 'versions', 'alice')), []);
      assert.strictEqual(await put(store, 'x.txt', 'stale', 2), 'stale');
      assert.deepStrictEqual(store.list('alice'), []);
      assert.strictEqual(await put(store, 'x.txt', 'reborn', 4), 'current');
      assert.strictEqual(await readAll(store, 'x.txt'), 'reborn');
    });

    it('stores nested names as folders and prunes them when the file goes', async () => {
      await put(store, 'docs/sub/b.md', 'b', 1);
      assert.strictEqual(await fs.readFile(path.join(root, 'alice', 'docs', 'sub', 'b.md'), 'utf8'), 'b');
      await store.commitTombstone(tombstone('docs/sub/b.md', 2));
      assert.deepStrictEqual(await fs.readdir(path.join(root, 'alice')), []);
    });

    it('refuses early a name whose folder is a file, or a file where a folder holds files', async () => {
      await put(store, 'a', 'file', 1);
      await put(store, 'd/inner', 'x', 2);
      assert.throws(() => store.assertCanStore('alice', 'a/b'), (error: unknown) => error instanceof DfsError && error.code === 'CONFLICT' && /a is a file/.test(error.message));
      assert.throws(() => store.assertCanStore('alice', 'd'), (error: unknown) => error instanceof DfsError && error.code === 'CONFLICT' && /folder of that name/.test(error.message));
      store.assertCanStore('alice', 'ab');
    });

    it('between a file and a folder of one name, the newer generation wins, in either order', async () => {
      await put(store, 'a', 'file a', 3);
      assert.strictEqual(await put(store, 'a/b', 'under a', 2), 'stale', 'older than the file that occupies its folder');
      assert.strictEqual(await put(store, 'a/b', 'under a', 5), 'current');
      assert.strictEqual(store.current('alice', 'a')?.deleted, true, 'the older file was deleted by the newer folder');
      assert.strictEqual(await readAll(store, 'a/b'), 'under a');
      assert.strictEqual(await put(store, 'a', 'file again', 6), 'current');
      assert.strictEqual(store.current('alice', 'a/b')?.deleted, true);
      assert.deepStrictEqual(await filesOnDisk(root), ['alice/a']);
    });

    it('lists clients with counts of their current files, never its own state folder', async () => {
      await put(store, 'a', '12', 1);
      await put(store, 'a', '123', 2);
      const staged = await store.stage();
      await staged.write(Buffer.from('3'));
      await store.commitVersion(staged, version('b', '3', 3, 'bob'), 2);
      assert.deepStrictEqual(store.clients(), [
        { clientId: 'alice', files: 1, bytes: 3 },
        { clientId: 'bob', files: 1, bytes: 1 },
      ]);
    });

    it('rebuilds from its catalog on reopen, with generations, history and tombstones, and empties the staging area', async () => {
      await put(store, 'keep.txt', 'kept', 1);
      await put(store, 'keep.txt', 'kept 2', 2);
      await put(store, 'gone.txt', 'gone', 3);
      await store.commitTombstone(tombstone('gone.txt', 4));
      const staged = await store.stage();
      await staged.write(Buffer.from('crash'));
      await reopen();
      assert.deepStrictEqual(store.list('alice').map((file) => [file.name, file.generation]), [['keep.txt', 2]]);
      assert.deepStrictEqual(store.versions('alice', 'keep.txt').map((kept) => kept.generation), [2, 1]);
      assert.strictEqual(store.current('alice', 'gone.txt')?.generation, 4);
      assert.strictEqual(store.marks.highest, 4);
      assert.deepStrictEqual(await fs.readdir(path.join(root, '.dfs', 'tmp')), []);
      await staged.abort();
    });

    it('finishes at the next open a placement a crash interrupted after the catalog recorded it', async () => {
      await put(store, 'x.txt', 'before', 1);
      // The catalog record is the node's commit; the process dies before the rename.
      const staged = await store.stage();
      await staged.write(Buffer.from('after'));
      await staged.seal();
      await store.catalog.commit([{ kind: 'record', record: version('x.txt', 'after', 2), keep: 2, staged: path.basename((staged as unknown as { file: string }).file) }]);
      assert.strictEqual(await fs.readFile(path.join(root, 'alice', 'x.txt'), 'utf8'), 'before', 'not placed yet');
      await store.close();
      store = create(root);
      const opening = await store.open();
      assert.strictEqual(opening.redone, 1);
      assert.strictEqual(await readAll(store, 'x.txt'), 'after');
      assert.strictEqual(await readAll(store, 'x.txt', 1), 'before', 'the replaced bytes were kept as the older version');
      assert.deepStrictEqual(await fs.readdir(path.join(root, '.dfs', 'tmp')), []);
    });

    it('a crash after recording a folder that displaced a file: the next open clears the file, places the folder\'s file, and starts', async () => {
      await put(store, 'a', 'file a', 1);
      const staged = await store.stage();
      await staged.write(Buffer.from('under a'));
      await staged.seal();
      await store.catalog.commit([
        { kind: 'record', record: tombstone('a', 2), keep: 2 },
        { kind: 'record', record: version('a/b', 'under a', 2), keep: 2, staged: path.basename((staged as unknown as { file: string }).file) },
      ]);
      await store.close();
      store = create(root);
      const opening = await store.open();
      assert.strictEqual(opening.redone, 1);
      assert.strictEqual(await readAll(store, 'a/b'), 'under a');
      assert.deepStrictEqual(await filesOnDisk(root), ['alice/a/b']);
    });

    it('deleting the last file of a folder while another file is stored into it never loses the new file (50 rounds)', async () => {
      for (let round = 0; round < 50; round++) {
        await put(store, `f${round}/old`, 'old', 10 * round + 1);
        const staged = await store.stage();
        await staged.write(Buffer.from('new'));
        await Promise.all([
          store.commitTombstone(tombstone(`f${round}/old`, 10 * round + 2)),
          store.commitVersion(staged, version(`f${round}/new`, 'new', 10 * round + 3), 2),
        ]);
        assert.strictEqual(store.hasBytes('alice', `f${round}/new`, 10 * round + 3), true, `round ${round}`);
        assert.strictEqual(await readAll(store, `f${round}/new`), 'new');
      }
    });

    it('two names under one file, stored at once, both displace it without a failure', async () => {
      for (let round = 0; round < 20; round++) {
        await put(store, `p${round}`, 'a file', 10 * round + 1);
        const [b, c] = [await store.stage(), await store.stage()];
        await b.write(Buffer.from('b'));
        await c.write(Buffer.from('c'));
        await Promise.all([store.commitVersion(b, version(`p${round}/b`, 'b', 10 * round + 2), 2), store.commitVersion(c, version(`p${round}/c`, 'c', 10 * round + 3), 2)]);
        assert.strictEqual(await readAll(store, `p${round}/b`), 'b');
        assert.strictEqual(await readAll(store, `p${round}/c`), 'c');
        assert.strictEqual(store.current('alice', `p${round}`)?.deleted, true);
      }
    });

    it('marks a version whose bytes changed behind its back as damaged, and never serves them', async () => {
      await put(store, 'kept.txt', 'same', 1);
      await put(store, 'edited.txt', 'before', 2);
      // Changed behind the store's back, as an operator or a failing disk could.
      await fs.writeFile(path.join(root, 'alice', 'edited.txt'), 'after!');
      await reopen();
      assert.strictEqual(store.hasBytes('alice', 'kept.txt', 1), true);
      assert.strictEqual(store.hasBytes('alice', 'edited.txt', 2), false);
      assert.strictEqual(store.get('alice', 'edited.txt')?.sha256, sha('before'), 'the catalog, not the disk, says what is stored');
      await assert.rejects(readAll(store, 'edited.txt'), (error: unknown) => error instanceof DfsError && error.code === 'CHECKSUM');
      assert.deepStrictEqual(store.inventory().records.filter((record) => record.damaged).map((record) => record.name), ['edited.txt']);
      const staged = await store.stage();
      await staged.write(Buffer.from('before'));
      await store.commitVersion(staged, version('edited.txt', 'before', 2), 2);
      assert.strictEqual(await readAll(store, 'edited.txt'), 'before', 'the same version with good bytes repairs it');
    });

    it('moves files the catalog does not hold to .dfs/orphans instead of serving or destroying them', async () => {
      await put(store, 'real.txt', 'real', 1);
      await fs.mkdir(path.join(root, 'alice', 'stray'), { recursive: true });
      await fs.writeFile(path.join(root, 'alice', 'stray', 'copied.txt'), 'by hand');
      const opening = await reopen().then(() => store.inventory());
      assert.deepStrictEqual(opening.records.map((record) => record.name), ['real.txt']);
      assert.deepStrictEqual(await filesOnDisk(root), ['alice/real.txt']);
      const orphans = path.join(root, '.dfs', 'orphans');
      const [stamp] = await fs.readdir(orphans);
      assert.strictEqual(await fs.readFile(path.join(orphans, stamp, 'alice', 'stray', 'copied.txt'), 'utf8'), 'by hand');
    });

    it('detects a flipped byte', async () => {
      await put(store, 'a.bin', 'abcdef', 1);
      assert.strictEqual(await store.verify('alice', 'a.bin'), true);
      const file = path.join(root, 'alice', 'a.bin');
      const stat = await fs.stat(file);
      await fs.writeFile(file, 'abcdeX');
      await fs.utimes(file, stat.atime, stat.mtime);
      assert.strictEqual(await store.verify('alice', 'a.bin'), false);
      assert.strictEqual(store.hasBytes('alice', 'a.bin', 1), false);
    });

    const rename = (from: string, to: string, data: string, sourceGeneration: number, generation: number, keep = 2): Promise<string> =>
      store.commitRename(sourceGeneration, tombstone(from, generation), { ...version(to, data, generation), mtimeMs: 1_800_000_000_000 }, keep);

    it('renames in one record: the destination holds the source\'s bytes at the new generation, the source is a tombstone, no copy is made', async () => {
      await put(store, 'a.txt', 'the bytes', 1);
      await put(store, 'a.txt', 'newer bytes', 2);
      const inode = (await fs.stat(path.join(root, 'alice', 'a.txt'))).ino;
      assert.strictEqual(await rename('a.txt', 'dir/b.txt', 'newer bytes', 2, 3), 'current');
      assert.deepStrictEqual(await filesOnDisk(root), ['alice/dir/b.txt']);
      assert.strictEqual((await fs.stat(path.join(root, 'alice', 'dir', 'b.txt'))).ino, inode, 'the file was renamed, not copied');
      assert.strictEqual(await readAll(store, 'dir/b.txt'), 'newer bytes');
      assert.strictEqual(store.current('alice', 'dir/b.txt')?.generation, 3);
      assert.strictEqual(store.current('alice', 'a.txt')?.deleted, true);
      assert.strictEqual(store.current('alice', 'a.txt')?.generation, 3);
      assert.deepStrictEqual(store.versions('alice', 'a.txt'), [], 'the source\'s older versions go with it');
      assert.deepStrictEqual(await fs.readdir(path.join(root, '.dfs', 'tmp')), []);
      const journal = (await fs.readdir(path.join(root, '.dfs', 'catalog'))).filter((name) => name.startsWith('journal-'));
      const lines = (await fs.readFile(path.join(root, '.dfs', 'catalog', journal[0]), 'utf8')).split('\n').filter((line) => line.includes('dir/b.txt') && !line.startsWith('{"f":'));
      assert.strictEqual(lines.length, 1, 'one journal line (beside fingerprints, which a crash may lose) holds both names');
      assert.ok(lines[0].startsWith('{"a":') && lines[0].includes('"a.txt"'), lines[0]);
      await reopen();
      assert.deepStrictEqual(await filesOnDisk(root), ['alice/dir/b.txt']);
      assert.strictEqual(await readAll(store, 'dir/b.txt'), 'newer bytes');
      assert.strictEqual(store.get('alice', 'a.txt'), undefined);
    });

    it('a rename over an existing file keeps the replaced version as history; a retry of an applied rename changes nothing', async () => {
      await put(store, 'a.txt', 'from a', 1);
      await put(store, 'b.txt', 'old b', 2);
      await rename('a.txt', 'b.txt', 'from a', 1, 3);
      assert.deepStrictEqual(await filesOnDisk(root), ['alice/b.txt']);
      assert.deepStrictEqual(store.versions('alice', 'b.txt').map((info) => info.generation), [3, 2]);
      assert.strictEqual(await readAll(store, 'b.txt', 2), 'old b');
      assert.strictEqual(await rename('a.txt', 'b.txt', 'from a', 1, 3), 'stale');
      // A replica told again no longer holds the source, so it cannot name its bytes.
      assert.strictEqual(await store.commitRename(1, tombstone('a.txt', 3), { ...version('b.txt', '', 3), size: 0, sha256: '' }, 2), 'stale');
      assert.strictEqual(await readAll(store, 'b.txt'), 'from a');
    });

    it('refuses a rename whose source version it does not hold intact, or whose destination is a folder, changing nothing', async () => {
      await put(store, 'a.txt', 'a', 1);
      await put(store, 'd/x.txt', 'x', 2);
      await assert.rejects(rename('a.txt', 'b.txt', 'a', 7, 3), (error: DfsError) => error.code === 'NOT_FOUND');
      await assert.rejects(rename('a.txt', 'd', 'a', 1, 4), (error: DfsError) => error.code === 'CONFLICT');
      await assert.rejects(rename('a.txt', 'd/x.txt/y', 'a', 1, 5), (error: DfsError) => error.code === 'CONFLICT');
      assert.deepStrictEqual(await filesOnDisk(root), ['alice/a.txt', 'alice/d/x.txt']);
      assert.deepStrictEqual(await fs.readdir(path.join(root, '.dfs', 'tmp')), []);
      assert.strictEqual(store.current('alice', 'b.txt'), undefined);
    });

    it('a crash after the rename\'s record, before its files moved, is finished at the next open: the new state, never both names', async () => {
      await put(store, 'a.txt', 'crash bytes', 1);
      await store.close();
      // What the node leaves when it dies right after its journal took the record: the
      // source linked into the staging folder, the record naming that link, no file moved.
      await fs.link(path.join(root, 'alice', 'a.txt'), path.join(root, '.dfs', 'tmp', 'crashed-rename'));
      const [journal] = (await fs.readdir(path.join(root, '.dfs', 'catalog'))).filter((name) => name.startsWith('journal-'));
      const line = { a: [{ r: tombstone('a.txt', 2), k: 0 }, { r: version('moved/b.txt', 'crash bytes', 2), k: 2, s: 'crashed-rename' }] };
      await fs.appendFile(path.join(root, '.dfs', 'catalog', journal), JSON.stringify(line) + '\n');
      store = create(root);
      const opening = await store.open();
      assert.strictEqual(opening.redone, 1);
      assert.deepStrictEqual(await filesOnDisk(root), ['alice/moved/b.txt']);
      assert.strictEqual(await readAll(store, 'moved/b.txt'), 'crash bytes');
      assert.strictEqual(store.get('alice', 'a.txt'), undefined);
      assert.deepStrictEqual(await fs.readdir(path.join(root, '.dfs', 'tmp')), []);
    });

    it('a crash before the rename\'s record (the link made, the record torn) leaves the old state, never neither', async () => {
      await put(store, 'a.txt', 'still here', 1);
      await store.close();
      await fs.link(path.join(root, 'alice', 'a.txt'), path.join(root, '.dfs', 'tmp', 'unrecorded-rename'));
      const [journal] = (await fs.readdir(path.join(root, '.dfs', 'catalog'))).filter((name) => name.startsWith('journal-'));
      const line = JSON.stringify({ a: [{ r: tombstone('a.txt', 2), k: 0 }, { r: version('b.txt', 'still here', 2), k: 2, s: 'unrecorded-rename' }] });
      await fs.appendFile(path.join(root, '.dfs', 'catalog', journal), line.slice(0, line.length - 20));
      store = create(root);
      await store.open();
      assert.deepStrictEqual(await filesOnDisk(root), ['alice/a.txt']);
      assert.strictEqual(await readAll(store, 'a.txt'), 'still here');
      assert.strictEqual(store.current('alice', 'b.txt'), undefined);
      assert.strictEqual(store.current('alice', 'a.txt')?.generation, 1);
      assert.deepStrictEqual(await fs.readdir(path.join(root, '.dfs', 'tmp')), []);
    });

    it('refuses paths outside the client folder', async () => {
      const staged = await store.stage();
      await assert.rejects(store.commitVersion(staged, version('../escape', '', 1), 0), DfsError);
      await assert.rejects(store.commitVersion(staged, { ...version('x', '', 1), clientId: '..' }, 0), DfsError);
      await staged.abort();
    });
  });
}

describeStore('DiskStore', (root) => new DiskStore(root));
describeStore('DiskStore without fsync', (root) => new DiskStore(root, { durable: false }));
