import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { formatKey, issueKey } from '../../server/protocol';
import { TestCertificates, makeCertificates } from '../support/certificates';
import { TestCluster } from '../support/cluster';
import { dfsProcesses } from '../support/dfs-processes';
import { ExtensionUnderTest, activateExtension } from '../support/extension-harness';
import { freePortRange } from '../support/ports';
import { RawClient } from '../support/raw-client';
import { Uri, testing } from '../support/vscode-double';
import { renderTree, treePaths } from '../support/vscode-double/tree-snapshot';

const SECRET = 'the secret of the cluster alice uses';
const secret = Buffer.from(SECRET);

interface BatchResultLike {
  outcomes: { name?: string; status: string; code?: string; reason?: string }[];
}

describe('extension: a client key in secret storage', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let work: string;
  let vscodeExtension: ExtensionUnderTest;
  const run = <T>(command: string, ...args: unknown[]): Promise<T> => vscodeExtension.run<T>(command, ...args);
  const aliceKey = issueKey(secret, 'client', 'alice');

  before(async () => {
    cluster = await TestCluster.start({ replicas: 1, env: { DFS_SECRET: SECRET }, clientSecurity: { secret } });
    await cluster.client('bob').upload('private.txt', [Buffer.from('bob only')], 8);
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ext-key-'));
    // dfs.clientId is left empty: with a client key, the key names the client.
    vscodeExtension = activateExtension(work, { host: '127.0.0.1', port: cluster.primaryPort, clientId: '', replicas: 1, basePort: cluster.basePort, dataDir: path.join(work, 'data') });
  });

  after(async () => {
    await vscodeExtension?.close();
    await cluster?.destroy();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('Set Client Key: the box refuses text that is not a key, and Escape changes nothing', async () => {
    let validation: string | undefined;
    testing.inputBox = (options) => {
      validation = (options as { validateInput?: (value: string) => string | undefined }).validateInput?.('not a key');
      return undefined;
    };
    assert.strictEqual(await run('dfs.setClientKey'), false);
    assert.match(validation ?? '', /not a DFS key \(one line starting "dfsk1\."/);
    assert.strictEqual(testing.secrets.has('dfs.clientKey'), false);
  });

  it('Set Client Key keeps the key in secret storage; the window then works as that client and sees only its files', async () => {
    testing.inputBox = (options) => {
      assert.strictEqual((options as { password?: boolean }).password, true, 'the key is typed into a password box');
      return `  ${formatKey(aliceKey)}\n`;
    };
    assert.strictEqual(await run('dfs.setClientKey'), true);
    assert.strictEqual(testing.secrets.get('dfs.clientKey'), formatKey(aliceKey), 'stored without the spaces of the paste');
    assert.ok(![...testing.configuration.values()].some((value) => String(value).includes(aliceKey.mac)), 'never in settings');
    await testing.waitForStatusBar((text) => text.includes('DFS 1/1'));

    const file = path.join(work, 'notes.txt');
    await fs.writeFile(file, 'alice writes');
    const result = await run<BatchResultLike>('dfs.upload', Uri.file(file), [Uri.file(file)]);
    assert.deepStrictEqual(result.outcomes.map((outcome) => [outcome.name, outcome.status]), [['notes.txt', 'uploaded']]);
    for (const root of cluster.allRoots()) {
      assert.strictEqual(await fs.readFile(path.join(root, 'alice', 'notes.txt'), 'utf8'), 'alice writes');
    }
    assert.deepStrictEqual(treePaths(await renderTree('dfs.files')), ['alice/', 'alice/notes.txt'], "bob's files are not listed");
  });

  it("with dfs.clientId naming another client, uploads are refused with the server's reason and nothing of bob's changes", async () => {
    testing.setConfiguration({ 'dfs.clientId': 'bob' });
    try {
      const file = path.join(work, 'private.txt');
      await fs.writeFile(file, 'alice tries');
      const result = await run<BatchResultLike>('dfs.upload', Uri.file(file), [Uri.file(file)]);
      assert.deepStrictEqual(result.outcomes.map((outcome) => [outcome.status, outcome.code]), [['failed', 'FORBIDDEN']]);
      assert.match(result.outcomes[0].reason ?? '', /this key is for client alice: it cannot read or change the files of client bob/);
      for (const root of cluster.allRoots()) {
        assert.strictEqual(await fs.readFile(path.join(root, 'bob', 'private.txt'), 'utf8'), 'bob only');
      }
    } finally {
      testing.setConfiguration({ 'dfs.clientId': '' });
    }
  });

  it('Forget Client Key: the cluster refuses the window, and the view says which credential to set', async () => {
    await run('dfs.forgetClientKey');
    assert.strictEqual(testing.secrets.has('dfs.clientKey'), false);
    assert.strictEqual(await testing.waitForStatusBar((text) => text.includes('needs a key')), '$(lock) DFS needs a key');
    await testing.waitForContext('dfs.clusterState', 'locked');
    const from = testing.messages.length;
    testing.answer = () => undefined;
    await run('dfs.showStatus');
    const report = testing.messages.slice(from).find((message) => message.modal);
    assert.ok(report);
    assert.match(report.detail ?? '', /Set Client Key.*dfs key issue --client ID/);
    assert.deepStrictEqual(report.items, ['Set Client Key', 'Set Cluster Secret', 'Show Log']);
  });
});

describe('extension: TLS for the client and for the servers Start Cluster starts', function () {
  this.timeout(120_000);
  let certs: TestCertificates;
  let work: string;
  let port: number;
  let basePort: number;
  let vscodeExtension: ExtensionUnderTest;
  const run = <T>(command: string, ...args: unknown[]): Promise<T> => vscodeExtension.run<T>(command, ...args);

  before(async () => {
    certs = await makeCertificates();
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ext-tls-'));
    basePort = await freePortRange(1);
    do {
      port = await freePortRange(1);
    } while (port === basePort);
    vscodeExtension = activateExtension(work, {
      host: '127.0.0.1',
      port,
      clientId: 'tls-user',
      replicas: 1,
      basePort,
      dataDir: path.join(work, 'data'),
      tlsCaFile: certs.ca,
      tlsCertFile: certs.cert,
      tlsKeyFile: certs.key,
    });
  });

  after(async () => {
    await vscodeExtension?.close();
    await fs.rm(work, { recursive: true, force: true });
    await fs.rm(certs.dir, { recursive: true, force: true });
  });

  it('Start Cluster with a client key but no cluster secret says why it cannot, and starts nothing', async () => {
    testing.inputBox = () => formatKey(issueKey(secret, 'client', 'tls-user'));
    assert.strictEqual(await run('dfs.setClientKey'), true);
    const tasksBefore = testing.tasks.length;
    const from = testing.messages.length;
    testing.answer = () => undefined;
    await run('dfs.startCluster');
    const warning = await testing.waitForMessage((message) => message.kind === 'warning', from);
    assert.match(warning.message, /Start Cluster needs the cluster secret: the servers it starts check client keys against it/);
    assert.deepStrictEqual(warning.items, ['Set Cluster Secret', 'Forget Client Key']);
    assert.strictEqual(testing.tasks.length, tasksBefore, 'no server was started');
    assert.deepStrictEqual(dfsProcesses(String(port)), []);
    await run('dfs.forgetClientKey');
  });

  it('Start Cluster passes the certificate settings to every server; the window speaks TLS to them and plaintext gets nothing', async () => {
    await run('dfs.startCluster');
    await testing.waitForStatusBar((text) => text.includes('DFS 1/1'));
    for (const serverPort of [port, basePort]) {
      const [server] = dfsProcesses(String(serverPort));
      assert.ok(server, `a server runs on ${serverPort}`);
      const args = server.args;
      for (const [flag, file] of [
        ['--tls-cert', certs.cert],
        ['--tls-key', certs.key],
        ['--tls-ca', certs.ca],
      ]) {
        assert.strictEqual(args[args.indexOf(flag) + 1], file, `${flag} on the server at ${serverPort}`);
      }
    }
    const file = path.join(work, 'over-tls.txt');
    await fs.writeFile(file, 'sent over TLS');
    const result = await run<BatchResultLike>('dfs.upload', Uri.file(file), [Uri.file(file)]);
    assert.deepStrictEqual(result.outcomes.map((outcome) => outcome.status), ['uploaded']);
    for (const folder of ['servidor', 'replica1']) {
      assert.strictEqual(await fs.readFile(path.join(work, 'data', folder, 'tls-user', 'over-tls.txt'), 'utf8'), 'sent over TLS');
    }
    const plaintext = await RawClient.connect(port);
    await plaintext.send('LIST tls-user\n');
    assert.doesNotMatch(await plaintext.readToClose().catch(() => ''), /over-tls\.txt/);
  });

  it('an unreadable dfs.tlsCaFile is reported and nothing is sent without TLS; half the certificate settings is a settings error', async () => {
    const from = testing.messages.length;
    testing.setConfiguration({ 'dfs.tlsCaFile': path.join(work, 'missing-ca.pem') });
    try {
      assert.match(await testing.waitForStatusBar((text) => text.includes('offline')), /DFS offline/);
      testing.answer = () => undefined;
      await run('dfs.showStatus');
      const report = testing.messages.slice(from).find((message) => message.modal);
      assert.match(report?.detail ?? '', /cannot read the TLS CA file .*missing-ca\.pem/);
    } finally {
      testing.setConfiguration({ 'dfs.tlsCaFile': certs.ca });
    }
    await testing.waitForStatusBar((text) => text.includes('DFS 1/1'));

    const before = testing.messages.length;
    testing.setConfiguration({ 'dfs.tlsKeyFile': '' });
    try {
      const error = await testing.waitForMessage((message) => message.kind === 'error', before);
      assert.match(error.message, /dfs\.tlsCertFile and dfs\.tlsKeyFile go together.*The previous settings stay in effect\./);
    } finally {
      testing.setConfiguration({ 'dfs.tlsKeyFile': certs.key });
    }
    await run('dfs.stopCluster');
    assert.deepStrictEqual(dfsProcesses(String(port)), []);
  });
});
