import * as assert from 'assert';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { DfsError } from '../../server/protocol';
import { TestCluster, stagedFiles, stagedSize, storedFiles } from '../support/cluster';
import { waitForNoStagedBytes } from '../support/convergence';
import { RawClient, seedUpload } from '../support/raw-client';
import { waitFor } from '../support/wait';

/** No client file and no staged bytes on any node: what "no trace" means. */
async function assertNoTrace(cluster: TestCluster, clientId: string, indexes?: number[]): Promise<void> {
  const roots = indexes ? [cluster.primaryRoot(), ...indexes.map((index) => cluster.replicaRoot(index))] : cluster.allRoots();
  for (const root of roots) {
    assert.deepStrictEqual((await storedFiles(root)).filter((file) => file.startsWith(clientId + '/')), [], `stored file left under ${root}`);
    assert.deepStrictEqual(await stagedFiles(root), [], `staged bytes left under ${root}`);
  }
  assert.deepStrictEqual(await cluster.client(clientId).list(), []);
}

describe('failures leave no trace (quorum all)', function () {
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await TestCluster.start({ replicas: 3, args: ['--idle-timeout', '1500'] });
  });

  afterEach(async () => {
    await cluster.destroy();
  });

  it('a replica that is down: UPLOAD_FAILURE before any byte, nothing stored', async () => {
    await cluster.killReplica(2);
    const { first } = await seedUpload(cluster.primaryPort, 'down', 'x.bin', randomBytes(1000));
    assert.strictEqual(first, 'UPLOAD_FAILURE');
    await assert.rejects(cluster.client('down').upload('y.bin', [Buffer.from('abc')], 3), (error: unknown) => {
      assert.ok(error instanceof DfsError);
      assert.strictEqual(error.code, 'QUORUM');
      assert.match(error.message, /replica 3/);
      return true;
    });
    await assertNoTrace(cluster, 'down', [0, 1]);
  });

  it('a replica killed mid-transfer: UPLOAD_FAILURE, nothing stored on any node', async () => {
    const client = await RawClient.connect(cluster.primaryPort);
    const size = 8 * 1024 * 1024;
    await client.send(`UPLOAD midkill big.bin ${size}\n`);
    assert.strictEqual(await client.recv(), 'SEND_FILE {"replaces":null}\n');
    await client.send(randomBytes(size / 2));
    await waitFor(async () => (await stagedSize(cluster.replicaRoot(0))) >= size / 4, 'replica 1 to stage bytes');
    await cluster.killReplica(0);
    await client.send(randomBytes(size / 2)).catch(() => undefined);
    const reply = await client.readToClose();
    assert.match(reply, /^UPLOAD_FAILURE QUORUM .*replica 1/);
    await assertNoTrace(cluster, 'midkill', [1, 2]);
    await cluster.startReplica(0);
    await assertNoTrace(cluster, 'midkill');
  });

  it('a client that disconnects mid-stream leaves nothing, and the cluster keeps serving', async () => {
    const client = await RawClient.connect(cluster.primaryPort);
    await client.send('UPLOAD quitter half.bin 1000000\n');
    assert.strictEqual(await client.recv(), 'SEND_FILE {"replaces":null}\n');
    await client.send(randomBytes(400_000));
    await waitFor(async () => (await stagedSize(cluster.replicaRoot(2))) > 0, 'bytes to reach a replica');
    client.destroy();
    await waitForNoStagedBytes(cluster);
    await assertNoTrace(cluster, 'quitter');
    const receipt = await cluster.client('quitter').upload('after.txt', [Buffer.from('still serving')], 13);
    assert.strictEqual(receipt.copies, 4);
  });

  it('a client that stalls mid-stream times out with a reason and leaves nothing', async () => {
    const client = await RawClient.connect(cluster.primaryPort);
    await client.send('UPLOAD staller s.bin 5000\n');
    assert.strictEqual(await client.recv(), 'SEND_FILE {"replaces":null}\n');
    await client.send(Buffer.alloc(100));
    assert.match(await client.readToClose(), /^UPLOAD_FAILURE TIMEOUT transfer stalled after 100 of 5000 bytes/);
    await assertNoTrace(cluster, 'staller');
  });

  it('a client that trickles its body a byte at a time is cut off, leaving nothing', async () => {
    const client = await RawClient.connect(cluster.primaryPort);
    await client.send('UPLOAD trickle t.bin 5000\n');
    assert.strictEqual(await client.recv(), 'SEND_FILE {"replaces":null}\n');
    const started = Date.now();
    // One byte every 200 ms never trips the 1.5 s idle timeout, only the minimum rate.
    const trickle = setInterval(() => void client.send('x').catch(() => undefined), 200);
    try {
      assert.match(await client.readToClose(), /^UPLOAD_FAILURE TIMEOUT transfer too slow/);
    } finally {
      clearInterval(trickle);
    }
    assert.ok(Date.now() - started < 5_000, 'cut off within about one idle period');
    await assertNoTrace(cluster, 'trickle');
  });

  it('more bytes than declared: UPLOAD_FAILURE, nothing stored', async () => {
    const client = await RawClient.connect(cluster.primaryPort);
    await client.send('UPLOAD extra e.bin 10\n');
    assert.strictEqual(await client.recv(), 'SEND_FILE {"replaces":null}\n');
    await client.send(Buffer.alloc(4096, 1));
    assert.match(await client.readToClose(), /^UPLOAD_FAILURE EXTRA_BYTES/);
    await assertNoTrace(cluster, 'extra');
  });

  it('a failed re-upload keeps the old content everywhere', async () => {
    const old = Buffer.from('the old content');
    await cluster.client('keep').upload('doc.txt', [old], old.length);
    await cluster.killReplica(1);
    await assert.rejects(cluster.client('keep').upload('doc.txt', [Buffer.from('new!')], 4), (error: unknown) => error instanceof DfsError && error.code === 'QUORUM');
    for (const root of [cluster.primaryRoot(), cluster.replicaRoot(0), cluster.replicaRoot(2), cluster.replicaRoot(1)]) {
      assert.ok((await fs.readFile(path.join(root, 'keep', 'doc.txt'))).equals(old), root);
    }
  });

  it('a pause inside one of our line-terminated headers never cuts a name short', async () => {
    await cluster.client('pause').upload('dir/file', [Buffer.from('short name')], 10);
    await cluster.client('pause').upload('dir/file name.txt', [Buffer.from('long name')], 9);
    const client = await RawClient.connect(cluster.primaryPort);
    await client.send('DELETE pause dir/file');
    // Longer than the report's 15 ms framing pause, as a retransmitted segment could be.
    assert.match(await client.readToClose(), /^DELETE_FAILURE BAD_HEADER DELETE must end with a newline/);
    assert.deepStrictEqual(await cluster.client('pause').list(), ['dir/file', 'dir/file name.txt']);
  });

  it('bad headers get clear failures and the server keeps serving', async () => {
    const cases: [string, RegExp][] = [
      ['UPLOAD ../etc passwd 3\n', /^UPLOAD_FAILURE BAD_CLIENT_ID/],
      ['UPLOAD a/b c 3\n', /^UPLOAD_FAILURE BAD_CLIENT_ID/],
      ['UPLOAD a /etc/passwd 3\n', /^UPLOAD_FAILURE BAD_FILE_NAME/],
      ['UPLOAD a x\\y 3\n', /^UPLOAD_FAILURE BAD_FILE_NAME/],
      ['UPLOAD a x abc\n', /^UPLOAD_FAILURE BAD_SIZE/],
      ['UPLOAD a x -5\n', /^UPLOAD_FAILURE BAD_SIZE/],
      ['UPLOAD a x 99999999999999\n', /^UPLOAD_FAILURE TOO_LARGE/],
      ['YOLO a b\n', /^ERROR UNKNOWN_VERB/],
      ['REPLICA_DELETE a 3 1700000000000 b\n', /^REPLICA_FAILURE UNKNOWN_VERB .*primary/],
      ['UPLOAD_IF a sometime b 3\n', /^UPLOAD_FAILURE BAD_HEADER precondition "sometime"/],
      ['DELETE_IF a x b\n', /^DELETE_FAILURE BAD_HEADER "x" is not a generation/],
      [`UPLOAD a ${'x'.repeat(9000)} 1\n`, /^UPLOAD_FAILURE HEADER_TOO_LONG/],
    ];
    for (const [header, expected] of cases) {
      const client = await RawClient.connect(cluster.primaryPort);
      await client.send(header);
      assert.match(await client.readToClose(), expected, header.slice(0, 60));
    }
    const dataDirEntries = (await fs.readdir(cluster.dataDir)).sort();
    assert.deepStrictEqual(dataDirEntries, ['replica1', 'replica2', 'replica3', 'servidor']);
    const receipt = await cluster.client('ok').upload('fine.txt', [Buffer.from('ok')], 2);
    assert.strictEqual(receipt.copies, 4);
  });
});
