import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TestCluster } from '../support/cluster';
import { ExtensionUnderTest, activateExtension } from '../support/extension-harness';
import { freePortRange } from '../support/ports';
import { stopChild } from '../support/processes';
import { Uri, testing } from '../support/vscode-double';
import { findNode, renderTree, treePaths } from '../support/vscode-double/tree-snapshot';

const CLIENT = 'ha';

describe('extension: dfs.servers, and a read-only tree when no primary answers', function () {
  // The first request that finds no primary keeps trying both addresses for 8 s.
  this.timeout(120_000);
  let cluster: TestCluster;
  let work: string;
  let vscodeExtension: ExtensionUnderTest;
  let dead: string;
  const run = <T>(command: string, ...args: unknown[]): Promise<T> => vscodeExtension.run<T>(command, ...args);

  before(async () => {
    cluster = await TestCluster.start({ replicas: 2 });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ext-ha-'));
    dead = `127.0.0.1:${await freePortRange(1)}`;
    // dfs.port names a port nothing listens on: dfs.servers, when set, replaces dfs.host:dfs.port.
    vscodeExtension = activateExtension(work, {
      host: '127.0.0.1',
      port: Number(dead.split(':')[1]),
      servers: [dead, cluster.address],
      clientId: CLIENT,
      replicas: 2,
      basePort: cluster.basePort,
      dataDir: path.join(work, 'data'),
    });
  });

  after(async () => {
    await vscodeExtension?.close();
    await cluster?.destroy();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('finds the primary at the second address of dfs.servers and uploads through it', async () => {
    await testing.waitForStatusBar((text) => text.includes('DFS 2/2'));
    const file = path.join(work, 'notes.md');
    await fs.writeFile(file, '# kept in three copies');
    await run('dfs.upload', Uri.file(file), [Uri.file(file)]);
    for (const root of cluster.allRoots()) {
      assert.strictEqual(await fs.readFile(path.join(root, CLIENT, 'notes.md'), 'utf8'), '# kept in three copies', root);
    }
    assert.deepStrictEqual(treePaths(await renderTree('dfs.files')), [`${CLIENT}/`, `${CLIENT}/notes.md`]);
    assert.strictEqual(testing.treeViews.get('dfs.files')?.message, undefined);
  });

  it('with the primary gone, shows the replicas\' files read-only, opens them from a replica, and refuses an upload saying why', async () => {
    await stopChild(cluster.primary.child, 'SIGKILL');
    await run('dfs.refresh');
    await testing.waitForContext('dfs.clusterState', 'readOnly');
    assert.match(await testing.waitForStatusBar((text) => text.includes('read-only')), /DFS read-only/);
    assert.match(testing.treeViews.get('dfs.files')?.message ?? '', /^Read-only: no primary answers \(.*\)\. Files are read from 2 of 2 replicas until a primary is back/);

    const nodes = await renderTree('dfs.files');
    assert.deepStrictEqual(treePaths(nodes), [`${CLIENT}/`, `${CLIENT}/notes.md`]);
    const node = findNode(nodes, [CLIENT, 'notes.md']);
    assert.ok(node);
    await run('dfs.openFile', node.element);
    const opened = testing.opened.at(-1);
    assert.ok(opened && opened.uri.path === `/${CLIENT}/notes.md`);
    assert.strictEqual(opened.content.toString('utf8'), '# kept in three copies');

    const from = testing.messages.length;
    const file = path.join(work, 'late.md');
    await fs.writeFile(file, 'not now');
    await run('dfs.upload', Uri.file(file), [Uri.file(file)]);
    const refusal = await testing.waitForMessage((message) => message.kind === 'error', from);
    assert.match(refusal.message, /nothing was uploaded: no primary answers at .*the cluster is read-only until a primary is back: start one/);
    for (const root of cluster.allRoots()) {
      await assert.rejects(fs.stat(path.join(root, CLIENT, 'late.md')), root);
    }
  });

  it('follows the primary back and leaves read-only mode', async () => {
    await cluster.startPrimary(cluster.primaryPort);
    await run('dfs.refresh');
    await testing.waitForStatusBar((text) => text.includes('DFS 2/2'));
    await testing.waitForContext('dfs.clusterState', 'online');
    assert.strictEqual(testing.treeViews.get('dfs.files')?.message, undefined);
  });
});
