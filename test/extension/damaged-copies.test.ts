import * as assert from 'assert';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { rot } from '../support/bit-rot';
import { TestCluster } from '../support/cluster';
import { sha256, waitForCopies } from '../support/convergence';
import { ExtensionUnderTest, startExtensionOnCluster, stopExtensionOnCluster } from '../support/extension-harness';
import { SpawnedNode, stopChild } from '../support/processes';
import { Uri, readAsEditor, testing } from '../support/vscode-double';
import { findNode, renderTree } from '../support/vscode-double/tree-snapshot';
import { waitFor } from '../support/wait';

const CLIENT = 'rotten';
/** Several chunks: the node sends all but the last before it can tell the copy is damaged. */
const SIZE = 3 * 1024 * 1024 + 77;

/**
 * The editor's reads of a copy that rotted on disk: the node serving it cuts the
 * transfer one chunk short, and the extension asks once more (as `dfs get -o` does),
 * getting the repaired copy or another node's. A copy damaged everywhere is never
 * shown: the read fails saying what happened and what to do.
 */
describe('extension: reads of a damaged copy are asked for again, never shown wrong', function () {
  // The read-only case waits for the absent primary twice (8 s each) before the replicas answer.
  this.timeout(120_000);
  let cluster: TestCluster;
  let work: string;
  let vscodeExtension: ExtensionUnderTest;
  const run = <T>(command: string, ...args: unknown[]): Promise<T> => vscodeExtension.run<T>(command, ...args);
  const uriOf = (name: string, generation?: number): Uri => Uri.from({ scheme: 'dfs', path: `/${CLIENT}/${name}`, query: generation === undefined ? '' : `generation=${generation}` });
  const stored = (root: string, name: string): string => path.join(root, CLIENT, name);

  /** Uploads `data` and waits until every node holds its bytes, so each node's copy can be damaged on its own. */
  const put = async (name: string, data: Buffer): Promise<number> => {
    const { generation } = await cluster.client(CLIENT).upload(name, [data], data.length);
    await waitForCopies(cluster.allRoots(), `${CLIENT}/${name}`, data);
    return generation;
  };
  /** The node's log says it cut a download of `name` short because its copy failed the checksum. */
  const cutBy = (node: SpawnedNode, name: string, from = 0): boolean => node.output.slice(from).some((line) => line.includes(`DOWNLOAD ${CLIENT}/${name}: cut one chunk short`));
  const repaired = (name: string, data: Buffer): Promise<boolean> =>
    waitFor(async () => sha256(await fs.readFile(stored(cluster.primaryRoot(), name))) === sha256(data), `the primary to repair its copy of ${name}`, 30_000);

  before(async () => {
    ({ cluster, work, extension: vscodeExtension } = await startExtensionOnCluster(CLIENT, 'dfs-ext-rot-', { args: ['--sync-interval', '200'] }));
  });

  after(async () => {
    await stopExtensionOnCluster({ cluster, work, extension: vscodeExtension });
  });

  it('opens a file whose primary copy rotted: the cut transfer is asked for again and the editor shows the stored bytes', async () => {
    const data = randomBytes(SIZE);
    await put('open.bin', data);
    await rot(stored(cluster.primaryRoot(), 'open.bin'), 4096);
    const from = cluster.primary.output.length;
    const model = await readAsEditor(uriOf('open.bin'));
    assert.ok(cutBy(cluster.primary, 'open.bin', from), 'the primary cut the first transfer short');
    assert.strictEqual(sha256(model.content), sha256(data));
    await repaired('open.bin', data);
  });

  it('Compare with Current of a kept version reads both sides through the same retry, each rotted on the primary', async () => {
    const first = randomBytes(SIZE);
    const second = randomBytes(SIZE + 1);
    const kept = await put('versions.bin', first);
    await put('versions.bin', second);
    await rot(path.join(cluster.primaryRoot(), '.dfs', 'versions', CLIENT, String(kept)), 100);
    await rot(stored(cluster.primaryRoot(), 'versions.bin'), 100);
    const from = cluster.primary.output.length;
    // The kept version (not the one labelled current), then what to do with it.
    const answers = [/^Generation \d+$/, /Compare with Current$/];
    testing.quickPick = (items) => {
      const answer = answers.shift();
      return items.find((item) => answer?.test(item.label));
    };
    const outcome = await run<{ action: string; generation: number }>('dfs.showVersions', uriOf('versions.bin'));
    testing.quickPick = () => undefined;
    assert.deepStrictEqual(outcome, { action: 'compareWithCurrent', generation: kept });
    const diff = testing.diffs.at(-1)!;
    assert.strictEqual(diff.left.query, `generation=${kept}`);
    assert.deepStrictEqual([sha256(diff.leftContent), sha256(diff.rightContent)], [sha256(first), sha256(second)]);
    assert.strictEqual(cluster.primary.output.slice(from).filter((line) => line.includes(`DOWNLOAD ${CLIENT}/versions.bin: cut one chunk short`)).length, 2, 'both sides were cut once');
  });

  it('Compare with Local and Download... of a rotted copy get the stored bytes', async () => {
    const data = randomBytes(SIZE);
    await put('tree.bin', data);
    await run('dfs.refresh');
    const node = await waitFor(async () => findNode(await renderTree('dfs.files'), [CLIENT, 'tree.bin']), 'tree.bin in the tree');

    await rot(stored(cluster.primaryRoot(), 'tree.bin'), 10);
    let from = cluster.primary.output.length;
    const local = path.join(work, 'elsewhere', 'mine.bin');
    await fs.mkdir(path.dirname(local), { recursive: true });
    await fs.writeFile(local, 'my own bytes');
    testing.openDialog = () => [Uri.file(local)];
    await run('dfs.compareWithLocal', node.element);
    testing.openDialog = () => undefined;
    assert.ok(cutBy(cluster.primary, 'tree.bin', from), 'the primary cut the first transfer short');
    assert.deepStrictEqual([sha256(testing.diffs.at(-1)!.leftContent), testing.diffs.at(-1)!.rightContent.toString()], [sha256(data), 'my own bytes']);

    await repaired('tree.bin', data);
    await rot(stored(cluster.primaryRoot(), 'tree.bin'), SIZE - 1);
    from = cluster.primary.output.length;
    const destination = path.join(work, 'downloads', 'tree.bin');
    await fs.mkdir(path.dirname(destination));
    testing.saveDialog = () => Uri.file(destination);
    assert.strictEqual(await run('dfs.downloadFile', node.element), destination);
    testing.saveDialog = () => undefined;
    assert.ok(cutBy(cluster.primary, 'tree.bin', from), 'the primary cut the first transfer short');
    assert.strictEqual(sha256(await fs.readFile(destination)), sha256(data));
    assert.deepStrictEqual(await fs.readdir(path.dirname(destination)), ['tree.bin'], 'nothing of the cut attempt is left');
  });

  it('a copy damaged on every node is never shown: opening, comparing and downloading it fail saying what happened and what to do', async () => {
    const data = randomBytes(SIZE);
    await put('lost.bin', data);
    for (const root of cluster.allRoots()) {
      await rot(stored(root, 'lost.bin'), 2048);
    }
    await assert.rejects(readAsEditor(uriOf('lost.bin')), (error: Error) => {
      assert.strictEqual(error.name, 'FileSystemError');
      assert.match(error.message, /^DFS: the stored copy of lost\.bin is damaged and no replica holds a good one\. It was asked for twice and no copy arrived whole/);
      assert.match(error.message, /nothing of it was kept or shown.*restore a kept version with "DFS: Show Versions", or upload the file again/);
      return true;
    });

    const diffs = testing.diffs.length;
    await run('dfs.refresh');
    const node = await waitFor(async () => findNode(await renderTree('dfs.files'), [CLIENT, 'lost.bin']), 'lost.bin in the tree');
    testing.openDialog = () => [Uri.file(path.join(work, 'elsewhere', 'mine.bin'))];
    let from = testing.messages.length;
    assert.strictEqual(await run('dfs.compareWithLocal', node.element), undefined);
    testing.openDialog = () => undefined;
    assert.strictEqual(testing.diffs.length, diffs, 'no diff editor opened');
    const refused = await testing.waitForMessage((message) => message.kind === 'error', from);
    assert.match(refused.message, /^DFS: the stored copy of lost\.bin is damaged and no replica holds a good one\. It was asked for twice.*"DFS: Show Versions"/);

    const destination = path.join(work, 'lost', 'lost.bin');
    await fs.mkdir(path.dirname(destination));
    testing.saveDialog = () => Uri.file(destination);
    from = testing.messages.length;
    assert.strictEqual(await run('dfs.downloadFile', node.element), undefined);
    testing.saveDialog = () => undefined;
    const failure = await testing.waitForMessage((message) => message.kind === 'error', from);
    assert.match(failure.message, /^DFS: download of rotten\/lost\.bin failed: the stored copy of lost\.bin is damaged and no replica holds a good one \[CHECKSUM\]\. It was asked for twice/);
    assert.match(failure.message, /restore a kept version with "DFS: Show Versions", or upload the file again/);
    assert.deepStrictEqual(await fs.readdir(path.dirname(destination)), [], 'no bytes of the damaged copy were written');
  });

  it('with no primary, a replica\'s rotted copy is cut, asked for again and read from the other replica', async () => {
    const data = randomBytes(SIZE);
    await put('readonly.bin', data);
    await stopChild(cluster.primary.child, 'SIGKILL');
    await rot(stored(cluster.replicaRoot(0), 'readonly.bin'), 512);
    const from = cluster.replicas[0]!.output.length;
    const model = await readAsEditor(uriOf('readonly.bin'));
    assert.ok(cutBy(cluster.replicas[0]!, 'readonly.bin', from), 'replica 1 (the first holder asked) cut the first transfer short');
    assert.strictEqual(sha256(model.content), sha256(data));
  });
});
