import * as assert from 'assert';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import { DfsClient } from '../../server/client/dfs-client';
import { ReplicaReads } from '../../server/client/replica-reads';
import { replicaAddresses } from '../../server/config/cluster-layout';
import { DfsError } from '../../server/protocol';
import { rot } from '../support/bit-rot';
import { TestCluster } from '../support/cluster';
import { sha256, waitForCopies } from '../support/convergence';
import { stopChild } from '../support/processes';
import { waitFor } from '../support/wait';

/** A sink that counts what reached it. */
function countingSink(): { sink: Writable; received: () => number } {
  let received = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      done();
    },
  });
  return { sink, received: () => received };
}

describe('streaming downloads: bytes go out as they are read, checked as they go', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  const SIZE = 5 * 1024 * 1024 + 321;

  before(async () => {
    cluster = await TestCluster.start({ replicas: 2, args: ['--sync-interval', '200'] });
  });

  after(async () => {
    await cluster.destroy();
  });

  it('a copy rotted without a trace in its metadata is cut one chunk short, never delivered whole, and repaired from a replica', async () => {
    const data = randomBytes(SIZE);
    await cluster.client('rot').upload('silent.bin', [data], data.length);
    const file = path.join(cluster.primaryRoot(), 'rot', 'silent.bin');
    await rot(file, SIZE - 10);
    const { sink, received } = countingSink();
    await assert.rejects(cluster.client('rot').download('silent.bin', sink), (error: unknown) => error instanceof DfsError && error.code === 'SHORT_BODY');
    assert.ok(received() < SIZE, `${received()} of ${SIZE} bytes reached the client: a damaged copy must never be delivered whole`);
    await waitFor(async () => sha256(await fs.readFile(file)) === sha256(data), 'the primary to rewrite its copy from a replica', 30_000);
    const again = countingSink();
    const result = await cluster.client('rot').download('silent.bin', again.sink);
    assert.strictEqual(result.sha256, sha256(data));
    assert.strictEqual(again.received(), SIZE);
  });

  it('dfs get into a file asks again when the first transfer is cut, and keeps only verified bytes', async () => {
    const data = randomBytes(SIZE);
    await cluster.client('rot').upload('get.bin', [data], data.length);
    await rot(path.join(cluster.primaryRoot(), 'rot', 'get.bin'), 4096);
    const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-get-'));
    try {
      const destination = path.join(folder, 'get.bin');
      await cluster.client('rot').downloadToFile('get.bin', destination);
      assert.strictEqual(sha256(await fs.readFile(destination)), sha256(data));
      assert.deepStrictEqual(await fs.readdir(folder), ['get.bin'], 'a temporary file of the cut attempt was left behind');
    } finally {
      await fs.rm(folder, { recursive: true, force: true });
    }
  });

  it('a replica checks what it sends too: its rotted copy is cut short, and a repair takes the good one', async () => {
    const data = randomBytes(SIZE);
    await cluster.client('rot').upload('both.bin', [data], data.length);
    const replicaFile = (index: number): string => path.join(cluster.replicaRoot(index), 'rot', 'both.bin');
    await waitForCopies([cluster.replicaRoot(0), cluster.replicaRoot(1)], 'rot/both.bin', data);
    await rot(replicaFile(0), 100);
    const fromReplica = new DfsClient({ host: '127.0.0.1', port: cluster.basePort, clientId: 'rot' });
    const { sink, received } = countingSink();
    await assert.rejects(fromReplica.download('both.bin', sink), (error: unknown) => error instanceof DfsError && error.code === 'SHORT_BODY');
    assert.ok(received() < SIZE, `the rotted replica delivered ${received()} of ${SIZE} bytes`);

    const primaryFile = path.join(cluster.primaryRoot(), 'rot', 'both.bin');
    await rot(primaryFile, 200);
    await assert.rejects(cluster.client('rot').download('both.bin', countingSink().sink));
    await waitFor(async () => sha256(await fs.readFile(primaryFile)) === sha256(data), 'the primary to rewrite its copy from the good replica', 30_000);
  });

  it('a copy written over in place (its mtime changed) is hashed before the first byte and never cut', async () => {
    const data = randomBytes(SIZE);
    await cluster.client('rot').upload('touched.bin', [data], data.length);
    const file = path.join(cluster.primaryRoot(), 'rot', 'touched.bin');
    const handle = await fs.open(file, 'r+');
    await handle.write(Buffer.from([data[7] ^ 1]), 0, 1, 7);
    await handle.close();
    const { sink, received } = countingSink();
    const result = await cluster.client('rot').download('touched.bin', sink);
    assert.strictEqual(result.sha256, sha256(data));
    assert.strictEqual(received(), SIZE);
    assert.strictEqual(sha256(await fs.readFile(file)), sha256(data));
  });

  // Last: it stops the primary.
  it('with no primary, dfs get into a file asks again when a replica cuts, and the second attempt reads the other replica', async () => {
    const data = randomBytes(SIZE);
    await cluster.client('rot').upload('replicas.bin', [data], data.length);
    const replicaFile = (index: number): string => path.join(cluster.replicaRoot(index), 'rot', 'replicas.bin');
    await waitForCopies([cluster.replicaRoot(0), cluster.replicaRoot(1)], 'rot/replicas.bin', data);
    await stopChild(cluster.primary.child, 'SIGKILL');
    // Replica 1 is asked first (the holders in replica order): its copy is the one cut.
    await rot(replicaFile(0), 300);
    const from = cluster.replicas[0]!.output.length;
    const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-get-'));
    try {
      const destination = path.join(folder, 'replicas.bin');
      const replicas = new ReplicaReads({ replicas: replicaAddresses({ host: '127.0.0.1', basePort: cluster.basePort, replicas: 2 }), clientId: 'rot' });
      await replicas.downloadToFile('replicas.bin', destination);
      assert.ok(cluster.replicas[0]!.output.slice(from).some((line) => line.includes('DOWNLOAD rot/replicas.bin: cut one chunk short')), 'replica 1 cut the first transfer');
      assert.strictEqual(sha256(await fs.readFile(destination)), sha256(data));
      assert.deepStrictEqual(await fs.readdir(folder), ['replicas.bin'], 'a temporary file of the cut attempt was left behind');
    } finally {
      await fs.rm(folder, { recursive: true, force: true });
    }
  });
});
