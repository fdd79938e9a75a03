import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import { ClusterMonitor } from '../../extension/cluster/cluster-monitor';
import { DfsConnection } from '../../extension/cluster/connection';
import { readSettings } from '../../extension/model/settings';
import type { ClusterState } from '../../extension/model/cluster-state';
import { DfsError } from '../../server/protocol';
import { TestCluster, stagedFiles, storedFiles } from '../support/cluster';
import { waitFor } from '../support/wait';

/** The client calls the extension makes, against a real cluster, through the extension's own connection. */
describe('the client as the extension uses it', function () {
  this.timeout(60_000);
  let cluster: TestCluster;
  let work: string;
  let connection: DfsConnection;

  before(async () => {
    cluster = await TestCluster.start({ replicas: 2 });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ext-client-'));
    connection = new DfsConnection(readSettings((key) => ({ host: '127.0.0.1', port: cluster.primaryPort, clientId: 'carol', replicas: 2, basePort: cluster.basePort } as Record<string, unknown>)[key], work));
  });

  after(async () => {
    await cluster?.destroy();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('lists files with size, stored time, checksum and copies, and clients with totals', async () => {
    const client = connection.client();
    const before = Date.now();
    await client.upload('docs/a.txt', [Buffer.from('hello')], 5);
    const [file] = await client.files();
    assert.strictEqual(file.name, 'docs/a.txt');
    assert.strictEqual(file.size, 5);
    assert.strictEqual(file.copies, 3);
    assert.strictEqual(file.sha256, '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    assert.ok(file.mtimeMs >= before - 2_000);
    assert.deepStrictEqual(await client.clients(), [{ clientId: 'carol', files: 1, bytes: 5 }]);
  });

  it('reads a stored file into memory, as the dfs: file system does, and downloads to disk atomically', async () => {
    const client = connection.client();
    const chunks: Buffer[] = [];
    await client.download('docs/a.txt', new Writable({ write: (chunk, _encoding, done) => (chunks.push(chunk), done()) }));
    assert.strictEqual(Buffer.concat(chunks).toString(), 'hello');
    const destination = path.join(work, 'a-copy.txt');
    await client.downloadToFile('docs/a.txt', destination);
    assert.strictEqual(await fs.readFile(destination, 'utf8'), 'hello');
    await assert.rejects(client.downloadToFile('missing.txt', path.join(work, 'missing.txt')), (error: DfsError) => error.code === 'NOT_FOUND');
    assert.deepStrictEqual((await fs.readdir(work)).sort(), ['a-copy.txt'], 'a failed download leaves nothing behind');
  });

  it('an aborted upload is CANCELLED and no node keeps a byte', async () => {
    const client = connection.client();
    const abort = new AbortController();
    const chunk = Buffer.alloc(256 * 1024, 9);
    const body = (function* () {
      for (let index = 0; index < 64; index++) {
        yield chunk;
      }
    })();
    await assert.rejects(
      client.upload('aborted.bin', body, 64 * chunk.length, { signal: abort.signal, onProgress: (done) => done >= 4 * chunk.length && abort.abort() }),
      (error: DfsError) => error.code === 'CANCELLED',
    );
    for (const root of cluster.allRoots()) {
      await waitFor(async () => (await stagedFiles(root)).length === 0, `no staged bytes under ${root}`);
      assert.ok(!(await storedFiles(root)).includes('carol/aborted.bin'));
    }
  });

  it('deletes every copy', async () => {
    const client = connection.client();
    await client.upload('gone.txt', [Buffer.from('x')], 1);
    await client.delete('gone.txt');
    for (const root of cluster.allRoots()) {
      assert.ok(!(await storedFiles(root)).includes('carol/gone.txt'));
    }
    await assert.rejects(client.delete('gone.txt'), (error: DfsError) => error.code === 'NOT_FOUND');
  });

  it('the monitor sees the cluster online, a replica going down, and the cluster offline', async () => {
    const monitor = new ClusterMonitor(() => ({ address: connection.address, status: () => connection.client().status() }));
    const changes: ClusterState['kind'][] = [];
    monitor.on('changed', (state: ClusterState) => changes.push(state.kind));
    const online = await monitor.refresh();
    assert.strictEqual(online.kind, 'online');
    assert.deepStrictEqual(online.kind === 'online' && online.status.replicas.map((replica) => replica.reachable), [true, true]);
    await monitor.refresh();
    assert.deepStrictEqual(changes, ['online'], 'an unchanged state is not announced again');
    await cluster.killReplica(1);
    const degraded = await monitor.refresh();
    assert.deepStrictEqual(degraded.kind === 'online' && degraded.status.replicas.map((replica) => replica.reachable), [true, false]);
    await cluster.stop();
    const offline = await monitor.refresh();
    assert.strictEqual(offline.kind, 'offline');
    assert.match(offline.kind === 'offline' ? offline.reason : '', /nothing is listening/);
    assert.deepStrictEqual(changes, ['online', 'online', 'offline']);
  });
});
