import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TestCluster, storedFiles } from '../support/cluster';
import { stopChild } from '../support/processes';
import { ExtensionUnderTest, activateExtension } from '../support/extension-harness';
import { ShownMessage, Uri, testing } from '../support/vscode-double';
import { waitFor } from '../support/wait';

const CLIENT = 'syncer';
const REPLICAS = 2;

/** What the compiled extension's Sync Folder command returns, as far as these tests use it. */
interface SyncerLike {
  status: { pending: number; synced: number; conflicts: number };
  conflicts: { name: string; kind: string }[];
  idle(): Promise<void>;
}

describe('extension: DFS: Sync Folder against real primary and replica processes', function () {
  this.timeout(120_000);

  let work: string;
  let cluster: TestCluster;
  let vscodeExtension: ExtensionUnderTest;
  let workspaceState: Map<string, unknown>;
  let syncer: SyncerLike;
  const project = (): string => path.join(work, 'project');
  const other = () => cluster.client(CLIENT);
  const run = <T>(command: string, ...args: unknown[]): Promise<T> => vscodeExtension.run<T>(command, ...args);

  const activate = (): void => {
    vscodeExtension = activateExtension(
      work,
      { host: '127.0.0.1', port: cluster.primaryPort, clientId: CLIENT, replicas: REPLICAS, basePort: cluster.basePort, dataDir: cluster.dataDir },
      { workspaceState },
    );
  };
  /** Waits until every server (primary and replicas) holds exactly these bytes for a stored name. */
  const onEveryDisk = (name: string, expected: string | Buffer): Promise<boolean> =>
    waitFor(
      async () => {
        for (const root of cluster.allRoots()) {
          const bytes = await fs.readFile(path.join(root, CLIENT, name)).catch(() => undefined);
          if (!bytes?.equals(Buffer.from(expected))) {
            return false;
          }
        }
        return true;
      },
      `${CLIENT}/${name} holding ${JSON.stringify(String(expected).slice(0, 40))} on every server`,
      30_000,
    );
  const onNoDisk = async (name: string): Promise<void> => {
    for (const root of cluster.allRoots()) {
      assert.ok(!(await storedFiles(root)).includes(`${CLIENT}/${name}`), `${root} holds no ${CLIENT}/${name}`);
    }
  };
  const logLine = (pattern: RegExp, from = 0): Promise<string> =>
    waitFor(() => testing.output.slice(from).find((line) => pattern.test(line)), `a DFS log line matching ${pattern}`, 30_000);
  const logLines = (pattern: RegExp, from = 0): string[] => testing.output.slice(from).filter((line) => pattern.test(line));
  const generations = async (name: string): Promise<number> => (await other().versions(name)).length;
  /** Answers the conflict notifications in turn with these buttons. */
  const answerConflicts = (...buttons: string[]): void => {
    testing.answer = (message: ShownMessage) => (message.message.startsWith('DFS sync:') ? buttons.shift() : undefined);
  };
  const syncFolder = async (folder: string, prefix: string, deletes: 'Keep deletes on one side' | 'Propagate deletes', confirm: boolean): Promise<SyncerLike> => {
    testing.inputBox = () => prefix;
    testing.quickPick = (items) => items.find((item) => item.label === deletes);
    testing.answer = (message) => (message.modal && message.message.startsWith('Sync ') ? (confirm ? 'Sync' : undefined) : undefined);
    return run<SyncerLike>('dfs.syncFolder', Uri.file(folder));
  };

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ext-sync-'));
    cluster = await TestCluster.start({ replicas: REPLICAS, dataDir: path.join(work, 'data') });
    workspaceState = new Map();
    activate();
    await testing.waitForStatusBar((text) => text.includes(`DFS ${REPLICAS}/${REPLICAS}`));
  });

  after(async () => {
    await vscodeExtension?.close();
    await cluster?.destroy();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('registers Sync Folder..., Stop Syncing Folder and the status bar click; no sync item while nothing is synced', () => {
    for (const id of ['dfs.syncFolder', 'dfs.stopSyncFolder', 'dfs.showSyncStatus']) {
      assert.ok(testing.commands.has(id), `${id} is registered`);
    }
    assert.ok(!testing.statusBarItems.some((item) => item.visible && item.text.includes('DFS sync')));
  });

  it('a first sync of more than three files asks first, with counts and the total in IEC units; declining transfers and maps nothing', async () => {
    await fs.mkdir(path.join(project(), 'src'), { recursive: true });
    await fs.writeFile(path.join(project(), 'a.txt'), 'alpha\n');
    await fs.writeFile(path.join(project(), 'b.txt'), 'bravo\n');
    await fs.writeFile(path.join(project(), 'c.txt'), 'charlie\n');
    await fs.writeFile(path.join(project(), 'src', 'main.ts'), 'export {};\n');
    await fs.writeFile(path.join(project(), 'src', 'big.bin'), Buffer.alloc(3 * 1024, 7));
    const from = testing.messages.length;
    assert.strictEqual(await syncFolder(project(), 'project', 'Keep deletes on one side', false), undefined);
    const question = testing.messages.slice(from).find((message) => message.modal);
    assert.ok(question, 'a modal question was asked');
    assert.strictEqual(question.message, `Sync project with ${CLIENT}/project/: upload 5 files (3.0 KiB)?`);
    assert.deepStrictEqual(question.items, ['Sync']);
    for (const root of cluster.allRoots()) {
      assert.deepStrictEqual(await storedFiles(root), [], `${root} holds nothing after a declined first sync`);
    }
    assert.deepStrictEqual(workspaceState.get('dfs.syncFolders') ?? [], [], 'no mapping is kept');
    assert.strictEqual(testing.watchers.length, 0, 'no watcher is left running');
  });

  it('confirmed, the first sync uploads every file to every server and the status bar shows them synced', async () => {
    syncer = await syncFolder(project(), 'project', 'Keep deletes on one side', true);
    assert.ok(syncer, 'the folder is mapped');
    for (const [name, content] of [
      ['a.txt', 'alpha\n'],
      ['b.txt', 'bravo\n'],
      ['c.txt', 'charlie\n'],
      ['src/main.ts', 'export {};\n'],
    ]) {
      await onEveryDisk(`project/${name}`, content);
    }
    await onEveryDisk('project/src/big.bin', Buffer.alloc(3 * 1024, 7));
    assert.strictEqual(await testing.waitForStatusBar((text) => text.includes('DFS sync:')), '$(check) DFS sync: 5 synced');
    assert.deepStrictEqual(
      (workspaceState.get('dfs.syncFolders') as { folder: string; prefix: string; propagateDeletes: boolean }[]).map((mapping) => [mapping.folder, mapping.prefix, mapping.propagateDeletes]),
      [[project(), 'project', false]],
      'the mapping is kept in the workspace state, deletes off',
    );
    assert.deepStrictEqual(testing.contexts.get('dfs.syncedFolders'), [project()], 'the Explorer menus know the folder is synced');
  });

  it('several saves of one file within the debounce become one upload, on the generation last synced', async () => {
    const before = await generations('project/a.txt');
    const from = testing.output.length;
    const file = path.join(project(), 'a.txt');
    await fs.writeFile(file, 'alpha 1\n');
    await fs.writeFile(file, 'alpha 2\n');
    await fs.writeFile(file, 'alpha 3\n');
    await onEveryDisk('project/a.txt', 'alpha 3\n');
    await syncer.idle();
    assert.strictEqual(await generations('project/a.txt'), before + 1, 'exactly one new version');
    assert.strictEqual(logLines(/sync: uploaded project\/a\.txt/, from).length, 1, 'one upload logged');
    await testing.waitForStatusBar((text) => text === '$(check) DFS sync: 5 synced');
  });

  it('a file changed by another client meanwhile is a conflict: nothing is overwritten on either side', async () => {
    await other().upload('project/b.txt', [Buffer.from('bravo from elsewhere\n')], 'bravo from elsewhere\n'.length);
    answerConflicts('Later');
    const from = testing.messages.length;
    await fs.writeFile(path.join(project(), 'b.txt'), 'bravo edited here\n');
    const notice = await testing.waitForMessage((message) => message.message.startsWith('DFS sync:'), from);
    assert.strictEqual(notice.kind, 'warning');
    assert.strictEqual(notice.message, `DFS sync: project/b.txt changed in DFS since it was last synced, and it changed here too. Nothing was overwritten.`);
    assert.deepStrictEqual(notice.items, ['Compare', 'Overwrite', 'Keep Stored', 'Later']);
    await syncer.idle();
    await onEveryDisk('project/b.txt', 'bravo from elsewhere\n');
    assert.strictEqual(await fs.readFile(path.join(project(), 'b.txt'), 'utf8'), 'bravo edited here\n', 'the local edit is kept');
    assert.deepStrictEqual(syncer.conflicts.map((conflict) => [conflict.name, conflict.kind]), [['b.txt', 'bothChanged']]);
    assert.strictEqual(await testing.waitForStatusBar((text) => text.includes('conflict')), '$(warning) DFS sync: 1 conflict');
  });

  it('from the status bar: Compare shows the stored and the local file, then Keep Stored downloads the stored one over the local one', async () => {
    const versionsBefore = await generations('project/b.txt');
    const from = testing.output.length;
    testing.quickPick = (items) => items.find((item) => item.label.includes('project/b.txt'));
    answerConflicts('Compare', 'Keep Stored');
    await run('dfs.showSyncStatus');
    const diff = testing.diffs.at(-1);
    assert.ok(diff, 'a diff was opened');
    assert.strictEqual(diff.left.toString(), `dfs:/${CLIENT}/project/b.txt`);
    assert.strictEqual(diff.right.fsPath, path.join(project(), 'b.txt'));
    assert.strictEqual(diff.leftContent.toString(), 'bravo from elsewhere\n');
    assert.strictEqual(diff.rightContent.toString(), 'bravo edited here\n');
    assert.strictEqual(diff.title, `${CLIENT}/project/b.txt (DFS) ↔ b.txt (local)`);
    assert.strictEqual(await fs.readFile(path.join(project(), 'b.txt'), 'utf8'), 'bravo from elsewhere\n', 'the stored version replaced the local file');
    assert.deepStrictEqual(
      (await fs.readdir(project())).filter((entry) => entry.includes('.dfs-')),
      [],
      'no temporary file of the download is left',
    );
    assert.strictEqual(syncer.status.conflicts, 0);
    await testing.waitForStatusBar((text) => text === '$(check) DFS sync: 5 synced');
    // The watcher sees the download land; the syncer knows it for its own and sends nothing back.
    await fs.appendFile(path.join(project(), 'c.txt'), 'marker\n');
    await onEveryDisk('project/c.txt', 'charlie\nmarker\n');
    await syncer.idle();
    assert.strictEqual(await generations('project/b.txt'), versionsBefore, 'the download was not uploaded again');
    assert.deepStrictEqual(logLines(/sync: uploaded project\/b\.txt/, from), []);
  });

  it('Overwrite uploads the local file over the newer stored one, on every server', async () => {
    await other().upload('project/c.txt', [Buffer.from('charlie from elsewhere\n')], 'charlie from elsewhere\n'.length);
    const from = testing.messages.length;
    answerConflicts('Overwrite');
    await fs.writeFile(path.join(project(), 'c.txt'), 'charlie, mine\n');
    await testing.waitForMessage((message) => message.message.startsWith('DFS sync: project/c.txt'), from);
    await onEveryDisk('project/c.txt', 'charlie, mine\n');
    await syncer.idle();
    assert.strictEqual(syncer.status.conflicts, 0);
  });

  it('Later leaves the conflict listed, and a further save of that file uploads nothing until it is settled', async () => {
    await other().upload('project/src/main.ts', [Buffer.from('// theirs\n')], '// theirs\n'.length);
    let from = testing.messages.length;
    answerConflicts('Later');
    await fs.writeFile(path.join(project(), 'src', 'main.ts'), '// mine\n');
    await testing.waitForMessage((message) => message.message.startsWith('DFS sync: project/src/main.ts'), from);
    await syncer.idle();
    const logFrom = testing.output.length;
    await fs.writeFile(path.join(project(), 'src', 'main.ts'), '// mine, again\n');
    await logLine(/src\/main\.ts changed again but is in conflict/, logFrom);
    await onEveryDisk('project/src/main.ts', '// theirs\n');
    assert.deepStrictEqual(syncer.conflicts.map((conflict) => conflict.name), ['src/main.ts']);
    // Settled later from the status bar: Overwrite.
    from = testing.messages.length;
    testing.quickPick = (items) => items.find((item) => item.label.includes('project/src/main.ts'));
    answerConflicts('Overwrite');
    await run('dfs.showSyncStatus');
    await onEveryDisk('project/src/main.ts', '// mine, again\n');
    assert.strictEqual(syncer.status.conflicts, 0);
    assert.ok(testing.messages.length > from);
  });

  it('a conflict settled by what happened since (both sides now the same) leaves the list at the next Sync Folders Now, with nothing sent', async () => {
    await fs.writeFile(path.join(project(), 'e.txt'), 'echo\n');
    await onEveryDisk('project/e.txt', 'echo\n');
    await syncer.idle();
    await other().upload('project/e.txt', [Buffer.from('echo, theirs\n')], 'echo, theirs\n'.length);
    const from = testing.messages.length;
    answerConflicts('Later');
    await fs.writeFile(path.join(project(), 'e.txt'), 'echo, mine\n');
    await testing.waitForMessage((message) => message.message.startsWith('DFS sync: project/e.txt'), from);
    const logFrom = testing.output.length;
    await fs.writeFile(path.join(project(), 'e.txt'), 'echo, theirs\n');
    await logLine(/project\/e\.txt changed again but is in conflict/, logFrom);
    const versions = await generations('project/e.txt');
    await run('dfs.syncNow');
    assert.deepStrictEqual(syncer.conflicts, []);
    assert.strictEqual(await generations('project/e.txt'), versions, 'nothing was uploaded');
    await testing.waitForStatusBar((text) => text === '$(check) DFS sync: 6 synced');
  });

  it('with deletes kept on one side (the default), a local delete leaves the stored file on every server', async () => {
    const from = testing.output.length;
    await fs.rm(path.join(project(), 'b.txt'));
    await logLine(/project\/b\.txt deleted here; the stored copy is kept/, from);
    await onEveryDisk('project/b.txt', 'bravo from elsewhere\n');
  });

  it('with deletes kept on one side, a file deleted elsewhere and then saved here is stored again as a new file', async () => {
    await syncer.idle();
    await other().delete('project/c.txt');
    await fs.writeFile(path.join(project(), 'c.txt'), 'charlie, back\n');
    await onEveryDisk('project/c.txt', 'charlie, back\n');
    await syncer.idle();
    assert.strictEqual(syncer.status.conflicts, 0);
  });

  it('a save that cannot reach the cluster is sent by a later full sync once the primary answers again', async () => {
    await syncer.idle();
    const port = cluster.primaryPort;
    await stopChild(cluster.primary.child, 'SIGKILL');
    const from = testing.output.length;
    await fs.writeFile(path.join(project(), 'a.txt'), 'alpha, while the primary was down\n');
    await logLine(/sync of project\/a\.txt failed/, from);
    await cluster.startPrimary(port);
    await onEveryDisk('project/a.txt', 'alpha, while the primary was down\n');
    await syncer.idle();
    assert.strictEqual(syncer.status.conflicts, 0);
  });

  describe('with deletes propagated', () => {
    const shared = (): string => path.join(work, 'shared');
    let propagating: SyncerLike;

    before(async () => {
      await fs.mkdir(shared(), { recursive: true });
      await fs.writeFile(path.join(shared(), 'old.txt'), 'old\n');
      await fs.writeFile(path.join(shared(), 'kept.txt'), 'kept\n');
      await other().upload('shared/remote.txt', [Buffer.from('remote\n')], 'remote\n'.length);
    });

    it('a first sync with a download asks, then brings the stored file here', async () => {
      const from = testing.messages.length;
      propagating = await syncFolder(shared(), 'shared', 'Propagate deletes', true);
      const question = testing.messages.slice(from).find((message) => message.modal);
      assert.strictEqual(question?.message, 'Sync shared with syncer/shared/: upload 2 files (9 B), download 1 file (7 B) into shared?');
      await onEveryDisk('shared/old.txt', 'old\n');
      assert.strictEqual(await fs.readFile(path.join(shared(), 'remote.txt'), 'utf8'), 'remote\n');
      assert.strictEqual(propagating.status.synced, 3);
    });

    it('a local delete deletes the stored file from every server (DELETE_IF the generation last synced)', async () => {
      const from = testing.output.length;
      await fs.rm(path.join(shared(), 'old.txt'));
      await logLine(/sync: deleted shared\/old\.txt from the store/, from);
      await onNoDisk('shared/old.txt');
    });

    it('a local delete of a file with a newer version elsewhere deletes nothing: the newer version comes back here', async () => {
      await propagating.idle();
      await other().upload('shared/kept.txt', [Buffer.from('kept, newer\n')], 'kept, newer\n'.length);
      const from = testing.output.length;
      await fs.rm(path.join(shared(), 'kept.txt'));
      await logLine(/shared\/kept\.txt was deleted here, but a newer version .* is stored; it was downloaded again/, from);
      await onEveryDisk('shared/kept.txt', 'kept, newer\n');
      assert.strictEqual(await fs.readFile(path.join(shared(), 'kept.txt'), 'utf8'), 'kept, newer\n');
    });

    it('a rename is a delete and a new name: the new name is stored, the old one deleted', async () => {
      await propagating.idle();
      const from = testing.output.length;
      await fs.rename(path.join(shared(), 'remote.txt'), path.join(shared(), 'renamed.txt'));
      await logLine(/sync: deleted shared\/remote\.txt from the store/, from);
      await onEveryDisk('shared/renamed.txt', 'remote\n');
      await onNoDisk('shared/remote.txt');
    });

    it('Sync Now (from the status bar) brings in a file added elsewhere and, deletes on, removes one deleted elsewhere', async () => {
      await propagating.idle();
      await other().upload('shared/added.txt', [Buffer.from('added elsewhere\n')], 'added elsewhere\n'.length);
      await other().delete('shared/renamed.txt');
      testing.quickPick = (items) => items.find((item) => item.label === '$(sync) Sync Now');
      await run('dfs.showSyncStatus');
      assert.strictEqual(await fs.readFile(path.join(shared(), 'added.txt'), 'utf8'), 'added elsewhere\n');
      await assert.rejects(fs.stat(path.join(shared(), 'renamed.txt')), /ENOENT/, 'the file deleted elsewhere is deleted here');
      await propagating.idle();
      // Neither the download nor the local delete is taken for a change of this side.
      await onEveryDisk('shared/added.txt', 'added elsewhere\n');
      await onNoDisk('shared/renamed.txt');
      assert.strictEqual(await generations('shared/added.txt'), 1, 'the downloaded file was not uploaded back');
      assert.deepStrictEqual(propagating.conflicts, []);
    });

    it('a file deleted elsewhere and changed here is a conflict; Keep Stored deletes it here', async () => {
      await propagating.idle();
      await other().delete('shared/added.txt');
      const from = testing.messages.length;
      answerConflicts('Keep Stored');
      await fs.writeFile(path.join(shared(), 'added.txt'), 'changed here\n');
      const notice = await testing.waitForMessage((message) => message.message.startsWith('DFS sync: shared/added.txt'), from);
      assert.strictEqual(notice.message, 'DFS sync: shared/added.txt was deleted from DFS, and it changed here. Nothing was overwritten.');
      assert.deepStrictEqual(notice.items, ['Overwrite', 'Keep Stored', 'Later'], 'nothing to compare with');
      await waitFor(() => fs.stat(path.join(shared(), 'added.txt')).then(() => false, () => true), 'added.txt removed here', 30_000);
      await propagating.idle();
      await onNoDisk('shared/added.txt');
      assert.deepStrictEqual(propagating.conflicts, []);
    });
  });

  // Mocha runs a suite's own tests before its inner suites: these come last, so they are a suite of their own.
  describe('afterwards', () => {
    it('a reopened window resumes the mappings and uploads what changed while it was closed', async () => {
      await syncer.idle();
      await vscodeExtension.close();
      await fs.writeFile(path.join(project(), 'a.txt'), 'alpha, edited while closed\n');
      activate();
      await onEveryDisk('project/a.txt', 'alpha, edited while closed\n');
      await testing.waitForStatusBar((text) => /DFS sync: \d+ synced/.test(text));
      assert.strictEqual(testing.watchers.length, 2, 'both mapped folders are watched again');
    });

    it('Stop Syncing Folder forgets the mapping and keeps the files on both sides', async () => {
      testing.quickPick = (items) => items.find((item) => item.label === 'project');
      await run('dfs.stopSyncFolder');
      assert.deepStrictEqual(
        (workspaceState.get('dfs.syncFolders') as { folder: string }[]).map((mapping) => mapping.folder),
        [path.join(work, 'shared')],
      );
      assert.strictEqual(workspaceState.get(`dfs.syncBaseline:${project()}`), undefined, 'its last-synced state is dropped');
      assert.strictEqual(testing.watchers.length, 1);
      assert.strictEqual(await fs.readFile(path.join(project(), 'c.txt'), 'utf8'), 'charlie, back\n');
      await onEveryDisk('project/c.txt', 'charlie, back\n');
      assert.deepStrictEqual(testing.contexts.get('dfs.syncedFolders'), [path.join(work, 'shared')]);
    });
  });
});
