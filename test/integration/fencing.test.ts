import * as assert from 'assert';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import { ReplicaNodeStatus, formatFence, formatReplicaChecksum, formatRequest } from '../../server/protocol';
import { catalogOnDisk } from '../support/catalog-on-disk';
import { freePortRange } from '../support/ports';
import { SpawnedNode, spawnDfs, stopChild } from '../support/processes';
import { RawClient } from '../support/raw-client';

/**
 * A replica keeps the newest leadership epoch it has been shown, on disk, and refuses
 * every change under an older one, including the commit of an upload whose bytes it
 * prepared before a newer leader appeared: a deposed primary can commit nothing.
 */

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('fencing: replicas refuse a deposed primary', function () {
  this.timeout(60_000);
  let dataDir: string;
  let port: number;
  let replica: SpawnedNode;

  async function startReplica(): Promise<void> {
    replica = await spawnDfs(['replica', '--host', '127.0.0.1', '--port', String(port), '--base-port', String(port), '--replicas', '1', '--data-dir', dataDir]);
  }

  async function request(lines: string[]): Promise<string> {
    const raw = await RawClient.connect(port);
    try {
      await raw.send(lines.map((line) => line + '\n').join(''));
      return await raw.recvLine();
    } finally {
      raw.socket.destroy();
    }
  }

  async function epochNow(): Promise<number> {
    const status = (await new DfsClient({ host: '127.0.0.1', port, clientId: 'x' }).status()) as ReplicaNodeStatus;
    return status.epoch;
  }

  beforeEach(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-fence-'));
    port = await freePortRange(1);
    await startReplica();
  });

  afterEach(async () => {
    await stopChild(replica.child, 'SIGKILL');
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('takes a newer epoch from any request, keeps it across a kill -9, and then refuses older ones and primaries without one', async () => {
    assert.strictEqual(await request([formatRequest({ verb: 'RESERVE', generation: 10 })]), 'OK', 'a replica never fenced serves a primary without etcd');
    assert.strictEqual(await epochNow(), 0);
    const inventory = await request([formatFence(5), formatRequest({ verb: 'INVENTORY' })]);
    assert.ok(!inventory.startsWith('ERROR'), inventory);
    assert.strictEqual(await epochNow(), 5);

    await stopChild(replica.child, 'SIGKILL');
    await startReplica();
    assert.strictEqual(await epochNow(), 5, 'the epoch is on disk');
    assert.strictEqual((await catalogOnDisk(path.join(dataDir, 'replica1'))).marks.epoch, 5);

    assert.match(await request([formatFence(4), formatRequest({ verb: 'RESERVE', generation: 20 })]), /^ERROR FENCED .*epoch 5/);
    assert.match(await request([formatRequest({ verb: 'RESERVE', generation: 20 })]), /^ERROR FENCED .*without --etcd/);
    assert.match(
      await request([formatFence(4), formatRequest({ verb: 'REPLICA_DELETE', clientId: 'c', generation: 30, mtimeMs: Date.now(), name: 'f' })]),
      /^REPLICA_FAILURE FENCED/,
    );
    assert.match(await request([formatFence(4), formatRequest({ verb: 'REPLICA', clientId: 'c', name: 'f', size: 1 })]), /^REPLICA_FAILURE FENCED/, 'refused before any byte is sent');
    assert.strictEqual(await request([formatFence(5), formatRequest({ verb: 'RESERVE', generation: 20 })]), 'OK', 'the current epoch is served');
    assert.strictEqual((await catalogOnDisk(path.join(dataDir, 'replica1'))).marks.reserved, 20);
  });

  it('an upload prepared under epoch 5 cannot commit once epoch 6 was shown: nothing is stored, nothing staged', async () => {
    const body = Buffer.from('written by a primary that is about to be deposed');
    const old = await RawClient.connect(port);
    try {
      await old.send(`${formatFence(5)}\n${formatRequest({ verb: 'REPLICA', clientId: 'c', name: 'late.txt', size: body.length })}\n`);
      assert.strictEqual(await old.recvLine(), 'SEND_FILE');
      await old.send(body);
      await old.send(formatReplicaChecksum({ sha256: sha256(body), generation: 101, mtimeMs: Date.now(), keep: 5 }) + '\n');
      assert.strictEqual(await old.recvLine(), 'REPLICA_PREPARED');

      // A new leader's first contact.
      const inventory = await request([formatFence(6), formatRequest({ verb: 'INVENTORY' })]);
      assert.ok(!inventory.startsWith('ERROR'), inventory);

      await old.send('COMMIT\n');
      assert.match(await old.recvLine(), /^REPLICA_FAILURE FENCED .*epoch 6.*epoch 5/);
    } finally {
      old.socket.destroy();
    }
    const catalog = await catalogOnDisk(path.join(dataDir, 'replica1'));
    assert.strictEqual(catalog.names.get('c/late.txt'), undefined, 'the deposed primary committed nothing');
    await assert.rejects(fs.stat(path.join(dataDir, 'replica1', 'c', 'late.txt')), { code: 'ENOENT' });
    assert.deepStrictEqual(await fs.readdir(path.join(dataDir, 'replica1', '.dfs', 'tmp')).catch(() => []), []);
  });
});
