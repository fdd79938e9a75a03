import * as assert from 'assert';
import { DebounceQueue, Timers } from '../../extension/sync/debounce-queue';
import { isDownloadInProgress } from '../../extension/sync/local-scan';
import { firstSyncQuestion, syncStatusView } from '../../extension/sync/sync-messages';
import {
  BaselineEntry,
  LocalEntry,
  StoredEntry,
  SyncAction,
  nameInMapping,
  needsConfirmation,
  planSync,
  storedName,
  summarizePlan,
} from '../../extension/sync/sync-plan';

const A: LocalEntry = { size: 1, sha256: 'a' };
const B: LocalEntry = { size: 2, sha256: 'b' };
const C: LocalEntry = { size: 3, sha256: 'c' };
const at = (entry: LocalEntry, generation: number): StoredEntry & BaselineEntry => ({ ...entry, generation });

/** One name's plan, from its three states (undefined: absent on that side). */
function one(local: LocalEntry | undefined, stored: StoredEntry | undefined, base: BaselineEntry | undefined, propagateDeletes = false): SyncAction | undefined {
  const map = <T>(value: T | undefined): Map<string, T> => new Map(value ? [['f', value]] : []);
  const actions = planSync({ local: map(local), stored: map(stored), baseline: map(base), propagateDeletes });
  assert.ok(actions.length <= 1);
  return actions[0];
}

describe('sync plan: the three-way comparison of local, stored and last synced', () => {
  describe('present on both sides', () => {
    it('in step with the baseline: nothing', () => {
      assert.strictEqual(one(A, at(A, 5), at(A, 5)), undefined);
    });
    it('changed here only: upload on the generation last synced', () => {
      assert.deepStrictEqual(one(B, at(A, 5), at(A, 5)), { kind: 'upload', name: 'f', ifGeneration: 5, size: 2 });
    });
    it('changed there only: download the new generation', () => {
      assert.deepStrictEqual(one(A, at(B, 9), at(A, 5)), { kind: 'download', name: 'f', generation: 9, size: 2 });
    });
    it('changed on both sides to different bytes: conflict, neither is overwritten', () => {
      assert.deepStrictEqual(one(C, at(B, 9), at(A, 5)), { kind: 'conflict', name: 'f', conflict: 'bothChanged', storedGeneration: 9 });
    });
    it('changed on both sides to the same bytes: adopt the stored version, nothing sent', () => {
      assert.deepStrictEqual(one(B, at(B, 9), at(A, 5)), { kind: 'adopt', name: 'f', entry: at(B, 9) });
    });
    it('no baseline (first sync), same bytes: adopt', () => {
      assert.deepStrictEqual(one(A, at(A, 3), undefined), { kind: 'adopt', name: 'f', entry: at(A, 3) });
    });
    it('no baseline (first sync), different bytes: conflict', () => {
      assert.deepStrictEqual(one(A, at(B, 3), undefined), { kind: 'conflict', name: 'f', conflict: 'bothChanged', storedGeneration: 3 });
    });
    it('same size but another checksum counts as a change', () => {
      assert.deepStrictEqual(one({ size: 1, sha256: 'z' }, at(A, 5), at(A, 5)), { kind: 'upload', name: 'f', ifGeneration: 5, size: 1 });
    });
  });

  describe('only local', () => {
    it('new here: upload if the name is still absent', () => {
      assert.deepStrictEqual(one(A, undefined, undefined), { kind: 'upload', name: 'f', size: 1 });
      assert.deepStrictEqual(one(A, undefined, undefined, true), { kind: 'upload', name: 'f', size: 1 });
    });
    it('deleted there, unchanged here, deletes off: nothing (the local copy stays)', () => {
      assert.strictEqual(one(A, undefined, at(A, 5)), undefined);
    });
    it('deleted there, unchanged here, deletes on: delete here', () => {
      assert.deepStrictEqual(one(A, undefined, at(A, 5), true), { kind: 'deleteLocal', name: 'f' });
    });
    it('deleted there, changed here, deletes off: upload as a new name', () => {
      assert.deepStrictEqual(one(B, undefined, at(A, 5)), { kind: 'upload', name: 'f', size: 2 });
    });
    it('deleted there, changed here, deletes on: conflict', () => {
      assert.deepStrictEqual(one(B, undefined, at(A, 5), true), { kind: 'conflict', name: 'f', conflict: 'deletedStored' });
    });
  });

  describe('only stored', () => {
    it('new there: download', () => {
      assert.deepStrictEqual(one(undefined, at(A, 4), undefined), { kind: 'download', name: 'f', generation: 4, size: 1 });
      assert.deepStrictEqual(one(undefined, at(A, 4), undefined, true), { kind: 'download', name: 'f', generation: 4, size: 1 });
    });
    it('deleted here, unchanged there, deletes off: nothing (the stored copy stays)', () => {
      assert.strictEqual(one(undefined, at(A, 5), at(A, 5)), undefined);
    });
    it('deleted here, unchanged there, deletes on: DELETE_IF the generation last synced', () => {
      assert.deepStrictEqual(one(undefined, at(A, 5), at(A, 5), true), { kind: 'deleteStored', name: 'f', ifGeneration: 5 });
    });
    it('deleted here, a newer version there: downloaded again, never deleted, deletes on or off', () => {
      assert.deepStrictEqual(one(undefined, at(B, 8), at(A, 5), true), { kind: 'download', name: 'f', generation: 8, size: 2 });
      assert.deepStrictEqual(one(undefined, at(B, 8), at(A, 5), false), { kind: 'download', name: 'f', generation: 8, size: 2 });
    });
  });

  it('gone from both sides: forget the baseline', () => {
    assert.deepStrictEqual(one(undefined, undefined, at(A, 5)), { kind: 'forget', name: 'f' });
    assert.deepStrictEqual(one(undefined, undefined, at(A, 5), true), { kind: 'forget', name: 'f' });
  });

  it('a local rename is a delete of the old name and a new name: propagated as such only with deletes on', () => {
    const input = (propagateDeletes: boolean) => ({
      local: new Map([['new.txt', A]]),
      stored: new Map([['old.txt', at(A, 5)]]),
      baseline: new Map([['old.txt', at(A, 5)]]),
      propagateDeletes,
    });
    assert.deepStrictEqual(planSync(input(true)), [
      { kind: 'upload', name: 'new.txt', size: 1 },
      { kind: 'deleteStored', name: 'old.txt', ifGeneration: 5 },
    ]);
    assert.deepStrictEqual(planSync(input(false)), [{ kind: 'upload', name: 'new.txt', size: 1 }]);
  });

  it('a rename elsewhere arrives as a download of the new name and, with deletes on, a local delete of the old one', () => {
    const input = (propagateDeletes: boolean) => ({
      local: new Map([['old.txt', A]]),
      stored: new Map([['new.txt', at(A, 7)]]),
      baseline: new Map([['old.txt', at(A, 5)]]),
      propagateDeletes,
    });
    assert.deepStrictEqual(planSync(input(true)), [
      { kind: 'download', name: 'new.txt', generation: 7, size: 1 },
      { kind: 'deleteLocal', name: 'old.txt' },
    ]);
    assert.deepStrictEqual(planSync(input(false)), [{ kind: 'download', name: 'new.txt', generation: 7, size: 1 }]);
  });

  it('summarizes counts and bytes, and asks before more than three uploads or any download or delete', () => {
    const uploads = (count: number): SyncAction[] => Array.from({ length: count }, (_, i) => ({ kind: 'upload', name: `u${i}`, size: 10 }) as SyncAction);
    assert.strictEqual(needsConfirmation(summarizePlan(uploads(3))), false);
    assert.strictEqual(needsConfirmation(summarizePlan(uploads(4))), true);
    assert.strictEqual(needsConfirmation(summarizePlan([{ kind: 'download', name: 'd', generation: 1, size: 5 }])), true);
    assert.strictEqual(needsConfirmation(summarizePlan([{ kind: 'deleteStored', name: 'd', ifGeneration: 1 }])), true);
    assert.strictEqual(needsConfirmation(summarizePlan([{ kind: 'deleteLocal', name: 'd' }])), true);
    assert.strictEqual(needsConfirmation(summarizePlan([{ kind: 'conflict', name: 'c', conflict: 'bothChanged', storedGeneration: 2 }])), false);
    assert.deepStrictEqual(summarizePlan([...uploads(2), { kind: 'download', name: 'd', generation: 1, size: 5 }, { kind: 'adopt', name: 'a', entry: at(A, 1) }]), {
      uploads: 2,
      uploadBytes: 20,
      downloads: 1,
      downloadBytes: 5,
      deletesStored: 0,
      deletesLocal: 0,
      conflicts: 0,
    });
  });

  it('maps names inside the folder to stored names under the prefix and back', () => {
    assert.strictEqual(storedName('proj', 'src/a.ts'), 'proj/src/a.ts');
    assert.strictEqual(storedName('', 'a.ts'), 'a.ts');
    assert.strictEqual(nameInMapping('proj', 'proj/src/a.ts'), 'src/a.ts');
    assert.strictEqual(nameInMapping('proj', 'project/a.ts'), undefined, 'a longer folder name is not under the prefix');
    assert.strictEqual(nameInMapping('proj', 'proj'), undefined);
    assert.strictEqual(nameInMapping('', 'x/y'), 'x/y');
  });

  it('recognizes a download\'s temporary file, and only that', () => {
    assert.ok(isDownloadInProgress('.a.txt.dfs-0a1b2c3d'));
    assert.ok(isDownloadInProgress('src/.main.ts.dfs-ffffffff'));
    assert.ok(!isDownloadInProgress('a.txt.dfs-0a1b2c3d'));
    assert.ok(!isDownloadInProgress('.a.txt.dfs-0a1b'));
    assert.ok(!isDownloadInProgress('.env'));
  });
});

/** Timers a test advances by hand: no sleeping, no wall clock. */
class ManualTimers implements Timers {
  now = 0;
  private next = 1;
  private readonly due = new Map<number, { at: number; run: () => void }>();

  set(run: () => void, ms: number): unknown {
    const handle = this.next++;
    this.due.set(handle, { at: this.now + ms, run });
    return handle;
  }

  clear(handle: unknown): void {
    this.due.delete(handle as number);
  }

  get waiting(): number {
    return this.due.size;
  }

  advance(ms: number): void {
    this.now += ms;
    for (const [handle, timer] of [...this.due].sort((a, b) => a[1].at - b[1].at)) {
      if (timer.at <= this.now) {
        this.due.delete(handle);
        timer.run();
      }
    }
  }
}

describe('debounce queue', () => {
  it('collapses several triggers of one key within the delay into one run, after the last one', async () => {
    const timers = new ManualTimers();
    const runs: string[] = [];
    const queue = new DebounceQueue(500, async (key) => void runs.push(key), assert.fail, timers);
    queue.trigger('a');
    timers.advance(400);
    queue.trigger('a');
    timers.advance(400);
    queue.trigger('a');
    timers.advance(499);
    assert.deepStrictEqual(runs, [], 'nothing runs while the key keeps changing');
    assert.strictEqual(queue.pending, 1);
    timers.advance(1);
    await queue.idle();
    assert.deepStrictEqual(runs, ['a']);
    assert.strictEqual(queue.pending, 0);
  });

  it('keeps keys apart', async () => {
    const timers = new ManualTimers();
    const runs: string[] = [];
    const queue = new DebounceQueue(500, async (key) => void runs.push(key), assert.fail, timers);
    queue.trigger('a');
    timers.advance(300);
    queue.trigger('b');
    timers.advance(200);
    await Promise.resolve();
    assert.deepStrictEqual(runs, ['a']);
    timers.advance(300);
    await queue.idle();
    assert.deepStrictEqual(runs, ['a', 'b']);
  });

  it('a trigger while the key runs makes it run once more afterwards, never twice at once', async () => {
    const timers = new ManualTimers();
    let running = 0;
    let most = 0;
    let runs = 0;
    let release!: () => void;
    const queue = new DebounceQueue(
      100,
      async () => {
        running++;
        most = Math.max(most, running);
        runs++;
        if (runs === 1) {
          await new Promise<void>((resolve) => (release = resolve));
        }
        running--;
      },
      assert.fail,
      timers,
    );
    queue.trigger('a');
    timers.advance(100);
    assert.strictEqual(runs, 1);
    queue.trigger('a');
    timers.advance(100);
    queue.trigger('a');
    timers.advance(100);
    assert.strictEqual(runs, 1, 'the second run waits for the first');
    release();
    await queue.idle();
    assert.strictEqual(runs, 2, 'two triggers during the run make one more run');
    assert.strictEqual(most, 1);
  });

  it('reports a failure and goes on', async () => {
    const timers = new ManualTimers();
    const failures: string[] = [];
    const queue = new DebounceQueue(
      10,
      async (key) => {
        if (key === 'bad') {
          throw new Error('boom');
        }
      },
      (key, error) => failures.push(`${key}: ${(error as Error).message}`),
      timers,
    );
    queue.trigger('bad');
    queue.trigger('good');
    timers.advance(10);
    await queue.idle();
    assert.deepStrictEqual(failures, ['bad: boom']);
  });

  it('close drops what waits', async () => {
    const timers = new ManualTimers();
    const runs: string[] = [];
    const queue = new DebounceQueue(10, async (key) => void runs.push(key), assert.fail, timers);
    queue.trigger('a');
    queue.close();
    assert.strictEqual(timers.waiting, 0);
    queue.trigger('b');
    timers.advance(100);
    await queue.idle();
    assert.deepStrictEqual(runs, []);
  });
});

describe('sync messages', () => {
  const summary = { uploads: 0, uploadBytes: 0, downloads: 0, downloadBytes: 0, deletesStored: 0, deletesLocal: 0, conflicts: 0 };

  it('asks a first sync in counts with the right singular or plural and IEC sizes', () => {
    assert.strictEqual(firstSyncQuestion({ ...summary, uploads: 4, uploadBytes: 5 * 1024 * 1024 }, 'proj', 'amy/proj/').message, 'Sync proj with amy/proj/: upload 4 files (5.0 MiB)?');
    const both = firstSyncQuestion({ ...summary, uploads: 1, uploadBytes: 1536, downloads: 1, downloadBytes: 1, conflicts: 2 }, 'proj', 'amy/proj/');
    assert.strictEqual(both.message, 'Sync proj with amy/proj/: upload 1 file (1.5 KiB), download 1 file (1 B) into proj?');
    assert.match(both.detail, /2 files differ on both sides: nothing is overwritten/);
    assert.match(firstSyncQuestion({ ...summary, downloads: 2, downloadBytes: 10, conflicts: 1 }, 'p', 's').detail, /1 file differs on both sides/);
  });

  it('shows conflicts first, then pending, then synced, in the status bar', () => {
    assert.deepStrictEqual(syncStatusView({ pending: 2, synced: 5, conflicts: 1 }, 1).text, '$(warning) DFS sync: 1 conflict');
    assert.ok(syncStatusView({ pending: 2, synced: 5, conflicts: 1 }, 1).warning);
    assert.strictEqual(syncStatusView({ pending: 2, synced: 5, conflicts: 0 }, 1).text, '$(sync~spin) DFS sync: 2 pending');
    assert.strictEqual(syncStatusView({ pending: 0, synced: 1, conflicts: 0 }, 2).text, '$(check) DFS sync: 1 synced');
    assert.match(syncStatusView({ pending: 0, synced: 1, conflicts: 0 }, 2).tooltip, /^2 synced folders: 1 file in step/);
  });
});
