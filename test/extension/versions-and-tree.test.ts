import * as assert from 'assert';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readFileSync } from 'fs';
import { DfsClient } from '../../server/client/dfs-client';
import { generationOnDisk } from '../support/catalog-on-disk';
import { storedFiles } from '../support/cluster';
import { ExtensionUnderTest, activateExtension } from '../support/extension-harness';
import { freePortRange } from '../support/ports';
import { REPO_ROOT } from '../support/processes';
import { FakeTextDocument, Uri, testing } from '../support/vscode-double';
import { RenderedNode, findNode, renderTree, treePaths } from '../support/vscode-double/tree-snapshot';

const CLIENT = 'vera';
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const REPLICAS = 2;

interface VersionOutcomeLike {
  action: string;
  generation: number;
  receipt?: { generation: number; size: number };
}

interface DownloadReportLike {
  downloaded: string[];
  skipped: string[];
  failed: { name: string; reason: string }[];
  cancelled: boolean;
}

/** Answers the quick picks of one command in turn: each function picks from the items shown (undefined: Escape). */
function pickInTurn(...pickers: ((items: { label: string }[], options: { title?: string }) => { label: string } | undefined)[]): { titles: string[]; shown: { label: string; description?: string }[][] } {
  const seen = { titles: [] as string[], shown: [] as { label: string; description?: string }[][] };
  let turn = 0;
  testing.quickPick = (items, options) => {
    seen.titles.push((options as { title?: string }).title ?? '');
    seen.shown.push(items as { label: string; description?: string }[]);
    const picker = pickers[turn++];
    return picker ? picker(items, options as { title?: string }) : undefined;
  };
  return seen;
}

const labelled = (pattern: RegExp) => (items: { label: string }[]) => {
  const item = items.find((candidate) => pattern.test(candidate.label));
  assert.ok(item, `an item matching ${pattern} among ${JSON.stringify(items.map((candidate) => candidate.label))}`);
  return item;
};

describe('extension: versions, compare and tree actions against real servers', function () {
  this.timeout(120_000);

  let work: string;
  let dataDir: string;
  let vscodeExtension: ExtensionUnderTest;
  let primaryPort: number;
  const roots = (): string[] => [path.join(dataDir, 'servidor'), ...Array.from({ length: REPLICAS }, (_, index) => path.join(dataDir, `replica${index + 1}`))];
  const tree = (): Promise<RenderedNode[]> => renderTree('dfs.files');
  const nodeAt = async (...parts: string[]): Promise<RenderedNode> => {
    const node = findNode(await tree(), [CLIENT, ...parts]);
    assert.ok(node, `${parts.join('/')} is in the tree`);
    return node;
  };
  const assertStoredEverywhere = async (name: string, expected: Buffer): Promise<void> => {
    for (const root of roots()) {
      assert.ok((await fs.readFile(path.join(root, CLIENT, name))).equals(expected), `${root}/${CLIENT}/${name} holds the expected bytes`);
    }
  };
  const assertStoredNowhere = async (name: string): Promise<void> => {
    for (const root of roots()) {
      assert.ok(!(await storedFiles(root)).includes(`${CLIENT}/${name}`), `${root} keeps no ${name}`);
    }
  };
  const upload = async (relative: string, content: Buffer | string): Promise<void> => {
    const file = path.join(work, relative);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, content);
    testing.answer = (message) => (message.message.includes('already stored') ? 'Overwrite' : undefined);
    const result = await vscodeExtension.run<{ outcomes: { status: string }[] }>('dfs.upload', Uri.file(file), [Uri.file(file)]);
    testing.answer = () => undefined;
    assert.deepStrictEqual(result.outcomes.map((outcome) => outcome.status), ['uploaded']);
  };
  const uploadFolder = async (relative: string): Promise<void> => {
    const result = await vscodeExtension.run<{ outcomes: { status: string }[] }>('dfs.upload', Uri.file(path.join(work, relative)), [Uri.file(path.join(work, relative))]);
    assert.ok(result.outcomes.every((outcome) => outcome.status === 'uploaded'), JSON.stringify(result.outcomes));
  };

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ext-versions-'));
    dataDir = path.join(work, 'data');
    const basePort = await freePortRange(REPLICAS + 1);
    primaryPort = basePort + REPLICAS;
    vscodeExtension = activateExtension(work, { host: '127.0.0.1', port: basePort + REPLICAS, clientId: CLIENT, replicas: REPLICAS, basePort, dataDir, writeQuorum: 'all' });
    await vscodeExtension.run('dfs.startCluster');
    await testing.waitForContext('dfs.clusterState', 'online');
  });

  after(async () => {
    await vscodeExtension?.run('dfs.stopCluster').catch(() => undefined);
    await Promise.all(testing.tasks.map((task) => task.ended));
    await vscodeExtension?.close();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('the tree allows a multi-selection, and Delete on it is bound to the Delete key while the view has focus', () => {
    assert.strictEqual(testing.treeViews.get('dfs.files')?.canSelectMany, true);
    const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    const binding = manifest.contributes.keybindings.find((entry: { command: string }) => entry.command === 'dfs.deleteFile');
    assert.deepStrictEqual([binding.key, binding.when], ['delete', 'focusedView == dfs.files && !inputFocus']);
  });

  it('Upload Buffer sends the editor text in its saved file\'s encoding (UTF-16 with its BOM), and refuses one it cannot tell', async () => {
    const text = 'Grüße ✓\r\nzweite Zeile';
    const utf16 = path.join(work, 'utf16.txt');
    await fs.writeFile(utf16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('saved text', 'utf16le')]));
    const latin1 = path.join(work, 'latin1.txt');
    await fs.writeFile(latin1, Buffer.from('Gr\xfc\xdfe', 'latin1'));
    const dirty = (file: string): FakeTextDocument => ({ uri: Uri.file(file), isDirty: true, getText: () => text, save: async () => assert.fail('Upload Buffer does not save') });
    testing.answer = (message) => (message.message.includes('unsaved changes') ? 'Upload Buffer' : undefined);
    testing.textDocuments = [dirty(utf16)];
    const result = await vscodeExtension.run<{ outcomes: { status: string }[] }>('dfs.upload', Uri.file(utf16), [Uri.file(utf16)]);
    assert.deepStrictEqual(result.outcomes.map((outcome) => outcome.status), ['uploaded']);
    await assertStoredEverywhere('utf16.txt', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]));

    testing.textDocuments = [dirty(latin1)];
    const from = testing.messages.length;
    assert.strictEqual(await vscodeExtension.run('dfs.upload', Uri.file(latin1), [Uri.file(latin1)]), undefined);
    testing.textDocuments = [];
    testing.answer = () => undefined;
    assert.ok(testing.messages.slice(from).some((message) => message.kind === 'error' && /nothing was uploaded: latin1\.txt is saved in an encoding other than UTF-8 or UTF-16.*Save and Upload/.test(message.message)));
    await assertStoredNowhere('latin1.txt');
  });

  it('Show Versions lists each version with size and short checksum; Open reads a kept version read-only through dfs:?generation=N', async () => {
    await upload('story.txt', 'first draft\n');
    await upload('story.txt', 'second draft, longer\n');
    const seen = pickInTurn(labelled(/^Generation \d+$/), labelled(/Open$/));
    const outcome = await vscodeExtension.run<VersionOutcomeLike>('dfs.showVersions', (await nodeAt('story.txt')).element);
    assert.match(seen.titles[0], /^vera\/story\.txt: generation \d+ is current; 1 older version kept$/);
    assert.deepStrictEqual(
      seen.shown[0].map((item) => item.description?.replace(/ · .* · /, ' · … · ')),
      [`21 B · … · ${sha256('second draft, longer\n').slice(0, 12)}`, `12 B · … · ${sha256('first draft\n').slice(0, 12)}`],
    );
    assert.strictEqual(outcome.action, 'open');
    const opened = testing.opened.at(-1)!;
    assert.strictEqual(opened.uri.query, `generation=${outcome.generation}`);
    assert.strictEqual(opened.content.toString(), 'first draft\n');
    const fileSystem = testing.fileSystems.get('dfs')!.provider;
    const stat = await fileSystem.stat(opened.uri);
    assert.strictEqual(stat.size, 12);
    assert.strictEqual(stat.permissions, 1, 'a kept version is read-only');
    await assert.rejects(async () => fileSystem.writeFile(opened.uri, Buffer.from('x'), { create: false, overwrite: true }), /kept older version and cannot be changed.*Restore/);
    await assert.rejects(async () => fileSystem.delete(opened.uri, { recursive: false }), /kept older version/);
  });

  it('Show Versions from the editor title of a dfs: file; Compare with Current diffs the kept version against the current one', async () => {
    const uri = Uri.from({ scheme: 'dfs', path: `/${CLIENT}/story.txt` });
    pickInTurn(labelled(/^Generation \d+$/), labelled(/Compare with Current$/));
    const outcome = await vscodeExtension.run<VersionOutcomeLike>('dfs.showVersions', uri);
    assert.strictEqual(outcome.action, 'compareWithCurrent');
    const diff = testing.diffs.at(-1)!;
    assert.deepStrictEqual([diff.leftContent.toString(), diff.rightContent.toString()], ['first draft\n', 'second draft, longer\n']);
    assert.match(diff.title ?? '', /story\.txt \(generation \d+\) ↔ current/);
  });

  it('Restore makes the kept version current as a new generation, on every server', async () => {
    const before = await generationOnDisk(roots()[0], `${CLIENT}/story.txt`);
    assert.strictEqual(typeof before, 'number');
    pickInTurn(labelled(/^Generation \d+$/), labelled(/Restore$/));
    const from = testing.messages.length;
    const outcome = await vscodeExtension.run<VersionOutcomeLike>('dfs.showVersions', (await nodeAt('story.txt')).element);
    assert.ok(outcome.receipt, 'restored');
    assert.ok(outcome.receipt.generation > (before as number), 'the restore is a new generation');
    await assertStoredEverywhere('story.txt', Buffer.from('first draft\n'));
    for (const root of roots()) {
      assert.strictEqual(await generationOnDisk(root, `${CLIENT}/story.txt`), outcome.receipt.generation, `${root}'s catalog has the restored generation`);
    }
    assert.ok(testing.messages.slice(from).some((message) => message.kind === 'info' && /restored vera\/story\.txt: generation \d+'s bytes \(12 B\) are current again as generation \d+/.test(message.message)));
    const seen = pickInTurn();
    await vscodeExtension.run('dfs.showVersions', (await nodeAt('story.txt')).element);
    assert.match(seen.titles[0], /2 older versions kept/);
    assert.match(seen.shown[0][0].label, new RegExp(`Generation ${outcome.receipt.generation} \\(current\\)`));
  });

  it('Show Versions of a file deleted meanwhile says so instead of failing', async () => {
    await upload('short-lived.txt', 'soon gone');
    const node = await nodeAt('short-lived.txt');
    testing.answer = (message) => (message.message.startsWith('Delete') ? 'Delete' : undefined);
    await vscodeExtension.run('dfs.deleteFile', node.element, [node.element]);
    testing.answer = () => undefined;
    const from = testing.messages.length;
    const seen = pickInTurn();
    assert.strictEqual(await vscodeExtension.run('dfs.showVersions', node.element), undefined);
    assert.strictEqual(seen.titles.length, 0, 'no empty list is shown');
    assert.ok(testing.messages.slice(from).some((message) => message.kind === 'warning' && /short-lived\.txt: no versions are kept \(deleted, or never stored\)/.test(message.message)));
  });

  it('Compare with Local offers the workspace file at the same path, or any file; Compare with DFS finds the stored file of a local one', async () => {
    await fs.writeFile(path.join(work, 'story.txt'), 'my local edit\n');
    const seen = pickInTurn(labelled(/^\$\(file\) story\.txt$/));
    await vscodeExtension.run('dfs.compareWithLocal', (await nodeAt('story.txt')).element);
    assert.strictEqual(seen.shown[0].length, 2, 'the workspace file and "Choose a File..."');
    let diff = testing.diffs.at(-1)!;
    assert.strictEqual(diff.left.scheme, 'dfs');
    assert.deepStrictEqual([diff.leftContent.toString(), diff.rightContent.toString()], ['first draft\n', 'my local edit\n']);

    const elsewhere = path.join(work, 'elsewhere.txt');
    await fs.writeFile(elsewhere, 'another file');
    pickInTurn(labelled(/Choose a File/));
    testing.openDialog = () => [Uri.file(elsewhere)];
    await vscodeExtension.run('dfs.compareWithLocal', (await nodeAt('story.txt')).element);
    testing.openDialog = () => undefined;
    assert.strictEqual(testing.diffs.at(-1)!.rightContent.toString(), 'another file');

    await vscodeExtension.run('dfs.compareWithDfs', Uri.file(path.join(work, 'story.txt')));
    diff = testing.diffs.at(-1)!;
    assert.strictEqual(diff.left.path, `/${CLIENT}/story.txt`);
    assert.deepStrictEqual([diff.leftContent.toString(), diff.rightContent.toString()], ['first draft\n', 'my local edit\n']);
    assert.match(diff.title ?? '', /vera\/story\.txt \(DFS\) ↔ story\.txt \(local\)/);

    const from = testing.messages.length;
    const count = testing.diffs.length;
    assert.strictEqual(await vscodeExtension.run('dfs.compareWithDfs', Uri.file(elsewhere)), undefined);
    assert.strictEqual(testing.diffs.length, count, 'no diff for a file that is not stored');
    assert.ok(testing.messages.slice(from).some((message) => /"elsewhere\.txt" is not stored for client vera.*Upload to DFS/.test(message.message)));
  });

  it('Copy... stores the file under a new name, refusing names that are taken', async () => {
    let offered: { value?: string; validateInput?: (value: string) => string | undefined } = {};
    testing.inputBox = (options) => {
      offered = options as typeof offered;
      return 'copies/story copy.txt';
    };
    assert.strictEqual(await vscodeExtension.run('dfs.copyFile', (await nodeAt('story.txt')).element), 'copies/story copy.txt');
    testing.inputBox = () => undefined;
    assert.strictEqual(offered.value, 'story copy.txt');
    assert.match(offered.validateInput!('story.txt') ?? '', /current name/);
    assert.strictEqual(offered.validateInput!('story copy.txt'), undefined);
    assert.match(offered.validateInput!('a\\b') ?? '', /backslash/);
    assert.match(offered.validateInput!('story.txt/x') ?? '', /"story\.txt" is a stored file/);
    await assertStoredEverywhere('copies/story copy.txt', Buffer.from('first draft\n'));
    await assertStoredEverywhere('story.txt', Buffer.from('first draft\n'));
    // The next Copy reads the stored names afresh: the copy just made is taken now, and Escape stores nothing.
    testing.inputBox = (options) => {
      offered = options as typeof offered;
      return undefined;
    };
    assert.strictEqual(await vscodeExtension.run('dfs.copyFile', (await nodeAt('story.txt')).element), undefined);
    testing.inputBox = () => undefined;
    assert.strictEqual(offered.value, 'story copy.txt');
    assert.match(offered.validateInput!('copies/story copy.txt') ?? '', /"copies\/story copy\.txt" is already stored/);
  });

  it('downloads a folder; a cancel midway leaves only complete, verified files and no temporary ones', async () => {
    const big = Buffer.alloc(24 * 1024 * 1024, 3);
    await fs.mkdir(path.join(work, 'bundle', 'inner'), { recursive: true });
    await fs.writeFile(path.join(work, 'bundle', 'a.txt'), 'alpha');
    await fs.writeFile(path.join(work, 'bundle', 'inner', 'small.txt'), 'small');
    await fs.writeFile(path.join(work, 'bundle', 'big.bin'), big);
    await fs.writeFile(path.join(work, 'bundle', 'z.txt'), 'zulu');
    await uploadFolder('bundle');
    const folder = await nodeAt('bundle');

    const cancelled = path.join(work, 'download-cancelled');
    await fs.mkdir(cancelled);
    testing.openDialog = () => [Uri.file(cancelled)];
    let cancelledAt: string | undefined;
    testing.onProgressReport = (progressRun, report) => {
      if (!cancelledAt && progressRun.title?.startsWith('DFS: downloading') && /^\d.* of 24\.0 MiB$/.test(report.message ?? '') && !/^0 B/.test(report.message ?? '')) {
        cancelledAt = report.message;
        progressRun.cancel();
      }
    };
    const stopped = await vscodeExtension.run<DownloadReportLike>('dfs.downloadFile', folder.element, [folder.element]);
    testing.onProgressReport = undefined;
    assert.ok(cancelledAt, 'cancelled while bytes arrived');
    assert.strictEqual(stopped.cancelled, true);
    // Folders first, then files by name: inner/small.txt and a.txt come before big.bin, z.txt after it.
    assert.deepStrictEqual(stopped.downloaded, ['bundle/inner/small.txt', 'bundle/a.txt']);
    const left = await listFiles(cancelled);
    assert.deepStrictEqual(left, stopped.downloaded.sort(), 'only the files downloaded whole are there, no temporary file');
    for (const relative of left) {
      assert.ok((await fs.readFile(path.join(cancelled, relative))).equals(await fs.readFile(path.join(work, relative))), `${relative} is complete`);
    }
    assert.ok(testing.messages.some((message) => message.kind === 'warning' && /download cancelled: .*nothing partial was kept/.test(message.message)));

    const whole = path.join(work, 'download-whole');
    await fs.mkdir(whole);
    testing.openDialog = () => [Uri.file(whole)];
    const done = await vscodeExtension.run<DownloadReportLike>('dfs.downloadFile', folder.element, [folder.element]);
    testing.openDialog = () => undefined;
    assert.deepStrictEqual([done.cancelled, done.failed], [false, []]);
    assert.deepStrictEqual(await listFiles(whole), ['bundle/a.txt', 'bundle/big.bin', 'bundle/inner/small.txt', 'bundle/z.txt']);
    assert.ok((await fs.readFile(path.join(whole, 'bundle', 'big.bin'))).equals(big));
    const run = testing.progress.at(-1)!;
    assert.ok(run.cancellable, 'a folder download offers Cancel');
    assert.strictEqual(run.reports.reduce((sum, report) => sum + (report.increment ?? 0), 0), 100);
  });

  it('downloads a multi-selection, asking once about files already there', async () => {
    const target = path.join(work, 'download-multi');
    await fs.mkdir(target);
    await fs.writeFile(path.join(target, 'story.txt'), 'keep me');
    testing.openDialog = () => [Uri.file(target)];
    const question: string[] = [];
    testing.answer = (message) => {
      question.push(message.message);
      return message.message.includes('already exist') ? 'Skip Existing' : undefined;
    };
    const a = await nodeAt('story.txt');
    const b = await nodeAt('bundle', 'a.txt');
    const report = await vscodeExtension.run<DownloadReportLike>('dfs.downloadFile', a.element, [a.element, b.element]);
    testing.answer = () => undefined;
    testing.openDialog = () => undefined;
    assert.deepStrictEqual([report.downloaded, report.skipped], [['a.txt'], ['story.txt']]);
    assert.strictEqual(question.filter((text) => text.includes('already exist')).length, 1);
    assert.strictEqual(await fs.readFile(path.join(target, 'story.txt'), 'utf8'), 'keep me');
    assert.strictEqual(await fs.readFile(path.join(target, 'a.txt'), 'utf8'), 'alpha');
  });

  it('Filter... narrows the tree to matching files, opening their folders; Clear Filter shows everything again', async () => {
    testing.inputBox = () => 'big';
    await vscodeExtension.run('dfs.filter');
    testing.inputBox = () => undefined;
    assert.strictEqual(testing.contexts.get('dfs.filterActive'), true);
    assert.deepStrictEqual(treePaths(await tree()), [CLIENT + '/', `${CLIENT}/bundle/`, `${CLIENT}/bundle/big.bin`]);
    const folder = findNode(await tree(), [CLIENT, 'bundle'])!;
    assert.strictEqual(folder.item.collapsibleState, 2, 'folders of a filtered tree are open');
    assert.match(testing.treeViews.get('dfs.files')!.message ?? '', /Showing only files whose path matches "big"\. Clear Filter/);
    await vscodeExtension.run('dfs.clearFilter');
    assert.strictEqual(testing.contexts.get('dfs.filterActive'), false);
    assert.strictEqual(testing.treeViews.get('dfs.files')!.message, undefined);
    assert.ok(treePaths(await tree()).includes(`${CLIENT}/story.txt`));
  });

  it('Copy Path copies client/name of every selected row', async () => {
    const a = await nodeAt('story.txt');
    const b = await nodeAt('bundle');
    await vscodeExtension.run('dfs.copyPath', a.element, [a.element, b.element]);
    assert.strictEqual(testing.clipboard, `${CLIENT}/story.txt\n${CLIENT}/bundle/`);
  });

  it('deletes a multi-selection after one confirmation naming the count; the Delete key acts on the tree\'s selection', async () => {
    const a = await nodeAt('copies', 'story copy.txt');
    const folder = await nodeAt('bundle');
    const confirmations: { message: string; detail?: string }[] = [];
    testing.answer = (message) => {
      if (message.message.startsWith('Delete')) {
        confirmations.push(message);
      }
      return undefined;
    };
    assert.strictEqual(await vscodeExtension.run('dfs.deleteFile', a.element, [a.element, folder.element]), undefined, 'not confirmed: nothing deleted');
    await assertStoredEverywhere('bundle/a.txt', Buffer.from('alpha'));
    assert.deepStrictEqual(confirmations.map((confirmation) => confirmation.message), ['Delete 5 files from DFS?']);
    assert.match(confirmations[0].detail ?? '', /^vera\/copies\/story copy\.txt\nvera\/bundle\/inner\/small\.txt\nvera\/bundle\/a\.txt\nvera\/bundle\/big\.bin\nvera\/bundle\/z\.txt\nEvery copy[\s\S]*\(24\.0 MiB in all\)\. This cannot be undone\.$/);

    testing.answer = (message) => (message.message.startsWith('Delete') ? 'Delete' : undefined);
    // From the Delete key, VS Code passes no row: the command acts on the selection.
    testing.treeViews.get('dfs.files')!.selection = [a.element, folder.element];
    const report = await vscodeExtension.run<{ deleted: string[]; notDeleted: unknown[] }>('dfs.deleteFile');
    testing.answer = () => undefined;
    testing.treeViews.get('dfs.files')!.selection = [];
    assert.deepStrictEqual(report.notDeleted, []);
    assert.strictEqual(report.deleted.length, 5);
    for (const name of ['copies/story copy.txt', 'bundle/a.txt', 'bundle/z.txt', 'bundle/big.bin', 'bundle/inner/small.txt']) {
      await assertStoredNowhere(name);
    }
    assert.ok(testing.messages.some((message) => message.message === 'DFS: deleted 5 files.'));
    assert.deepStrictEqual(treePaths(await tree()), [`${CLIENT}/`, `${CLIENT}/story.txt`, `${CLIENT}/utf16.txt`]);
  });

  it('Rename or Move... renames a file on every server, and a folder file by file after saying so', async () => {
    await upload('solo.txt', 'solo bytes');
    await fs.mkdir(path.join(work, 'moving', 'deep'), { recursive: true });
    await fs.writeFile(path.join(work, 'moving', 'one.txt'), 'one');
    await fs.writeFile(path.join(work, 'moving', 'deep', 'two.txt'), 'two');
    await uploadFolder('moving');
    let box: { value?: string; validateInput?: (value: string) => string | undefined } = {};
    testing.inputBox = (options) => {
      box = options as typeof box;
      return 'moved/solo.txt';
    };
    const fileReport = await vscodeExtension.run<{ renamed: unknown[]; failed?: unknown }>('dfs.renameFile', (await nodeAt('solo.txt')).element);
    assert.strictEqual(box.value, 'solo.txt');
    assert.match(box.validateInput!('story.txt') ?? '', /already stored/);
    assert.deepStrictEqual([fileReport.renamed.length, fileReport.failed], [1, undefined]);
    await assertStoredNowhere('solo.txt');
    await assertStoredEverywhere('moved/solo.txt', Buffer.from('solo bytes'));

    const confirmations: { message: string; detail?: string }[] = [];
    testing.answer = (message) => {
      confirmations.push(message);
      return message.message.startsWith('Move') ? 'Move' : undefined;
    };
    testing.inputBox = (options) => {
      box = options as typeof box;
      return 'moved/moving';
    };
    await vscodeExtension.run('dfs.renameFile', (await nodeAt('moving')).element);
    assert.match(box.validateInput!('moving/deep') ?? '', /cannot move into itself/);
    assert.deepStrictEqual(confirmations.map((confirmation) => confirmation.message), ['Move 2 files from vera/moving/ to moved/moving/?']);
    assert.match(confirmations[0].detail ?? '', /renamed one by one.*stops there/);
    for (const name of ['moving/one.txt', 'moving/deep/two.txt']) {
      await assertStoredNowhere(name);
    }
    await assertStoredEverywhere('moved/moving/one.txt', Buffer.from('one'));
    await assertStoredEverywhere('moved/moving/deep/two.txt', Buffer.from('two'));
    assert.ok(treePaths(await tree()).includes(`${CLIENT}/moved/moving/deep/two.txt`));

    // A file changed after the tree showed it stops the folder's renaming there, and says what moved.
    await fs.mkdir(path.join(work, 'pair', 'a'), { recursive: true });
    await fs.writeFile(path.join(work, 'pair', 'a', 'first.txt'), 'first');
    await fs.writeFile(path.join(work, 'pair', 'second.txt'), 'second');
    await uploadFolder('pair');
    const pair = await nodeAt('pair');
    // Someone else stores a new version of one of its files after the tree showed it.
    const elsewhere = new DfsClient({ host: '127.0.0.1', port: primaryPort, clientId: CLIENT });
    await elsewhere.upload('pair/second.txt', [Buffer.from('second, changed meanwhile')], 25);
    testing.inputBox = () => 'paired';
    const from = testing.messages.length;
    const stopped = await vscodeExtension.run<{ renamed: { from: string }[]; failed?: { reason: string } }>('dfs.renameFile', pair.element);
    testing.inputBox = () => undefined;
    testing.answer = () => undefined;
    assert.deepStrictEqual(stopped.renamed.map((step) => step.from), ['pair/a/first.txt']);
    assert.match(stopped.failed?.reason ?? '', /pair\/second\.txt changed since the tree showed it/);
    await assertStoredEverywhere('paired/a/first.txt', Buffer.from('first'));
    await assertStoredEverywhere('pair/second.txt', Buffer.from('second, changed meanwhile'));
    await assertStoredNowhere('paired/second.txt');
    assert.ok(testing.messages.slice(from).some((message) => message.kind === 'error' && /1 file moved to paired\/, 1 file stayed in pair\/ \(renaming stopped there\)/.test(message.message)));
  });
});

async function listFiles(root: string, prefix = ''): Promise<string[]> {
  const entries = await fs.readdir(path.join(root, prefix), { withFileTypes: true });
  const nested = await Promise.all(entries.map((entry) => (entry.isDirectory() ? listFiles(root, path.posix.join(prefix, entry.name)) : [path.posix.join(prefix, entry.name)])));
  return nested.flat().sort();
}
