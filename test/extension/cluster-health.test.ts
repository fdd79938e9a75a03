import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { formatKey, issueKey } from '../../server/protocol';
import { TestCluster, storedFiles } from '../support/cluster';
import { dfsProcesses } from '../support/dfs-processes';
import { ExtensionUnderTest, activateExtension } from '../support/extension-harness';
import { HaCluster } from '../support/ha-cluster';
import { freePortRange, portAnswers } from '../support/ports';
import { REPO_ROOT } from '../support/processes';
import { ShownMessage, Uri, createExtensionContext, testing } from '../support/vscode-double';
import { RenderedNode, findNode, renderTree, treePaths } from '../support/vscode-double/tree-snapshot';
import { waitFor } from '../support/wait';

interface BatchResultLike {
  outcomes: { name?: string; status: string; code?: string; reason?: string }[];
}

const CLIENT = 'alice';
const REPLICAS = 3;

/** The Cluster view as VS Code would draw it: label -> [description, contextValue]. */
async function clusterRows(): Promise<Map<string, { description: string; contextValue?: string; node: RenderedNode }>> {
  const rows = await renderTree('dfs.cluster');
  return new Map(rows.map((row) => [row.item.label, { description: row.item.description ?? '', contextValue: row.item.contextValue, node: row }]));
}

/** Waits until the Cluster view's row `label` satisfies `matches` (the view redraws on status checks and process changes). */
async function waitForRow(label: string, matches: (row: { description: string; contextValue?: string }) => boolean, what: string, timeoutMs = 40_000): Promise<RenderedNode> {
  let last = '';
  try {
    return await waitFor(
      async () => {
        const row = (await clusterRows()).get(label);
        last = JSON.stringify(row && { description: row.description, contextValue: row.contextValue });
        return row && matches(row) ? row.node : undefined;
      },
      `${label} ${what}`,
      timeoutMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; the row is ${last}`);
  }
}

describe('extension: the Cluster view against servers this window started', function () {
  // Several restarts of real processes on a two-core machine, and catch-ups that run every 5 s.
  this.timeout(240_000);

  let work: string;
  let dataDir: string;
  let basePort: number;
  let port: number;
  let vscodeExtension: ExtensionUnderTest;
  const run = <T>(command: string, ...args: unknown[]): Promise<T> => vscodeExtension.run<T>(command, ...args);
  const roots = (): string[] => [path.join(dataDir, 'servidor'), ...Array.from({ length: REPLICAS }, (_, index) => path.join(dataDir, `replica${index + 1}`))];
  const replicaRoot = (id: number): string => path.join(dataDir, `replica${id}`);
  const pidOfReplica = (id: number): number | undefined => dfsProcesses('replica', '--port', String(basePort + id - 1), '--data-dir', dataDir)[0]?.pid;
  const upload = async (name: string, content: string): Promise<BatchResultLike> => {
    const file = path.join(work, name);
    await fs.writeFile(file, content);
    return run<BatchResultLike>('dfs.upload', Uri.file(file), [Uri.file(file)]);
  };
  const holds = async (root: string, name: string, content: string): Promise<boolean> => (await fs.readFile(path.join(root, CLIENT, name), 'utf8').catch(() => undefined)) === content;
  const fileRow = async (name: string): Promise<RenderedNode | undefined> => findNode(await renderTree('dfs.files'), [CLIENT, name]);

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ext-health-'));
    dataDir = path.join(work, 'data');
    basePort = await freePortRange(REPLICAS + 1);
    port = basePort + REPLICAS;
    // Under a majority quorum (2 of 3) uploads go on with one replica down, so its catch-up can be watched.
    vscodeExtension = activateExtension(work, { host: '127.0.0.1', port, clientId: CLIENT, replicas: REPLICAS, basePort, dataDir, writeQuorum: 'majority' });
    await run('dfs.startCluster');
    await testing.waitForStatusBar((text) => text.includes(`DFS ${REPLICAS}/${REPLICAS}`));
  });

  after(async () => {
    await vscodeExtension?.close();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('lists the primary and every replica as up and in step, with Restart and Stop for each, since this window started them', async () => {
    assert.ok(testing.treeViews.has('dfs.cluster'), 'the Cluster view is registered');
    // A primary just started compares its catalog with the replicas first: its row says "recovering" until then.
    await waitForRow(`primary 127.0.0.1:${port}`, (row) => row.description !== 'recovering', 'to finish recovering');
    const rows = await clusterRows();
    assert.deepStrictEqual([...rows.keys()], [`primary 127.0.0.1:${port}`, 'replica 1', 'replica 2', 'replica 3']);
    assert.strictEqual(rows.get(`primary 127.0.0.1:${port}`)!.description, 'up · 0 files, 0 B');
    for (const id of [1, 2, 3]) {
      assert.match(rows.get(`replica ${id}`)!.description, /^up · in step · (synced just now|never fully synced)$/);
    }
    assert.ok([...rows.values()].every((row) => row.contextValue === 'dfsServerRunningHere'), 'every row offers Restart and Stop');
  });

  it('a replica killed with kill -9 shows down; uploads go on; Restart from the view brings it back and it catches up, bytes on its disk, copies live in the tree', async () => {
    assert.strictEqual((await upload('before.txt', 'stored while all were up')).outcomes[0].status, 'uploaded');
    const pid = pidOfReplica(2);
    assert.ok(pid, 'replica 2 runs as its own process');
    process.kill(pid, 'SIGKILL');
    await waitForRow('replica 2', (row) => row.description.startsWith('down') && row.contextValue === 'dfsServerStoppedHere', 'to show down, with Restart');
    assert.match((await clusterRows()).get('replica 1')!.description, /^up/, 'the others stay up');

    const meanwhile = await upload('meanwhile.txt', 'stored while replica 2 was down');
    assert.strictEqual(meanwhile.outcomes[0].status, 'uploaded', JSON.stringify(meanwhile));
    assert.ok(!(await holds(replicaRoot(2), 'meanwhile.txt', 'stored while replica 2 was down')), 'replica 2 was down: it has not got it');
    await waitForRow('replica 2', (row) => /^down · 1 file behind/.test(row.description), 'to count the file it lacks');
    const short = await fileRow('meanwhile.txt');
    assert.ok(short, 'the new file is in the tree');
    assert.match(short.item.description ?? '', /· 3\/4 copies$/, 'the tree shows the copies it has now');
    assert.match(String(short.item.tooltip), /Copies: 3 of 4/);

    await run('dfs.restartServer', (await waitForRow('replica 2', () => true, 'to be listed')).element);
    assert.ok(pidOfReplica(2), 'replica 2 runs again');
    await waitFor(() => holds(replicaRoot(2), 'meanwhile.txt', 'stored while replica 2 was down'), 'replica 2 to catch up meanwhile.txt on its disk', 40_000);
    assert.ok(await holds(replicaRoot(2), 'before.txt', 'stored while all were up'), 'what it had is still there');
    await waitForRow('replica 2', (row) => /^up · in step · synced /.test(row.description) && row.contextValue === 'dfsServerRunningHere', 'to show up and in step');
    // No Refresh: the tree lists again when the status says the copies changed.
    await waitFor(async () => {
      const row = await fileRow('meanwhile.txt');
      return row && !/copies/.test(row.item.description ?? '') && /Copies: 4 of 4/.test(String(row.item.tooltip));
    }, 'the tree to show meanwhile.txt with 4 of 4 copies', 40_000);
  });

  it('Stop from the view stops that server only, as asked (no crash warning); the row then offers Restart', async () => {
    const from = testing.messages.length;
    await run('dfs.stopServer', (await waitForRow('replica 3', () => true, 'to be listed')).element);
    assert.ok(!(await portAnswers(basePort + 2)), 'replica 3 no longer listens');
    assert.ok(!pidOfReplica(3), 'its process is gone');
    assert.ok(await portAnswers(basePort), 'replica 1 still listens');
    await waitForRow('replica 3', (row) => row.description.startsWith('down') && row.contextValue === 'dfsServerStoppedHere', 'to show down, with Restart');
    assert.ok(!testing.messages.slice(from).some((message) => message.message.includes('unexpectedly')), 'a requested stop is not reported as a crash');
  });

  it('Show Cluster Status and an upload short of the quorum offer Restart Replicas and Open Settings, in VS Code\'s words; Restart Replicas brings them back', async () => {
    const pid = pidOfReplica(1);
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await waitForRow('replica 1', (row) => row.description.startsWith('down'), 'to show down');

    let from = testing.messages.length;
    testing.answer = () => undefined;
    await run('dfs.showStatus');
    const report = testing.messages.slice(from).find((message) => message.modal)!;
    assert.match(report.message, /1 of 3 replicas up/);
    assert.deepStrictEqual(report.items, ['Restart Replicas', 'Open Settings', 'Show Log']);
    assert.match(report.detail ?? '', /Replica 1 and Replica 3 were started from this window: Restart \(here, or in the Cluster view\) starts them again/);
    assert.match(report.detail ?? '', /last sync/);

    from = testing.messages.length;
    let failure: ShownMessage | undefined;
    testing.answer = (message) => {
      if (message.kind === 'error' && message.message.startsWith('DFS upload:')) {
        failure = message;
        return 'Restart Replicas';
      }
      return undefined;
    };
    const refused = await upload('refused.txt', 'too few replicas for this one');
    testing.answer = () => undefined;
    assert.deepStrictEqual(refused.outcomes.map((outcome) => [outcome.status, outcome.code]), [['failed', 'QUORUM']]);
    assert.ok(failure, 'the failure is shown');
    assert.deepStrictEqual(failure.items, ['Restart Replicas', 'Open Settings', 'Show Log']);
    assert.match(failure.message, /Nothing was stored\. Replica 1 and Replica 3 were started from this window/);
    assert.doesNotMatch(failure.message, /dfs status/, 'no command line in the message');
    for (const root of roots()) {
      assert.ok(!(await storedFiles(root)).includes(`${CLIENT}/refused.txt`), `${root} keeps nothing of the refused upload`);
    }
    // The button restarted both; they catch up what they missed.
    for (const id of [1, 3]) {
      await waitForRow(`replica ${id}`, (row) => row.description.startsWith('up') && row.contextValue === 'dfsServerRunningHere', 'to show up again');
    }
    assert.strictEqual((await upload('refused.txt', 'accepted once they are back')).outcomes[0].status, 'uploaded');
    for (const root of roots()) {
      await waitFor(() => holds(root, 'refused.txt', 'accepted once they are back'), `${root} to hold refused.txt`, 40_000);
      assert.ok(await holds(root, 'meanwhile.txt', 'stored while replica 2 was down'), `${root} holds meanwhile.txt`);
    }
  });

  it('with no primary, the servers this window started are still listed: the primary can be restarted from the view', async () => {
    await run('dfs.stopServer', (await waitForRow(`primary 127.0.0.1:${port}`, () => true, 'to be listed')).element);
    const primary = await waitForRow(`primary 127.0.0.1:${port}`, (row) => row.description.startsWith('down') && row.contextValue === 'dfsServerStoppedHere', 'to show down, with Restart');
    assert.ok((await clusterRows()).has('replica 1'), 'the replicas it started stay listed');
    await run('dfs.restartServer', primary.element);
    await testing.waitForStatusBar((text) => text.includes(`DFS ${REPLICAS}/${REPLICAS}`));
    await waitForRow(`primary 127.0.0.1:${port}`, (row) => row.description.startsWith('up') && row.contextValue === 'dfsServerRunningHere', 'to show up again');
  });

  it('Stop Cluster stops everything, and the view has nothing left to restart (its welcome content shows)', async () => {
    await run('dfs.stopCluster');
    await testing.waitForContext('dfs.clusterState', 'offline');
    assert.deepStrictEqual(await renderTree('dfs.cluster'), []);
  });
});

describe('extension: several clusters (dfs.clusters), switched from the status bar', function () {
  this.timeout(120_000);
  const SECRET = 'the secret of the cluster called two';
  let one: TestCluster;
  let two: TestCluster;
  let work: string;
  let vscodeExtension: ExtensionUnderTest;
  const run = <T>(command: string, ...args: unknown[]): Promise<T> => {
    const handler = testing.commands.get(command);
    assert.ok(handler, `${command} is registered`);
    return Promise.resolve(handler(...args)) as Promise<T>;
  };
  const pick = (label: string): void => {
    testing.quickPick = (items) => {
      const found = items.find((item) => item.label === label);
      assert.ok(found, `the switch offers ${label}: ${items.map((item) => item.label).join(', ')}`);
      return found;
    };
  };
  const statusBar = (): { text: string; command?: string } => testing.statusBarItems.find((item) => item.id === 'dfs.status')!;

  before(async () => {
    one = await TestCluster.start({ replicas: 1 });
    two = await TestCluster.start({ replicas: 1, env: { DFS_SECRET: SECRET }, clientSecurity: { secret: Buffer.from(SECRET) } });
    await one.client(CLIENT).upload('on-one.txt', [Buffer.from('one')], 3);
    await two.client(CLIENT).upload('on-two.txt', [Buffer.from('two')], 3);
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ext-clusters-'));
    const nothing = await freePortRange(3);
    vscodeExtension = activateExtension(work, {
      // The dfs.* connection points where nothing listens.
      port: nothing,
      basePort: nothing + 1,
      replicas: 1,
      clientId: CLIENT,
      dataDir: path.join(work, 'data'),
      clusters: [
        { name: 'one', servers: [one.address], replicas: 1, basePort: one.basePort },
        { name: 'two', servers: [two.address], replicas: 1, basePort: two.basePort },
      ],
    });
  });

  after(async () => {
    await vscodeExtension?.close();
    await Promise.all([one?.destroy(), two?.destroy()]);
    await fs.rm(work, { recursive: true, force: true });
  });

  it('starts on the dfs.* settings (Default); the status bar names it and its click switches', async () => {
    await testing.waitForContext('dfs.hasClusters', true);
    assert.match(await testing.waitForStatusBar((text) => text.includes('DFS offline')), /DFS offline · Default$/);
    assert.strictEqual(statusBar().command, 'dfs.switchCluster');
  });

  it('switching to a cluster lists its files; its servers are not started here', async () => {
    pick('one');
    await run('dfs.switchCluster');
    assert.strictEqual(testing.workspaceState.get('dfs.currentCluster'), 'one');
    assert.match(await testing.waitForStatusBar((text) => text.includes('DFS 1/1')), /DFS 1\/1 · one$/);
    assert.deepStrictEqual(treePaths(await renderTree('dfs.files')), [`${CLIENT}/`, `${CLIENT}/on-one.txt`]);
    const rows = await renderTree('dfs.cluster');
    assert.deepStrictEqual(rows.map((row) => row.item.label), [`primary ${one.address}`, 'replica 1']);
    assert.ok(rows.every((row) => row.item.contextValue === 'dfsServerExternal' && /not started here$/.test(row.item.description ?? '')));
  });

  it('each cluster keeps its own client key: "two" needs one, and it is stored under its name', async () => {
    pick('two');
    await run('dfs.switchCluster');
    assert.match(await testing.waitForStatusBar((text) => text.includes('needs a key')), /needs a key · two$/);
    testing.inputBox = () => formatKey(issueKey(Buffer.from(SECRET), 'client', CLIENT));
    assert.strictEqual(await run('dfs.setClientKey'), true);

    assert.ok(testing.secrets.has('dfs.clientKey:two'), "kept under two's name");
    assert.ok(!testing.secrets.has('dfs.clientKey'), 'the dfs.* connection keeps no key');
    await testing.waitForStatusBar((text) => text.includes('DFS 1/1 · two'));
    assert.deepStrictEqual(treePaths(await renderTree('dfs.files')), [`${CLIENT}/`, `${CLIENT}/on-two.txt`]);

    // Back on "one", whose servers run without authentication, no key is sent.
    pick('one');
    await run('dfs.switchCluster');
    await testing.waitForStatusBar((text) => text.includes('DFS 1/1 · one'));
    assert.deepStrictEqual(treePaths(await renderTree('dfs.files')), [`${CLIENT}/`, `${CLIENT}/on-one.txt`]);
  });

  it('Start Cluster while on a named cluster starts nothing and says why', async () => {
    const from = testing.messages.length;
    await run('dfs.startCluster');
    const warning = testing.messages.slice(from).find((message) => message.kind === 'warning');
    assert.ok(warning);
    assert.match(warning.message, /connected to the cluster "one" \(dfs\.clusters\)\. Start Cluster starts the cluster of the dfs\.host \/ dfs\.port settings/);
    assert.deepStrictEqual(warning.items, ['Switch Cluster']);
    assert.strictEqual(testing.tasks.length, 0, 'no server started');
  });

  it('the choice is remembered for the workspace: a new window on it connects to "one" again', async () => {
    // Close this window's extension without forgetting the workspace state, then activate it again.
    await vscodeExtension.extension.deactivate();
    vscodeExtension.context.subscriptions.forEach((subscription) => subscription.dispose());
    const context = createExtensionContext(REPO_ROOT, path.join(work, 'global-storage'));
    vscodeExtension.extension.activate(context);
    vscodeExtension = { ...vscodeExtension, context };
    assert.match(await testing.waitForStatusBar((text) => text.includes('DFS 1/1')), /· one$/);
    assert.deepStrictEqual(treePaths(await renderTree('dfs.files')), [`${CLIENT}/`, `${CLIENT}/on-one.txt`]);

    pick('Default');
    await run('dfs.switchCluster');
    assert.strictEqual(testing.workspaceState.has('dfs.currentCluster'), false);
    assert.match(await testing.waitForStatusBar((text) => text.includes('DFS offline')), /· Default$/);
  });
});

describe('extension: the Cluster view of primaries elected through etcd', function () {
  this.timeout(180_000);
  let cluster: HaCluster | undefined;
  let work: string | undefined;
  let vscodeExtension: ExtensionUnderTest | undefined;

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && cluster) {
      console.log(cluster.logs());
    }
  });

  after(async () => {
    await vscodeExtension?.close();
    await cluster?.destroy();
    if (work) {
      await fs.rm(work, { recursive: true, force: true });
    }
  });

  it('names the leader and its epoch and lists the standby; after a kill -9 of the leader, the new leader with a higher epoch', async function () {
    cluster = await HaCluster.start(this);
    const ha = cluster;
    const [first, second] = ha.serverList.split(',');
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ext-ha-view-'));
    vscodeExtension = activateExtension(work, { host: '127.0.0.1', port: ha.primaryPorts[0], servers: [first, second], clientId: CLIENT, replicas: ha.replicaCount, basePort: ha.basePort, dataDir: path.join(work, 'data') });
    await testing.waitForStatusBar((text) => text.includes(`DFS ${ha.replicaCount}/${ha.replicaCount}`));
    const { index, status } = await ha.waitForLeader();
    assert.strictEqual(index, 0, 'the primary started first leads');
    const leaderRow = await waitForRow(`primary ${first}`, (row) => row.description.startsWith(`up · leader, epoch ${status.epoch} ·`), 'to lead at its epoch');
    assert.strictEqual(leaderRow.item.contextValue, 'dfsServerExternal');
    await waitForRow(`standby ${second}`, (row) => row.description.startsWith('standing by'), 'to stand by');
    assert.deepStrictEqual(
      (await renderTree('dfs.cluster')).map((row) => row.item.label).filter((label) => label.startsWith('replica')),
      Array.from({ length: ha.replicaCount }, (_, replica) => `replica ${replica + 1}`),
    );

    await ha.killPrimary(0);
    const next = await ha.waitForLeader({ not: 0, timeoutMs: 60_000 });
    assert.ok(next.status.epoch! > status.epoch!, `a new epoch: ${next.status.epoch} after ${status.epoch}`);
    await vscodeExtension.run('dfs.refresh');
    await waitForRow(`primary ${second}`, (row) => row.description.startsWith(`up · leader, epoch ${next.status.epoch} ·`), 'to lead at the new epoch');
    assert.ok(!(await clusterRows()).has(`primary ${first}`), 'the old leader no longer shows as leading');
  });
});
