import * as assert from 'assert';
import { ChangeFeed, ChangeSource, FileChange } from '../../extension/cluster/change-feed';
import { ChangeRecord, Changes, DfsError, FileRecord } from '../../server/protocol';

/** A primary's catalog in memory, answering CHANGES and FILES by their rules. */
class Catalog implements ChangeSource {
  generation = 0;
  states = new Map<string, ChangeRecord>();
  forgottenThrough = 0;
  requests: string[] = [];
  down = false;

  put(name: string): number {
    this.states.set(name, { clientId: 'alice', name, generation: ++this.generation, size: 1, sha256: 'x', mtimeMs: 0 });
    return this.generation;
  }

  remove(name: string): void {
    this.states.set(name, { clientId: 'alice', name, generation: ++this.generation, size: 0, sha256: '', mtimeMs: 0, deleted: true });
  }

  forgetDeletes(): void {
    for (const [name, state] of this.states) {
      if (state.deleted) {
        this.states.delete(name);
        this.forgottenThrough = Math.max(this.forgottenThrough, state.generation);
      }
    }
  }

  async changes(clientId: string, since: number): Promise<Changes> {
    this.requests.push(`CHANGES ${clientId} ${since}`);
    if (this.down) {
      throw new DfsError('UNREACHABLE', 'no primary answers');
    }
    const records = [...this.states.values()].filter((state) => state.generation > since).sort((a, b) => a.generation - b.generation);
    return { header: { through: this.generation, complete: since >= this.forgottenThrough }, records };
  }

  async files(clientId: string): Promise<FileRecord[]> {
    this.requests.push(`FILES ${clientId}`);
    return [...this.states.values()].filter((state) => !state.deleted).map(({ deleted: _deleted, ...file }) => file);
  }
}

describe('change feed: what changed elsewhere, from CHANGES polls', () => {
  let catalog: Catalog;
  let feed: ChangeFeed;
  let seen: FileChange[][];
  let baselines: Map<string, number>[];
  let failures: unknown[];
  let recoveries: number;
  let clock: number;

  beforeEach(() => {
    catalog = new Catalog();
    clock = 0;
    // A long interval: the tests drive every poll with pollNow().
    feed = new ChangeFeed(() => catalog, { intervalMs: 3_600_000, retryMs: 5_000 }, () => clock);
    seen = [];
    baselines = [];
    failures = [];
    recoveries = 0;
    feed.listen({
      changed: (changes) => seen.push([...changes]),
      baseline: (_clientId, known) => baselines.push(new Map(known)),
      failed: (_clientId, error) => failures.push(error),
      recovered: () => recoveries++,
    });
  });

  afterEach(() => feed.dispose());

  const settle = async (): Promise<void> => {
    await new Promise((resolve) => setImmediate(resolve));
  };
  const kinds = (): string[][] => seen.map((batch) => batch.map((change) => `${change.name} ${change.kind}${change.generation ? ` ${change.generation}` : ''}`));

  it('learns a baseline first, then reports creations, changes and deletes name by name', async () => {
    catalog.put('a.txt');
    const handle = feed.watch('alice');
    await settle();
    assert.deepStrictEqual(baselines, [new Map([['a.txt', 1]])]);
    assert.deepStrictEqual(seen, [], 'the baseline is no change');
    catalog.put('b.txt');
    catalog.put('a.txt');
    catalog.remove('b.txt');
    await feed.pollNow();
    assert.deepStrictEqual(kinds(), [['a.txt changed 3']], 'b.txt, created and deleted between two polls, was never there for the watcher');
    catalog.put('c.txt');
    catalog.remove('a.txt');
    await feed.pollNow();
    assert.deepStrictEqual(kinds()[1], ['c.txt created 5', 'a.txt deleted']);
    handle.dispose();
  });

  it('asks from the last "through" each time, and does not report the same generation twice', async () => {
    catalog.put('a.txt');
    feed.watch('alice');
    await settle();
    catalog.put('a.txt');
    await feed.pollNow();
    await feed.pollNow();
    assert.deepStrictEqual(kinds(), [['a.txt changed 2']]);
    assert.deepStrictEqual(catalog.requests, ['CHANGES alice 0', 'CHANGES alice 1', 'CHANGES alice 2']);
  });

  it('reports a delete, and lists every file only when CHANGES says deletes may have been forgotten', async () => {
    catalog.put('a.txt');
    catalog.put('b.txt');
    feed.watch('alice');
    await settle();
    catalog.remove('a.txt');
    await feed.pollNow();
    assert.deepStrictEqual(kinds(), [['a.txt deleted']]);
    catalog.remove('b.txt');
    catalog.put('c.txt');
    catalog.forgetDeletes();
    await feed.pollNow();
    assert.deepStrictEqual(kinds()[1], ['c.txt created 5', 'b.txt deleted'], 'the whole listing shows b.txt went');
    assert.deepStrictEqual(catalog.requests.filter((request) => request.startsWith('FILES')), ['FILES alice'], 'one listing, only when incomplete');
    assert.strictEqual(feed.generationOf('alice', 'c.txt'), 5);
  });

  it('one poll per client however many watch it, none once nobody does', async () => {
    const first = feed.watch('alice');
    const second = feed.watch('alice');
    await settle();
    await feed.pollNow();
    assert.deepStrictEqual(catalog.requests, ['CHANGES alice 0', 'CHANGES alice 0']);
    first.dispose();
    first.dispose();
    assert.deepStrictEqual(feed.watchedClients, ['alice'], 'still watched by the second');
    second.dispose();
    assert.deepStrictEqual(feed.watchedClients, []);
    await feed.pollNow();
    assert.strictEqual(catalog.requests.length, 2, 'nothing asked for a client nobody watches');
  });

  it('keeps what it knew while no primary answers, says so once, waits retryMs, and carries on when one is back', async () => {
    catalog.put('a.txt');
    feed.watch('alice');
    await settle();
    catalog.down = true;
    await feed.pollNow();
    await feed.pollNow();
    assert.strictEqual(failures.length, 1, 'said once per run of failures');
    assert.strictEqual(feed.generationOf('alice', 'a.txt'), 1, 'what was known is kept');
    // The interval's polls respect the retry delay (pollNow does not): nothing asked before it passes.
    const asked = catalog.requests.length;
    catalog.down = false;
    catalog.put('a.txt');
    clock += 5_000;
    await feed.pollNow();
    assert.strictEqual(catalog.requests.length, asked + 1);
    assert.strictEqual(recoveries, 1);
    assert.deepStrictEqual(kinds(), [['a.txt changed 2']]);
  });
});
