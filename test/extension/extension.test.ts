import * as assert from 'assert';
import { createHash } from 'crypto';
import { promises as fs, readFileSync } from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { freePortRange, portAnswers } from '../support/ports';
import { stagedFiles, storedFiles } from '../support/cluster';
import { ExtensionUnderTest, activateExtension } from '../support/extension-harness';
import { DataTransfer, DataTransferItem, FakeTextDocument, ShownMessage, Uri, testing } from '../support/vscode-double';
import { RenderedNode, findNode, renderTree, treePaths } from '../support/vscode-double/tree-snapshot';
import { waitFor } from '../support/wait';
import { dfsProcesses } from '../support/dfs-processes';

/** What the compiled extension's upload command returns, as far as these tests read it. */
interface BatchResultLike {
  cancelled: boolean;
  outcomes: { origin: string; name?: string; status: string; code?: string; reason?: string }[];
}

const CLIENT = 'alice';
const REPLICAS = 2;

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Two free ports areas that do not overlap: the replicas' run and the primary's. */
async function freeLayout(): Promise<{ basePort: number; port: number }> {
  const basePort = await freePortRange(REPLICAS);
  for (;;) {
    const port = await freePortRange(1);
    if (port < basePort || port >= basePort + REPLICAS) {
      return { basePort, port };
    }
  }
}

/** The pid of the running `dfs` server started with these arguments. */
function pidOf(...argsContained: string[]): number | undefined {
  return dfsProcesses(...argsContained)[0]?.pid;
}

describe('extension: activate() against real primary and replica processes', function () {
  // Starting four Node processes on a two-core machine, and a 32 MiB upload, take seconds.
  this.timeout(120_000);

  let work: string;
  let dataDir: string;
  let layout: { basePort: number; port: number };
  let vscodeExtension: ExtensionUnderTest;

  const roots = (): string[] => [path.join(dataDir, 'servidor'), ...Array.from({ length: REPLICAS }, (_, index) => path.join(dataDir, `replica${index + 1}`))];
  const run = <T>(command: string, ...args: unknown[]): Promise<T> => {
    const handler = testing.commands.get(command);
    assert.ok(handler, `command ${command} is registered`);
    return Promise.resolve(handler(...args)) as Promise<T>;
  };
  const fileAt = (fsPath: string): Uri => Uri.file(fsPath);
  const messagesSince = (from: number): ShownMessage[] => testing.messages.slice(from);
  const tree = (): Promise<RenderedNode[]> => renderTree('dfs.files');
  const storedBytes = (root: string, name: string): Promise<Buffer> => fs.readFile(path.join(root, CLIENT, name));
  const assertStoredEverywhere = async (name: string, expected: Buffer): Promise<void> => {
    for (const root of roots()) {
      assert.ok((await storedBytes(root, name)).equals(expected), `${root}/${CLIENT}/${name} holds the uploaded bytes`);
    }
  };
  const assertStoredNowhere = async (name: string): Promise<void> => {
    for (const root of roots()) {
      assert.ok(!(await storedFiles(root)).includes(`${CLIENT}/${name}`), `${root} keeps no ${name}`);
    }
  };

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ext-'));
    dataDir = path.join(work, 'data');
    layout = await freeLayout();
    vscodeExtension = activateExtension(work, {
      host: '127.0.0.1',
      port: layout.port,
      clientId: CLIENT,
      replicas: REPLICAS,
      basePort: layout.basePort,
      dataDir,
      writeQuorum: 'all',
    });
  });

  after(async () => {
    await vscodeExtension?.close();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('activates without starting anything and shows the welcome content while no cluster answers', async () => {
    for (const id of ['dfs.startCluster', 'dfs.stopCluster', 'dfs.upload', 'dfs.uploadPick', 'dfs.refresh', 'dfs.showStatus', 'dfs.showLog', 'dfs.openSettings', 'dfs.openFile', 'dfs.downloadFile', 'dfs.copyChecksum', 'dfs.deleteFile']) {
      assert.ok(testing.commands.has(id), `${id} is registered`);
    }
    assert.strictEqual(testing.tasks.length, 0, 'no server runs until asked');
    await testing.waitForContext('dfs.clusterState', 'offline');
    assert.deepStrictEqual(await tree(), [], 'an empty tree lets VS Code show the welcome content');
    assert.match(await testing.waitForStatusBar((text) => text.includes('offline')), /DFS offline/);
    assert.strictEqual(testing.fileSystems.get('dfs')?.options.isReadonly, false, 'the dfs: file system is registered writable (edit-in-place.test.ts saves through it)');
    assert.ok(testing.taskProviders.has('dfs'), 'the dfs task provider is registered');
  });

  it('Start Cluster runs each server as a dfs task with VS Code\'s runtime and waits for every listening line', async () => {
    await run('dfs.startCluster');
    assert.strictEqual(testing.tasks.length, REPLICAS + 1);
    const definitions = testing.tasks.map((task) => task.task.definition);
    assert.deepStrictEqual(
      definitions.map((definition) => `${definition.type}:${definition.role}:${definition.port}`).sort(),
      [`dfs:primary:${layout.port}`, ...Array.from({ length: REPLICAS }, (_, index) => `dfs:replica:${layout.basePort + index}`)].sort(),
    );
    assert.ok(testing.tasks.every((task) => task.task.isBackground), 'server tasks are background tasks');
    for (const task of testing.tasks) {
      assert.match(task.output.join(''), /listening on 127\.0\.0\.1:\d+/, `${task.task.name} printed its listening line`);
    }
    assert.ok(await portAnswers(layout.port), 'the primary answers');
    const pid = pidOf('primary', '--port', String(layout.port));
    assert.ok(pid, 'the primary runs as its own process');
    assert.match(readFileSync(`/proc/${pid}/environ`, 'utf8'), /(^|\0)ELECTRON_RUN_AS_NODE=1(\0|$)/);
    assert.strictEqual(await testing.waitForStatusBar((text) => text.includes(`DFS ${REPLICAS}/${REPLICAS}`)), `$(database) DFS ${REPLICAS}/${REPLICAS}`);
    await testing.waitForContext('dfs.clusterState', 'online');
    await testing.waitForContext('dfs.clusterRunningHere', true);
    assert.ok(testing.messages.some((message) => message.kind === 'info' && message.message.includes('cluster started')));
    const nodes = await tree();
    assert.deepStrictEqual(treePaths(nodes), [CLIENT], 'the own client shows even before it stores anything');
  });

  it('Start Cluster again uses the cluster that already answers instead of starting another', async () => {
    const from = testing.messages.length;
    await run('dfs.startCluster');
    assert.strictEqual(testing.tasks.length, REPLICAS + 1, 'no new task started');
    assert.ok(messagesSince(from).some((message) => message.message.includes('already answers')));
  });

  it('uploads a file from the Explorer and shows it in the tree with size, age, checksum and copies', async () => {
    const content = Buffer.from('hello from the explorer\n'.repeat(1000));
    const file = path.join(work, 'hello.txt');
    await fs.writeFile(file, content);
    const result = await run<BatchResultLike>('dfs.upload', fileAt(file), [fileAt(file)]);
    assert.deepStrictEqual(result.outcomes.map((outcome) => [outcome.name, outcome.status]), [['hello.txt', 'uploaded']]);
    await assertStoredEverywhere('hello.txt', content);
    const node = findNode(await tree(), [CLIENT, 'hello.txt']);
    assert.ok(node, 'hello.txt is in the tree under the own client');
    assert.strictEqual(node.item.contextValue, 'dfsFile');
    assert.match(node.item.description ?? '', /^23\.4 KiB · just now$/);
    assert.match(String(node.item.tooltip), new RegExp(`SHA-256: ${sha256(content)}`));
    assert.match(String(node.item.tooltip), new RegExp(`Copies: ${REPLICAS + 1} of ${REPLICAS + 1}`));
    const progress = testing.progress.at(-1)!;
    assert.ok(progress.cancellable, 'the upload notification offers Cancel');
    assert.ok(progress.reports.some((report) => /23\.4 KiB of 23\.4 KiB \(100%\)/.test(report.message ?? '')), 'progress shows bytes and percent');
    assert.strictEqual(progress.reports.reduce((sum, report) => sum + (report.increment ?? 0), 0), 100, 'increments add up to 100%');
  });

  it('uploads a folder, keeping relative paths as folders in the tree', async () => {
    const folder = path.join(work, 'project');
    await fs.mkdir(path.join(folder, 'src', 'deep'), { recursive: true });
    await fs.writeFile(path.join(folder, 'README'), 'readme');
    await fs.writeFile(path.join(folder, 'src', 'main.ts'), 'main');
    await fs.writeFile(path.join(folder, 'src', 'deep', 'x.bin'), Buffer.from([0, 1, 2, 255]));
    const result = await run<BatchResultLike>('dfs.upload', fileAt(folder), [fileAt(folder)]);
    assert.deepStrictEqual(result.outcomes.map((outcome) => outcome.name).sort(), ['project/README', 'project/src/deep/x.bin', 'project/src/main.ts']);
    assert.ok(result.outcomes.every((outcome) => outcome.status === 'uploaded'));
    await assertStoredEverywhere('project/src/deep/x.bin', Buffer.from([0, 1, 2, 255]));
    const paths = treePaths(await tree());
    for (const expected of [`${CLIENT}/project/`, `${CLIENT}/project/src/`, `${CLIENT}/project/src/deep/`, `${CLIENT}/project/src/deep/x.bin`, `${CLIENT}/project/README`]) {
      assert.ok(paths.includes(expected), `tree has ${expected}: ${paths.join(', ')}`);
    }
    assert.strictEqual(findNode(await tree(), [CLIENT, 'project'])?.item.contextValue, 'dfsFolder');
  });

  it('uploads a multi-selection; bad entries are reported one by one and the rest still upload', async () => {
    const one = path.join(work, 'one.txt');
    const two = path.join(work, 'two.txt');
    const loopy = path.join(work, 'loopy');
    const badName = path.join(work, 'bad\\name.txt');
    await fs.writeFile(one, 'one');
    await fs.writeFile(two, 'two');
    await fs.mkdir(loopy);
    await fs.writeFile(path.join(loopy, 'fine.txt'), 'fine');
    await fs.symlink(path.join(loopy, 'b'), path.join(loopy, 'a'));
    await fs.symlink(path.join(loopy, 'a'), path.join(loopy, 'b'));
    await fs.writeFile(badName, 'bad');
    const from = testing.messages.length;
    const selection = [one, two, loopy, badName].map(fileAt);
    const result = await run<BatchResultLike>('dfs.upload', selection[0], selection);
    const byOrigin = new Map(result.outcomes.map((outcome) => [outcome.origin, outcome]));
    assert.strictEqual(byOrigin.get(one)?.status, 'uploaded');
    assert.strictEqual(byOrigin.get(two)?.status, 'uploaded');
    assert.strictEqual(byOrigin.get(path.join(loopy, 'fine.txt'))?.status, 'uploaded');
    assert.strictEqual(byOrigin.get(path.join(loopy, 'a'))?.status, 'failed');
    assert.match(byOrigin.get(path.join(loopy, 'a'))?.reason ?? '', /looping symbolic link/);
    assert.strictEqual(byOrigin.get(badName)?.status, 'failed');
    assert.match(byOrigin.get(badName)?.reason ?? '', /backslash/);
    await assertStoredEverywhere('two.txt', Buffer.from('two'));
    await assertStoredEverywhere('loopy/fine.txt', Buffer.from('fine'));
    const failure = messagesSince(from).find((message) => message.kind === 'error');
    assert.ok(failure, 'the failures are shown');
    assert.match(failure.message, /3 uploaded, 3 failed/);
    assert.deepStrictEqual(failure.items, ['Show Log']);
    assert.ok(testing.output.some((line) => line.includes('backslash')), 'the log has each failure with its reason');
  });

  it('asks before overwriting: Skip keeps, Overwrite replaces, Overwrite All asks once', async () => {
    const one = path.join(work, 'one.txt');
    const two = path.join(work, 'two.txt');
    await fs.writeFile(one, 'one, second version');
    await fs.writeFile(two, 'two, second version');
    const asked: string[] = [];
    testing.answer = (message) => {
      if (message.message.includes('already stored')) {
        asked.push(message.message);
        assert.deepStrictEqual(message.items, ['Overwrite', 'Skip', 'Overwrite All', 'Skip All']);
        assert.ok(message.modal);
        return 'Skip';
      }
      return undefined;
    };
    let result = await run<BatchResultLike>('dfs.upload', fileAt(one), [fileAt(one)]);
    assert.strictEqual(result.outcomes[0].status, 'skipped');
    await assertStoredEverywhere('one.txt', Buffer.from('one'));
    assert.deepStrictEqual(asked, ['"one.txt" is already stored in DFS.']);

    testing.answer = (message) => (message.message.includes('already stored') ? 'Overwrite' : undefined);
    result = await run<BatchResultLike>('dfs.upload', fileAt(one), [fileAt(one)]);
    assert.strictEqual(result.outcomes[0].status, 'uploaded');
    await assertStoredEverywhere('one.txt', Buffer.from('one, second version'));

    await fs.writeFile(one, 'one, third version');
    asked.length = 0;
    testing.answer = (message) => {
      if (message.message.includes('already stored')) {
        asked.push(message.message);
        return 'Overwrite All';
      }
      return undefined;
    };
    result = await run<BatchResultLike>('dfs.upload', fileAt(one), [fileAt(one), fileAt(two)]);
    assert.strictEqual(asked.length, 1, 'Overwrite All is asked once per batch');
    assert.deepStrictEqual(result.outcomes.map((outcome) => outcome.status), ['uploaded', 'uploaded']);
    await assertStoredEverywhere('one.txt', Buffer.from('one, third version'));
    await assertStoredEverywhere('two.txt', Buffer.from('two, second version'));
    testing.answer = () => undefined;
  });

  it('cancel mid-upload stops the transfer; no server keeps the file or a staged copy', async () => {
    const big = path.join(work, 'big.bin');
    const size = 32 * 1024 * 1024;
    await fs.writeFile(big, Buffer.alloc(size, 7));
    let cancelledAt: string | undefined;
    testing.onProgressReport = (progressRun, report) => {
      // Cancel once bytes are on the wire, not before the transfer starts.
      if (!cancelledAt && /^big\.bin: (?!0 B )/.test(report.message ?? '')) {
        cancelledAt = report.message;
        progressRun.cancel();
      }
    };
    const from = testing.messages.length;
    const result = await run<BatchResultLike>('dfs.upload', fileAt(big), [fileAt(big)]);
    testing.onProgressReport = undefined;
    assert.ok(cancelledAt, 'the upload was cancelled while it ran');
    assert.doesNotMatch(cancelledAt, /\(100%\)/);
    assert.strictEqual(result.cancelled, true);
    assert.deepStrictEqual(result.outcomes.map((outcome) => [outcome.name, outcome.status]), [['big.bin', 'cancelled']]);
    assert.ok(messagesSince(from).some((message) => message.kind === 'warning' && /1 cancelled/.test(message.message)));
    await assertStoredNowhere('big.bin');
    // The primary notices the closed connection asynchronously; wait for its cleanup, bounded.
    for (const root of roots()) {
      await waitFor(async () => (await stagedFiles(root)).length === 0, `${root}/.dfs/tmp to be empty`);
    }
    await assertStoredNowhere('big.bin');
    // The servers' terminals call it a cancel, not a failure: each replica had the relayed upload cut short.
    const serverLog = (role: string): string => testing.tasks.filter((task) => task.task.definition.role === role).map((task) => task.output.join('')).join('');
    await waitFor(async () => (serverLog('replica').match(/REPLICA cancelled by the sender/g) ?? []).length === REPLICAS, 'each replica to log the cancelled REPLICA');
    assert.doesNotMatch(serverLog('replica') + serverLog('primary'), /SHORT_BODY/);
  });

  it('Upload to DFS on an editor with unsaved changes asks, and Upload Buffer sends the editor text', async () => {
    const file = path.join(work, 'draft.md');
    await fs.writeFile(file, 'saved text');
    const document: FakeTextDocument = { uri: Uri.file(file), isDirty: true, getText: () => 'unsaved text in the editor', save: async () => true };
    testing.textDocuments = [document];
    testing.activeTextEditor = { document };
    let question: ShownMessage | undefined;
    testing.answer = (message) => {
      if (message.message.includes('unsaved changes')) {
        question = message;
        return 'Upload Buffer';
      }
      return undefined;
    };
    const result = await run<BatchResultLike>('dfs.upload');
    assert.ok(question, 'the user is asked about unsaved changes');
    assert.deepStrictEqual(question.items, ['Save and Upload', 'Upload Buffer']);
    assert.strictEqual(result.outcomes[0].status, 'uploaded');
    await assertStoredEverywhere('draft.md', Buffer.from('unsaved text in the editor'));

    let saved = false;
    document.save = async () => {
      saved = true;
      await fs.writeFile(file, 'now saved');
      return true;
    };
    testing.answer = (message) => (message.message.includes('unsaved changes') ? 'Save and Upload' : message.message.includes('already stored') ? 'Overwrite' : undefined);
    await run('dfs.upload', Uri.file(file), { groupId: 0 });
    assert.ok(saved, 'Save and Upload saves first');
    await assertStoredEverywhere('draft.md', Buffer.from('now saved'));
    testing.textDocuments = [];
    testing.activeTextEditor = undefined;
    testing.answer = () => undefined;
  });

  it('dropping files onto the tree uploads them, into the folder they are dropped on', async () => {
    const dropped = path.join(work, 'dropped.txt');
    const fromOs = path.join(work, 'from-os.txt');
    await fs.writeFile(dropped, 'dropped');
    await fs.writeFile(fromOs, 'from the OS');
    const controller = testing.treeViews.get('dfs.files')?.dragAndDropController;
    assert.ok(controller, 'the tree has a drag-and-drop controller');
    assert.ok(controller.dropMimeTypes.includes('text/uri-list') && controller.dropMimeTypes.includes('files'));
    const transfer = new DataTransfer();
    transfer.set('text/uri-list', new DataTransferItem(`# comment\r\n${Uri.file(dropped).toString()}\r\n`));
    transfer.set('files', new DataTransferItem('', { name: 'from-os.txt', uri: Uri.file(fromOs), data: async () => Buffer.from('from the OS') }));
    const folder = findNode(await tree(), [CLIENT, 'project', 'src']);
    assert.ok(folder);
    await controller.handleDrop(folder.element, transfer, { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) });
    await assertStoredEverywhere('project/src/dropped.txt', Buffer.from('dropped'));
    await assertStoredEverywhere('project/src/from-os.txt', Buffer.from('from the OS'));
    assert.ok(treePaths(await tree()).includes(`${CLIENT}/project/src/dropped.txt`), 'the tree refreshed after the drop');
  });

  it('Open shows a stored file read through the dfs: file system', async () => {
    const node = findNode(await tree(), [CLIENT, 'project', 'src', 'deep', 'x.bin']);
    assert.ok(node);
    assert.strictEqual(node.item.command?.command, 'dfs.openFile', 'a click opens the file');
    await run('dfs.openFile', node.element);
    const opened = testing.opened.at(-1);
    assert.ok(opened);
    assert.strictEqual(opened.uri.scheme, 'dfs');
    assert.strictEqual(opened.uri.path, `/${CLIENT}/project/src/deep/x.bin`);
    assert.ok(opened.content.equals(Buffer.from([0, 1, 2, 255])));
    const fileSystem = testing.fileSystems.get('dfs')!.provider;
    const stat = await fileSystem.stat(opened.uri);
    assert.strictEqual(stat.size, 4);
    assert.deepStrictEqual(await fileSystem.readDirectory(Uri.from({ scheme: 'dfs', path: `/${CLIENT}/project/src` })), [
      ['deep', 2],
      ['dropped.txt', 1],
      ['from-os.txt', 1],
      ['main.ts', 1],
    ]);
    await assert.rejects(Promise.resolve().then(() => fileSystem.writeFile(opened.uri.with({ query: 'generation=1' }), Buffer.from('x'), { create: true, overwrite: true })), /no permissions: .*kept older version/);
    await assert.rejects(Promise.resolve().then(() => fileSystem.readFile(Uri.from({ scheme: 'dfs', path: `/${CLIENT}/missing.txt` }))), /not found/i);
  });

  it('Download... saves a verified copy where the user chooses', async () => {
    const node = findNode(await tree(), [CLIENT, 'hello.txt']);
    assert.ok(node);
    const destination = path.join(work, 'downloads', 'hello-copy.txt');
    await fs.mkdir(path.dirname(destination));
    let offered: { defaultUri?: Uri } | undefined;
    testing.saveDialog = (options) => {
      offered = options as { defaultUri?: Uri };
      return Uri.file(destination);
    };
    await run('dfs.downloadFile', node.element);
    assert.strictEqual(offered?.defaultUri?.fsPath, path.join(work, 'hello.txt'), 'the dialog suggests the stored name in the workspace');
    assert.ok((await fs.readFile(destination)).equals(await storedBytes(roots()[0], 'hello.txt')));
    assert.deepStrictEqual(await fs.readdir(path.dirname(destination)), ['hello-copy.txt'], 'no temporary file is left');
    testing.saveDialog = () => undefined;
  });

  it('Copy Checksum puts the SHA-256 on the clipboard', async () => {
    const node = findNode(await tree(), [CLIENT, 'hello.txt']);
    assert.ok(node);
    await run('dfs.copyChecksum', node.element);
    assert.strictEqual(testing.clipboard, sha256(await storedBytes(roots()[0], 'hello.txt')));
  });

  it('Delete asks first; only a confirmed delete removes every copy', async () => {
    const node = findNode(await tree(), [CLIENT, 'two.txt']);
    assert.ok(node);
    testing.answer = () => undefined;
    assert.strictEqual(await run('dfs.deleteFile', node.element), false);
    await assertStoredEverywhere('two.txt', Buffer.from('two, second version'));
    const confirm = testing.messages.at(-1)!;
    assert.ok(confirm.modal);
    assert.deepStrictEqual(confirm.items, ['Delete']);

    testing.answer = (message) => (message.message.startsWith('Delete') ? 'Delete' : undefined);
    const changes: { type: number; uri: Uri }[] = [];
    const subscription = testing.fileSystems.get('dfs')!.provider.onDidChangeFile((events: { type: number; uri: Uri }[]) => changes.push(...events));
    assert.strictEqual(await run('dfs.deleteFile', node.element), true);
    subscription.dispose();
    const seen = changes.map((change) => [change.type, change.uri.path] as const);
    assert.deepStrictEqual(
      seen.filter(([, path]) => path === `/${CLIENT}/two.txt`),
      [[3, `/${CLIENT}/two.txt`]],
      'an editor showing the file is told it is gone, once',
    );
    await assertStoredNowhere('two.txt');
    assert.ok(!treePaths(await tree()).includes(`${CLIENT}/two.txt`), 'the tree no longer shows it');
    // A change feed that had fallen behind on a loaded machine (CI saw it) reports the
    // files it missed as created in the same window: true, if late. Nothing else may be
    // said gone, and nothing may be said of a file that is not there.
    for (const [type, path] of seen.filter(([, path]) => path !== `/${CLIENT}/two.txt`)) {
      assert.notStrictEqual(type, 3, `${path} was reported deleted by the delete of two.txt`);
      const stored = await storedBytes(roots()[0], path.slice(CLIENT.length + 2)).then(() => true, () => false);
      assert.ok(stored, `${path} was reported changed but is not stored`);
    }
    testing.answer = () => undefined;
  });

  it('Show Cluster Status lists each replica; a server that dies is reported and the status bar follows', async () => {
    await run('dfs.showStatus');
    const status = testing.messages.at(-1)!;
    assert.match(status.message, new RegExp(`${REPLICAS} of ${REPLICAS} replicas up`));
    assert.match(status.detail ?? '', /Replica 1 127\.0\.0\.1:\d+: up, 0 files behind/);

    const pid = pidOf('replica', '--port', String(layout.basePort + 1));
    assert.ok(pid, 'replica 2 runs');
    const from = testing.messages.length;
    process.kill(pid, 'SIGKILL');
    const warning = await testing.waitForMessage((message) => message.kind === 'warning' && message.message.includes('replica 2 stopped unexpectedly'), from);
    assert.deepStrictEqual(warning.items, ['Show Log', 'Start Cluster']);
    assert.strictEqual(await testing.waitForStatusBar((text) => text.includes(`DFS ${REPLICAS - 1}/${REPLICAS}`)), `$(database) DFS ${REPLICAS - 1}/${REPLICAS}`);

    const tasksBefore = testing.tasks.length;
    await run('dfs.startCluster');
    assert.strictEqual(testing.tasks.length, tasksBefore + 1, 'Start Cluster brings back only the missing replica');
    assert.ok(testing.messages.some((message) => message.message.includes('restarted replica 2')));
    await run('dfs.refresh');
    await testing.waitForStatusBar((text) => text.includes(`DFS ${REPLICAS}/${REPLICAS}`));
  });

  it('a settings change takes effect without a reload', async () => {
    testing.setConfiguration({ 'dfs.clientId': 'bob' });
    const clients = (await tree()).map((node) => node.item.label);
    assert.deepStrictEqual(clients, ['bob', CLIENT], 'the new own client comes first');
    testing.setConfiguration({ 'dfs.clientId': CLIENT });
    assert.deepStrictEqual((await tree()).map((node) => node.item.label), [CLIENT]);
  });

  it('Stop Cluster stops every server it started and the view goes back to the welcome content', async () => {
    const from = testing.messages.length;
    await run('dfs.stopCluster');
    await Promise.all(testing.tasks.map((task) => task.ended));
    assert.ok(!(await portAnswers(layout.port)), 'the primary no longer listens');
    for (let index = 0; index < REPLICAS; index++) {
      assert.ok(!(await portAnswers(layout.basePort + index)), `replica ${index + 1} no longer listens`);
    }
    assert.ok(messagesSince(from).some((message) => message.message === 'DFS: cluster stopped.'));
    assert.ok(!messagesSince(from).some((message) => message.message.includes('unexpectedly')), 'a requested stop is not reported as a crash');
    await testing.waitForContext('dfs.clusterState', 'offline');
    await testing.waitForContext('dfs.clusterRunningHere', false);
    assert.match(await testing.waitForStatusBar((text) => text.includes('offline')), /DFS offline/);
    assert.deepStrictEqual(await tree(), []);
  });

  it('Upload while no cluster answers says so once, offering Start Cluster, and sends nothing', async () => {
    const file = path.join(work, 'offline.txt');
    await fs.writeFile(file, 'offline');
    const from = testing.messages.length;
    let logShown = false;
    testing.once('logShown', () => (logShown = true));
    testing.answer = (message) => (message.message.includes('nothing was uploaded') ? 'Show Log' : undefined);
    const result = await run<BatchResultLike | undefined>('dfs.upload', fileAt(file), [fileAt(file)]);
    testing.answer = () => undefined;
    assert.strictEqual(result, undefined);
    const shown = messagesSince(from);
    assert.strictEqual(shown.length, 1, JSON.stringify(shown));
    assert.match(shown[0].message, new RegExp(`nothing was uploaded: no cluster answers at 127\\.0\\.0\\.1:${layout.port}`));
    assert.deepStrictEqual(shown[0].items, ['Start Cluster', 'Open Settings', 'Show Log']);
    assert.ok(logShown, 'Show Log opens the DFS output channel');
    assert.ok(testing.output.some((line) => line.includes('upload not started')));
  });

  it('Start Cluster says clearly when a port is taken, and leaves nothing running', async () => {
    // It accepts and never reads. With no primary, the status check asks the replicas'
    // ports too, so close the connections it took, or close() waits on them forever.
    const blocker = net.createServer();
    const accepted = new Set<net.Socket>();
    blocker.on('connection', (socket) => accepted.add(socket));
    await new Promise<void>((resolve) => blocker.listen(layout.basePort, '127.0.0.1', resolve));
    try {
      const from = testing.messages.length;
      const tasksBefore = testing.tasks.length;
      await run('dfs.startCluster');
      const error = messagesSince(from).find((message) => message.kind === 'error');
      assert.ok(error, 'an error is shown');
      assert.match(error.message, new RegExp(`port ${layout.basePort} on 127\\.0\\.0\\.1 is already in use`));
      assert.deepStrictEqual(error.items, ['Show Log', 'Open Settings']);
      await Promise.all(testing.tasks.slice(tasksBefore).map((task) => task.ended));
      assert.ok(!(await portAnswers(layout.port)), 'the primary was not left running');
      assert.ok(!(await portAnswers(layout.basePort + 1)), 'the other replica was stopped again');
    } finally {
      accepted.forEach((socket) => socket.destroy());
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
