import * as assert from 'assert';
import { promises as fs, readFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { dfsProcesses } from '../support/dfs-processes';
import { freePortRange } from '../support/ports';
import { RawClient } from '../support/raw-client';
import { ExtensionUnderTest, activateExtension } from '../support/extension-harness';
import { Uri, testing } from '../support/vscode-double';

const SECRET = 'a cluster secret long enough to use';

describe('extension: the cluster secret, picking what to upload, and a running cluster\'s settings', function () {
  this.timeout(120_000);
  let work: string;
  let port: number;
  let basePort: number;
  let vscodeExtension: ExtensionUnderTest;
  const run = <T>(command: string, ...args: unknown[]): Promise<T> => vscodeExtension.run<T>(command, ...args);

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ext-secret-'));
    basePort = await freePortRange(1);
    do {
      port = await freePortRange(1);
    } while (port === basePort);
    vscodeExtension = activateExtension(work, { host: '127.0.0.1', port, clientId: 'keeper', replicas: 1, basePort, dataDir: path.join(work, 'data') });
  });

  after(async () => {
    await vscodeExtension?.close();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('Set Cluster Secret stores it in secret storage, never in settings', async () => {
    testing.inputBox = (options) => {
      assert.strictEqual(options.password, true, 'the secret is typed into a password box');
      return SECRET;
    };
    assert.strictEqual(await run('dfs.setSecret'), true);
    assert.strictEqual(testing.secrets.get('dfs.clusterSecret'), SECRET);
    assert.ok(![...testing.configuration.values()].includes(SECRET));
  });

  it('Start Cluster starts servers that require the secret, and uploads authenticate', async () => {
    await run('dfs.startCluster');
    await testing.waitForStatusBar((text) => text.includes('DFS 1/1'));
    const [{ pid } = { pid: 0 }] = dfsProcesses(String(port));
    assert.ok(pid, 'the primary runs');
    assert.match(readFileSync(`/proc/${pid}/environ`, 'utf8'), new RegExp(`(^|\\0)DFS_SECRET=${SECRET}(\\0|$)`));
    const stranger = await RawClient.connect(port);
    await stranger.send('LIST keeper');
    assert.match(await stranger.readToClose(), /^AUTH_CHALLENGE .*\nAUTH_FAILURE AUTH/);

    const file = path.join(work, 'secret.txt');
    await fs.writeFile(file, 'only members may read this');
    await run('dfs.upload', Uri.file(file), [Uri.file(file)]);
    assert.strictEqual(await fs.readFile(path.join(work, 'data', 'replica1', 'keeper', 'secret.txt'), 'utf8'), 'only members may read this');
  });

  it('Upload Files or Folders asks which kind first (a Linux or Windows dialog cannot pick both), then uploads it', async () => {
    const folder = path.join(work, 'picked');
    await fs.mkdir(folder, { recursive: true });
    await fs.writeFile(path.join(folder, 'one.txt'), 'picked one');
    testing.quickPick = (items) => items.find((item) => item.label.startsWith('Folders'));
    testing.openDialog = (options) => {
      assert.deepStrictEqual([(options as { canSelectFiles: boolean }).canSelectFiles, (options as { canSelectFolders: boolean }).canSelectFolders], [false, true]);
      return [Uri.file(folder)];
    };
    await run('dfs.uploadPick');
    assert.strictEqual(await fs.readFile(path.join(work, 'data', 'replica1', 'keeper', 'picked', 'one.txt'), 'utf8'), 'picked one');
  });

  it('a folder of more than 1,000 files is confirmed before it is sent; declining sends nothing', async () => {
    const folder = path.join(work, 'huge');
    await fs.mkdir(folder, { recursive: true });
    await Promise.all(Array.from({ length: 1001 }, (_, index) => fs.writeFile(path.join(folder, `f${index}.txt`), String(index))));
    const from = testing.messages.length;
    testing.answer = (message) => (message.modal && /^Upload 1001 files/.test(message.message) ? undefined : message.items[0]);
    await run('dfs.upload', Uri.file(folder), [Uri.file(folder)]);
    const asked = testing.messages.slice(from).find((message) => message.modal);
    assert.ok(asked, 'the user was asked');
    assert.match(asked.message, /^Upload 1001 files \(/);
    await assert.rejects(fs.stat(path.join(work, 'data', 'servidor', 'keeper', 'huge')), /ENOENT/);
    testing.answer = () => undefined;
  });

  it('Start Cluster after the ports changed refuses to start a second set of servers on the same data folders', async () => {
    const tasksBefore = testing.tasks.length;
    const from = testing.messages.length;
    testing.setConfiguration({ 'dfs.basePort': basePort + 50 });
    try {
      await run('dfs.startCluster');
      const warning = await testing.waitForMessage((message) => message.kind === 'warning', from);
      assert.match(warning.message, /settings changed since this window started its cluster.*Stop Cluster first/);
      assert.strictEqual(testing.tasks.length, tasksBefore, 'no server was started');
    } finally {
      testing.setConfiguration({ 'dfs.basePort': basePort });
    }
  });

  it('Forget Cluster Secret makes the client speak the open protocol, which this cluster refuses clearly', async () => {
    await run('dfs.forgetSecret');
    assert.strictEqual(testing.secrets.has('dfs.clusterSecret'), false);
    const started = Date.now();
    assert.strictEqual(await testing.waitForStatusBar((text) => text.includes('needs a key')), '$(lock) DFS needs a key');
    assert.ok(Date.now() - started < 5_000, 'the status follows the secret change at once, not at the next poll');
    await testing.waitForContext('dfs.clusterState', 'locked');
    await run('dfs.stopCluster');
  });
});
