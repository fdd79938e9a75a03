import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import { TestCluster, storedFiles } from '../support/cluster';
import { ExtensionUnderTest, startExtensionOnCluster, stopExtensionOnCluster } from '../support/extension-harness';
import { stopChild } from '../support/processes';
import { FileModifiedSince, ShownMessage, Uri, readAsEditor, saveAsEditor, testing } from '../support/vscode-double';
import { waitFor } from '../support/wait';

const CLIENT = 'editor';
/** The promise: an editor or tree showing a file changed elsewhere updates within this long. */
const LIVE_UPDATE_MS = 2_000;

describe('extension: edit and save in place through the dfs: file system, and live updates', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let work: string;
  let vscodeExtension: ExtensionUnderTest;
  /** Another writer: a separate client of the same files, as a colleague's machine would be. */
  let other: DfsClient;

  const uriOf = (name: string): Uri => Uri.from({ scheme: 'dfs', path: `/${CLIENT}/${name}` });
  const provider = (): Record<string, (...args: any[]) => any> => testing.fileSystems.get('dfs')!.provider;
  const onDisk = (name: string): Promise<string[]> => Promise.all(cluster.allRoots().map((root) => fs.readFile(path.join(root, CLIENT, name), 'utf8').catch(() => '<absent>')));
  const assertEverywhere = async (name: string, text: string): Promise<void> => {
    assert.deepStrictEqual(await onDisk(name), cluster.allRoots().map(() => text), `every server holds ${name} as "${text}"`);
  };
  const generationOf = async (name: string): Promise<number | undefined> => (await other.files()).find((file) => file.name === name)?.generation;
  const store = async (name: string, text: string): Promise<number> => (await other.upload(name, [Buffer.from(text)], Buffer.byteLength(text))).generation;
  /** Answers the next modal with `choice` and records it. */
  const answerNext = (choice: string | undefined): { shown: () => ShownMessage | undefined } => {
    let shown: ShownMessage | undefined;
    testing.answer = (message) => {
      if (!message.modal) {
        return undefined;
      }
      shown = message;
      return choice;
    };
    return { shown: () => shown };
  };
  const nextChange = (uri: Uri, type: number): Promise<number> => {
    const started = Date.now();
    return new Promise((resolve) => {
      const subscription = provider().onDidChangeFile((events: { type: number; uri: Uri }[]) => {
        if (events.some((event) => event.type === type && event.uri.path === uri.path)) {
          subscription.dispose();
          resolve(Date.now() - started);
        }
      });
    });
  };

  before(async () => {
    ({ cluster, work, extension: vscodeExtension } = await startExtensionOnCluster(CLIENT, 'dfs-ext-edit-'));
    other = cluster.client(CLIENT);
  });

  after(async () => {
    await stopExtensionOnCluster({ cluster, work, extension: vscodeExtension });
  });

  afterEach(() => {
    testing.answer = () => undefined;
    testing.textDocuments = [];
  });

  it('is registered writable, and stat() gives the stored version\'s time and exact size', async () => {
    assert.strictEqual(testing.fileSystems.get('dfs')?.options.isReadonly, false);
    await store('stat.txt', 'twelve bytes');
    const stored = (await other.files()).find((file) => file.name === 'stat.txt')!;
    const stat = await provider().stat(uriOf('stat.txt'));
    assert.deepStrictEqual({ mtime: stat.mtime, size: stat.size, type: stat.type, permissions: stat.permissions }, { mtime: stored.mtimeMs, size: 12, type: 1, permissions: undefined });
    const folder = await provider().stat(Uri.from({ scheme: 'dfs', path: `/${CLIENT}` }));
    assert.strictEqual(folder.type, 2);
  });

  it('a save of an opened file lands on every server with a new generation', async () => {
    const before = await store('notes.md', '# notes\n');
    const model = await readAsEditor(uriOf('notes.md'));
    assert.strictEqual(model.content.toString(), '# notes\n');
    await saveAsEditor(model, Buffer.from('# notes\n\nedited in VS Code\n'));
    await assertEverywhere('notes.md', '# notes\n\nedited in VS Code\n');
    const after = await generationOf('notes.md');
    assert.ok(after !== undefined && after > before, `generation ${after} follows ${before}`);
    // Saved again: on the generation it just stored, without a question.
    await saveAsEditor(model, Buffer.from('# notes, twice\n'));
    await assertEverywhere('notes.md', '# notes, twice\n');
    assert.ok(!testing.messages.some((message) => message.modal), 'no save asked anything');
  });

  it('a save over a change VS Code cannot see (same size) is refused by the primary and asks; Cancel keeps the stored version', async () => {
    await store('same.txt', 'version A');
    const model = await readAsEditor(uriOf('same.txt'));
    const theirs = await store('same.txt', 'version B');
    const prompt = answerNext(undefined);
    await assert.rejects(saveAsEditor(model, Buffer.from('mine: edit')), /not saved: editor\/same.txt changed on DFS \(now generation \d+\) after you opened it\. Your changes are still in the editor/);
    assert.match(prompt.shown()?.message ?? '', new RegExp(`"editor/same.txt" changed on DFS after you opened it: generation ${theirs} is stored now`));
    assert.deepStrictEqual(prompt.shown()?.items, ['Compare', 'Overwrite']);
    await assertEverywhere('same.txt', 'version B');
  });

  it('Overwrite stores the buffer over exactly the version the primary named', async () => {
    await store('over.txt', 'version A');
    const model = await readAsEditor(uriOf('over.txt'));
    const theirs = await store('over.txt', 'version B');
    answerNext('Overwrite');
    await saveAsEditor(model, Buffer.from('mine, final'));
    await assertEverywhere('over.txt', 'mine, final');
    assert.ok((await generationOf('over.txt'))! > theirs);
  });

  it('Compare opens the stored version beside the buffer, saves nothing, and the next save stores the buffer over what was compared', async () => {
    await store('cmp.txt', 'version A');
    const model = await readAsEditor(uriOf('cmp.txt'));
    const theirs = await store('cmp.txt', 'version B');
    answerNext('Compare');
    await assert.rejects(saveAsEditor(model, Buffer.from('mine: cmp')), /not saved yet: the diff shows the stored generation \d+ of editor\/cmp.txt \(left\) and yours \(right\)/);
    const diff = testing.diffs.at(-1);
    assert.ok(diff);
    assert.strictEqual(diff.right.path, `/${CLIENT}/cmp.txt`);
    assert.strictEqual(diff.right.query, '', 'the right side is the editor itself');
    assert.strictEqual(diff.left.query, `generation=${theirs}`);
    assert.strictEqual(diff.title, `cmp.txt (stored, generation ${theirs}) ↔ cmp.txt (yours)`);
    assert.strictEqual(Buffer.from(await provider().readFile(diff.left)).toString(), 'version B', 'the left side reads the stored version');
    assert.strictEqual((await provider().stat(diff.left)).permissions, 1, 'the stored side is read-only');
    await assert.rejects(Promise.resolve().then(() => provider().writeFile(diff.left, Buffer.from('x'), { create: true, overwrite: true })), /no permissions: .*kept older version/);
    await assertEverywhere('cmp.txt', 'version B');

    const asked = testing.messages.filter((message) => message.modal).length;
    await saveAsEditor(model, Buffer.from('mine: merged'));
    await assertEverywhere('cmp.txt', 'mine: merged');
    assert.strictEqual(testing.messages.filter((message) => message.modal).length, asked, 'the save after Compare asked nothing');
  });

  it('a change VS Code does see (another size) stops the save in VS Code; its Overwrite then stores over exactly that version, and a change after its check still asks', async () => {
    await store('vs.txt', 'short');
    const model = await readAsEditor(uriOf('vs.txt'));
    await store('vs.txt', 'a longer version, stored elsewhere');
    await assert.rejects(saveAsEditor(model, Buffer.from('mine')), FileModifiedSince, 'stat() is honest: later time, another size');
    await saveAsEditor(model, Buffer.from('mine, overwritten from VS Code'), { ignoreModifiedSince: true });
    await assertEverywhere('vs.txt', 'mine, overwritten from VS Code');
    assert.ok(!testing.messages.some((message) => message.modal && /vs.txt/.test(message.message)), 'VS Code\'s own question was the only one');

    // Between VS Code's check and the write, someone else stores: the primary refuses, the user is asked.
    const prompt = answerNext(undefined);
    await assert.rejects(saveAsEditor(model, Buffer.from('mine, again'), { between: () => store('vs.txt', 'raced in') }), /not saved/);
    assert.match(prompt.shown()?.message ?? '', /"editor\/vs.txt" changed on DFS after you opened it/);
    await assertEverywhere('vs.txt', 'raced in');
  });

  it('another reader of a file whose editor has unsaved changes does not make its stored version the one the save replaces', async () => {
    await store('dirty.txt', 'version A');
    const model = await readAsEditor(uriOf('dirty.txt'));
    testing.textDocuments = [{ uri: uriOf('dirty.txt'), isDirty: true, getText: () => 'mine', save: async () => true }];
    await store('dirty.txt', 'version B');
    assert.strictEqual(Buffer.from(await provider().readFile(uriOf('dirty.txt'))).toString(), 'version B');
    answerNext(undefined);
    await assert.rejects(saveAsEditor(model, Buffer.from('mine')), /not saved/);
    await assertEverywhere('dirty.txt', 'version B');
  });

  it('a file deleted after it was opened asks before saving it again; Save Anyway stores it', async () => {
    await store('gone.txt', 'here');
    const model = await readAsEditor(uriOf('gone.txt'));
    await other.delete('gone.txt');
    const prompt = answerNext('Save Anyway');
    await saveAsEditor(model, Buffer.from('back again'));
    assert.match(prompt.shown()?.message ?? '', /"editor\/gone.txt" was deleted from DFS after you opened it/);
    await assertEverywhere('gone.txt', 'back again');
  });

  it('creates new files (in new folders too), refuses to create over an existing one, and deletes exactly what it showed', async () => {
    const fresh = uriOf('new/deeper/fresh.txt');
    await provider().createDirectory(uriOf('new'));
    await provider().createDirectory(uriOf('new/deeper'));
    assert.strictEqual((await provider().stat(uriOf('new/deeper'))).type, 2, 'a new folder shows until a file is saved in it');
    await provider().writeFile(fresh, Buffer.from('created'), { create: true, overwrite: false });
    await assertEverywhere('new/deeper/fresh.txt', 'created');
    await provider().stat(fresh);
    await assert.rejects(Promise.resolve().then(() => provider().writeFile(fresh, Buffer.from('again'), { create: true, overwrite: false })), /file exists/);

    await provider().stat(fresh);
    await provider().delete(fresh, { recursive: false });
    assert.deepStrictEqual(await onDisk('new/deeper/fresh.txt'), cluster.allRoots().map(() => '<absent>'));
    await assert.rejects(Promise.resolve().then(() => provider().stat(fresh)), /not found/);

    // A version stored after stat() showed one is not deleted blind.
    await store('keep.txt', 'v1');
    await provider().stat(uriOf('keep.txt'));
    await store('keep.txt', 'v2');
    await assert.rejects(Promise.resolve().then(() => provider().delete(uriOf('keep.txt'), { recursive: false })), /was not deleted: it changed on DFS \(now generation \d+\)/);
    await assertEverywhere('keep.txt', 'v2');

    await store('dir/a.txt', 'a');
    await store('dir/b.txt', 'b');
    await provider().stat(uriOf('dir'));
    await assert.rejects(Promise.resolve().then(() => provider().delete(uriOf('dir'), { recursive: false })), /is a folder of 2 files/);
    await provider().delete(uriOf('dir'), { recursive: true });
    for (const root of cluster.allRoots()) {
      assert.ok(!(await storedFiles(root)).some((file) => file.startsWith(`${CLIENT}/dir/`)), `${root} keeps nothing of dir/`);
    }
  });

  it('a file over 50 MiB still asks before it opens in an editor; declining opens nothing', async () => {
    await store('big-in-the-tree.txt', 'small on disk');
    const record = (await other.files()).find((file) => file.name === 'big-in-the-tree.txt')!;
    const opened = testing.opened.length;
    const prompt = answerNext(undefined);
    // The tree's node for it, as if the listing said 60 MiB: the question depends on the size shown, not on the bytes.
    await vscodeExtension.run('dfs.openFile', { kind: 'file', clientId: CLIENT, record: { ...record, size: 60 * 1024 * 1024 } });
    assert.match(prompt.shown()?.message ?? '', /big-in-the-tree.txt is 60(\.0)? Mi?B: opening it reads all of it into memory/);
    assert.deepStrictEqual(prompt.shown()?.items, ['Download...', 'Open Anyway']);
    assert.strictEqual(testing.opened.length, opened, 'nothing opened');
  });

  it('renames on every copy: only the version shown, over an existing name only when asked, folders file by file', async () => {
    await store('old.txt', 'moving');
    await provider().stat(uriOf('old.txt'));
    await provider().rename(uriOf('old.txt'), uriOf('moved/new.txt'), { overwrite: false });
    await assertEverywhere('moved/new.txt', 'moving');
    assert.deepStrictEqual(await onDisk('old.txt'), cluster.allRoots().map(() => '<absent>'));

    await store('taken.txt', 'already here');
    await store('second.txt', 'second');
    await provider().stat(uriOf('second.txt'));
    await assert.rejects(Promise.resolve().then(() => provider().rename(uriOf('second.txt'), uriOf('taken.txt'), { overwrite: false })), /file exists: DFS: editor\/taken.txt exists; nothing was renamed/);
    await provider().stat(uriOf('second.txt'));
    await provider().stat(uriOf('taken.txt'));
    await provider().rename(uriOf('second.txt'), uriOf('taken.txt'), { overwrite: true });
    await assertEverywhere('taken.txt', 'second');

    await store('raced.txt', 'v1');
    await provider().stat(uriOf('raced.txt'));
    await store('raced.txt', 'v2');
    await assert.rejects(Promise.resolve().then(() => provider().rename(uriOf('raced.txt'), uriOf('elsewhere.txt'), { overwrite: false })), /was not renamed: it changed on DFS/);
    await assertEverywhere('raced.txt', 'v2');

    await store('folder/x.txt', 'x');
    await store('folder/sub/y.txt', 'y');
    await provider().stat(uriOf('folder'));
    await provider().rename(uriOf('folder'), uriOf('renamed'), { overwrite: false });
    await assertEverywhere('renamed/x.txt', 'x');
    await assertEverywhere('renamed/sub/y.txt', 'y');
    for (const root of cluster.allRoots()) {
      assert.ok(!(await storedFiles(root)).some((file) => file.startsWith(`${CLIENT}/folder/`)), `${root} keeps nothing under folder/`);
    }
  });

  it(`watch() reports another client's upload and delete within ${LIVE_UPDATE_MS} ms, and the tree redraws`, async () => {
    await store('watched.txt', 'v1');
    const uri = uriOf('watched.txt');
    const model = await readAsEditor(uri);
    assert.strictEqual(model.content.toString(), 'v1');
    const watch = provider().watch(uri, { recursive: false, excludes: [] });
    try {
      const refreshes = testing.treeViews.get('dfs.files')!.refreshes;
      const changed = nextChange(uri, 1);
      await store('watched.txt', 'v2, from elsewhere');
      const changedAfter = await withTimeout(changed, LIVE_UPDATE_MS + 1_000);
      assert.ok(changedAfter <= LIVE_UPDATE_MS, `Changed fired ${changedAfter} ms after the upload`);
      await waitFor(() => testing.treeViews.get('dfs.files')!.refreshes > refreshes, 'the tree to redraw', LIVE_UPDATE_MS);
      assert.strictEqual(Buffer.from(await provider().readFile(uri)).toString(), 'v2, from elsewhere', 'the editor reloads the new version');

      const deleted = nextChange(uri, 3);
      await other.delete('watched.txt');
      const deletedAfter = await withTimeout(deleted, LIVE_UPDATE_MS + 1_000);
      assert.ok(deletedAfter <= LIVE_UPDATE_MS, `Deleted fired ${deletedAfter} ms after the delete`);

    } finally {
      watch.dispose();
    }
  });

  it('with no primary, saving says so and changes nothing, the watch says it is waiting, and it picks up again once a primary is back', async () => {
    await store('late.txt', 'v1');
    const uri = uriOf('late.txt');
    const model = await readAsEditor(uri);
    const watch = provider().watch(uri, { recursive: false, excludes: [] });
    try {
      await stopChild(cluster.primary.child, 'SIGKILL');
      await assert.rejects(saveAsEditor(model, Buffer.from('while down')), (error: Error & { code?: string }) => error.code === 'Unavailable' && /no primary answers/.test(error.message));
      await waitFor(() => testing.output.some((line) => /watching the files of editor for changes failed \(.+\); trying again every 5 s/.test(line)), 'the feed to say it waits', 10_000).catch((error) => {
        throw new Error(`${error.message}; log: ${testing.output.slice(-15).join(' | ')}`);
      });
      await cluster.startPrimary(cluster.primaryPort);
      other = cluster.client(CLIENT);
      const changed = nextChange(uri, 1);
      await store('late.txt', 'v2 after the restart');
      await withTimeout(changed, 15_000);
      assert.ok(testing.output.some((line) => /watching the files of editor for changes again/.test(line)));
    } finally {
      watch.dispose();
    }
  });
});

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

