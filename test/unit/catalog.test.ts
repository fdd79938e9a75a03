import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsError, VersionRecord } from '../../server/protocol';
import type { Catalog } from '../../server/storage/catalog';
import { JournalCatalog } from '../../server/storage/journal-catalog';

function version(name: string, generation: number, sha = 'a'): VersionRecord {
  return { clientId: 'alice', name, generation, size: generation, sha256: sha.repeat(64), mtimeMs: 1_700_000_000_000 + generation };
}

function tombstone(name: string, generation: number): VersionRecord {
  return { clientId: 'alice', name, generation, size: 0, sha256: '', mtimeMs: 1_700_000_000_000 + generation, deleted: true };
}

/** What a catalog holds, in a form two catalogs can be compared by. */
function dump(catalog: Catalog): unknown {
  return {
    names: [...catalog.index.all()].map(({ clientId, name, state }) => [clientId, name, state]).sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
    marks: { ...catalog.marks },
  };
}

/** The behaviour every Catalog must have; each implementation runs this suite. */
function describeCatalog(label: string, create: (dir: string, compactAfterLines?: number) => JournalCatalog): void {
  describe(`catalog contract: ${label}`, () => {
    let dir: string;
    let catalog: JournalCatalog;

    beforeEach(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-catalog-'));
      catalog = create(dir);
      await catalog.open();
    });

    afterEach(async () => {
      await catalog.close();
      await fs.rm(dir, { recursive: true, force: true });
    });

    const reopen = async (compactAfterLines?: number): Promise<JournalCatalog> => {
      await catalog.close();
      catalog = create(dir, compactAfterLines);
      await catalog.open();
      return catalog;
    };

    it('is created empty with a node id of its own, and keeps it', async () => {
      const nodeId = catalog.marks.nodeId;
      assert.match(nodeId, /^[0-9a-f]{16}$/);
      assert.strictEqual(catalog.marks.synced, -1);
      assert.strictEqual(catalog.marks.completeThrough, -1);
      await reopen();
      assert.strictEqual(catalog.marks.nodeId, nodeId);
    });

    it('applies records by the generation rules and replays them identically', async () => {
      const applied = await catalog.commit([
        { kind: 'record', record: version('x', 5), keep: 2 },
        { kind: 'record', record: version('x', 3, 'b'), keep: 2 },
        { kind: 'record', record: version('y', 6), keep: 2 },
        { kind: 'record', record: tombstone('y', 7), keep: 0 },
        { kind: 'record', record: version('y', 4), keep: 2 },
        { kind: 'marks', marks: { reserved: 100, synced: 6 } },
      ]);
      assert.deepStrictEqual(
        applied.map((change) => change.outcome),
        ['current', 'history', 'current', 'current', 'stale'],
      );
      assert.deepStrictEqual(catalog.index.get('alice', 'x')?.versions.map((kept) => kept.generation), [5, 3]);
      assert.strictEqual(catalog.index.get('alice', 'y')?.versions.length, 0);
      assert.strictEqual(catalog.index.get('alice', 'y')?.tombstone?.generation, 7);
      assert.strictEqual(catalog.marks.highest, 7);
      const before = dump(catalog);
      await reopen();
      assert.deepStrictEqual(dump(catalog), before);
    });

    it('drops a version and a tombstone when told, durably', async () => {
      await catalog.commit([
        { kind: 'record', record: version('x', 1), keep: 3 },
        { kind: 'record', record: version('x', 2), keep: 3 },
        { kind: 'record', record: tombstone('z', 3), keep: 0 },
      ]);
      await catalog.commit([
        { kind: 'drop', clientId: 'alice', name: 'x', generation: 1 },
        { kind: 'drop', clientId: 'alice', name: 'z', generation: 3, tombstone: true },
      ]);
      await reopen();
      assert.deepStrictEqual(catalog.index.get('alice', 'x')?.versions.map((kept) => kept.generation), [2]);
      assert.strictEqual(catalog.index.get('alice', 'z'), undefined);
      assert.strictEqual(catalog.marks.highest, 3, 'the highest generation survives its record');
    });

    it('drops a line torn by a crash and cuts it off, so later appends stay readable', async () => {
      await catalog.commit([{ kind: 'record', record: version('x', 1), keep: 2 }]);
      await catalog.close();
      const [journal] = (await fs.readdir(dir)).filter((name) => name.startsWith('journal-'));
      await fs.appendFile(path.join(dir, journal), '{"r":{"clientId":"alice","name":"torn","gen');
      catalog = create(dir);
      const opening = await catalog.open();
      assert.strictEqual(opening.damagedLines, 0, 'a torn tail is normal after a crash');
      assert.strictEqual(catalog.index.get('alice', 'torn'), undefined);
      await catalog.commit([{ kind: 'record', record: version('after', 2), keep: 2 }]);
      await reopen();
      assert.deepStrictEqual([...catalog.index.all()].map(({ name }) => name).sort(), ['after', 'x']);
    });

    it('refuses to start on a damaged snapshot rather than look like an empty node', async () => {
      await catalog.commit([{ kind: 'record', record: version('x', 1), keep: 2 }]);
      await catalog.close();
      await fs.writeFile(path.join(dir, 'snapshot.jsonl'), 'not json\n');
      catalog = create(dir);
      await assert.rejects(catalog.open(), (error: unknown) => error instanceof DfsError && error.code === 'STORAGE' && /damaged/.test(error.message));
      await fs.rm(path.join(dir, 'snapshot.jsonl'));
      await assert.rejects(create(dir).open(), (error: unknown) => error instanceof DfsError && /no snapshot/.test(error.message));
      catalog = create(path.join(dir, 'fresh'));
      await catalog.open();
    });

    it('a catalog whose creation did not finish is created again at the next open, with what it starts with', async () => {
      const fresh = path.join(dir, 'new');
      await assert.rejects(create(fresh).open(async () => Promise.reject(new Error('killed while hashing the old files'))));
      const again = create(fresh);
      const opening = await again.open(async () => [{ kind: 'record', record: version('legacy', 1), keep: 0 }]);
      assert.strictEqual(opening.created, true);
      assert.deepStrictEqual([...again.index.all()].map(({ name }) => name), ['legacy']);
      await again.close();
      const reopened = create(fresh);
      assert.strictEqual((await reopened.open(async () => assert.fail('not created twice'))).created, false);
      assert.deepStrictEqual([...reopened.index.all()].map(({ name }) => name), ['legacy']);
      await reopened.close();
    });

    it('a damaged line in the middle of the journal voids the node\'s completeness, so its gaps never pass for deletes', async () => {
      await catalog.commit([{ kind: 'marks', marks: { synced: 40, completeThrough: 40 } }]);
      await catalog.commit([{ kind: 'record', record: version('lost', 5), keep: 2 }]);
      await catalog.commit([{ kind: 'record', record: version('kept', 6), keep: 2 }]);
      await catalog.close();
      const [journal] = (await fs.readdir(dir)).filter((name) => name.startsWith('journal-'));
      const lines = (await fs.readFile(path.join(dir, journal), 'utf8')).split('\n');
      const damaged = lines.map((line) => (line.includes('"lost"') ? line.replace('"lost"', '"lo\u0000') : line));
      await fs.writeFile(path.join(dir, journal), damaged.join('\n'));
      catalog = create(dir);
      const opening = await catalog.open();
      assert.strictEqual(opening.damagedLines, 1);
      assert.strictEqual(catalog.index.get('alice', 'lost'), undefined);
      assert.strictEqual(catalog.marks.synced, -1);
      assert.strictEqual(catalog.marks.completeThrough, -1);
      await reopen();
      assert.strictEqual(catalog.marks.synced, -1, 'durably');
    });

    it('a snapshot keeps the staged bytes of a placement not yet confirmed, so a crash after compaction can still finish it', async () => {
      catalog = await reopen(3);
      await catalog.commit([{ kind: 'record', record: version('placing', 1), keep: 2, staged: 'staged-1' }]);
      await catalog.commit([{ kind: 'record', record: version('placed', 2), keep: 2, staged: 'staged-2' }]);
      catalog.note([{ clientId: 'alice', name: 'placed', generation: 2, fingerprint: { ino: 1, size: 2, mtimeMs: 3 } }]);
      for (let index = 0; index < 4; index++) {
        await catalog.commit([{ kind: 'record', record: version(`more${index}`, 10 + index), keep: 2 }]);
      }
      await catalog.settled();
      assert.ok(!(await fs.readdir(dir)).includes('journal-00000001.log'), 'compacted');
      await catalog.close();
      catalog = create(dir);
      const opening = await catalog.open();
      assert.deepStrictEqual([...opening.staged.values()], ['staged-1']);
    });

    it('keeps the bytes a record carries inline, through compaction, until their placement is confirmed', async () => {
      catalog = await reopen(3);
      const unplaced = Buffer.from('small file, placement not confirmed');
      const placed = Buffer.from('small file, placed and confirmed');
      await catalog.commit([{ kind: 'record', record: version('unplaced', 1), keep: 2, inline: unplaced }]);
      await catalog.commit([{ kind: 'record', record: version('placed', 2), keep: 2, inline: placed }]);
      catalog.note([{ clientId: 'alice', name: 'placed', generation: 2, fingerprint: { ino: 1, size: 2, mtimeMs: 3 } }]);
      await catalog.close();
      catalog = create(dir, 3);
      let opening = await catalog.open();
      assert.deepStrictEqual([...opening.inline.values()], [unplaced], 'replayed from the journal: only the unconfirmed bytes are kept');
      for (let index = 0; index < 4; index++) {
        await catalog.commit([{ kind: 'record', record: version(`more${index}`, 10 + index), keep: 2 }]);
      }
      await catalog.settled();
      assert.ok(!(await fs.readdir(dir)).includes('journal-00000001.log'), 'compacted');
      await catalog.close();
      catalog = create(dir);
      opening = await catalog.open();
      assert.deepStrictEqual([...opening.inline.values()], [unplaced], 'the snapshot carries the unconfirmed bytes');
      catalog.note([{ clientId: 'alice', name: 'unplaced', generation: 1, fingerprint: { ino: 4, size: 5, mtimeMs: 6 } }]);
      await catalog.commit([{ kind: 'record', record: version('last', 20), keep: 2 }]);
      await catalog.close();
      catalog = create(dir);
      opening = await catalog.open();
      assert.deepStrictEqual([...opening.inline.values()], [], 'confirmed: forgotten');
    });

    it('writes a snapshot once the journal file passes its byte limit, whatever its line count', async () => {
      await catalog.close();
      catalog = new JournalCatalog(dir, { compactAfterBytes: 64 * 1024, durable: catalog['durable'] as boolean });
      await catalog.open();
      for (let index = 0; index < 4; index++) {
        await catalog.commit([{ kind: 'record', record: version(`big${index}`, index + 1), keep: 0, inline: Buffer.alloc(30 * 1024, index) }]);
      }
      await catalog.settled();
      assert.ok(!(await fs.readdir(dir)).includes('journal-00000001.log'), 'four records of 40 KiB of base64 each passed 64 KiB: compacted');
    });

    it('compacts into a snapshot and the next journal; the state survives, the old journal goes', async () => {
      catalog = await reopen(50);
      for (let batch = 0; batch < 10; batch++) {
        await catalog.commit(Array.from({ length: 10 }, (_, index) => ({ kind: 'record' as const, record: version(`f${index}`, batch * 10 + index + 1), keep: 1 })));
      }
      await catalog.settled();
      const journals = (await fs.readdir(dir)).filter((name) => name.startsWith('journal-'));
      assert.ok(journals.length >= 1 && !journals.includes('journal-00000001.log'), `old journals removed: ${journals.join(', ')}`);
      const before = dump(catalog);
      await reopen();
      assert.deepStrictEqual(dump(catalog), before);
      assert.deepStrictEqual(catalog.index.get('alice', 'f3')?.versions.map((kept) => kept.generation), [94, 84]);
    });

    it('shares syncs between concurrent commits (group commit), each resolving only once on disk', async () => {
      const before = { ...catalog.stats };
      await Promise.all(Array.from({ length: 50 }, (_, index) => catalog.commit([{ kind: 'record', record: version(`g${index}`, index + 1), keep: 0 }])));
      const batches = catalog.stats.batches - before.batches;
      assert.strictEqual(catalog.index.size, 50);
      assert.ok(batches < 50, `50 concurrent commits took ${batches} writes`);
      assert.ok(catalog.stats.syncs - before.syncs <= batches);
      await reopen();
      assert.strictEqual(catalog.index.size, 50);
    });
  });
}

describeCatalog('JournalCatalog', (dir, compactAfterLines) => new JournalCatalog(dir, { compactAfterLines }));
describeCatalog('JournalCatalog without fsync', (dir, compactAfterLines) => new JournalCatalog(dir, { durable: false, compactAfterLines }));
