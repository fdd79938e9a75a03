import * as assert from 'assert';
import { randomBytes } from 'crypto';
import { DfsError } from '../../server/protocol';
import { catalogOnDisk, heldOnDisk } from '../support/catalog-on-disk';
import { downloadBytes, sha256 } from '../support/convergence';
import { HaCluster, haClusterPerTest } from '../support/ha-cluster';
import { rejectsWithCode } from '../support/rejects';
import { waitFor } from '../support/wait';

/**
 * A rename in failover mode commits both names' records in one etcd transaction,
 * guarded by leadership; whoever leads next serves the renamed state, whether the
 * replicas applied it or not.
 */

/** The leader and every replica hold exactly `expected` (name -> generation and sha256) of a client, on disk and in their catalogs. */
async function assertEveryNode(cluster: HaCluster, leader: number, clientId: string, expected: Record<string, string>, since: number): Promise<void> {
  await cluster.waitForReplicasCaughtUp(leader, since);
  for (const root of [cluster.primaryRoot(leader), ...cluster.replicas.map((_, index) => cluster.replicaRoot(index))]) {
    // heldOnDisk also checks that the files on disk are exactly the catalog's, with its bytes.
    const held = Object.fromEntries([...(await heldOnDisk(root, clientId))].map(([name, { generation, sha256: digest }]) => [name, `${generation} ${digest}`]));
    assert.deepStrictEqual(held, expected, `${root} does not hold the renamed state`);
  }
}

describe('rename under failover through etcd', function () {
  this.timeout(180_000);
  const clusters = haClusterPerTest();

  it('an acknowledged rename survives kill -9 of the leader: the new leader serves the new name at its generation, never the old one', async function () {
    const cluster = await clusters.start(this);
    const client = cluster.client('ha-mv');
    const data = randomBytes(100_000);
    await client.upload('draft.bin', [data], data.length);
    const receipt = await client.rename('draft.bin', 'final/kept.bin');
    const { index: old } = await cluster.waitForLeader();
    await cluster.killPrimary(old);
    const next = await cluster.waitForLeader({ not: old });
    assert.ok((await downloadBytes(client, 'final/kept.bin')).equals(data));
    await rejectsWithCode(downloadBytes(client, 'draft.bin'), DfsError, 'NOT_FOUND');
    assert.deepStrictEqual(
      (await client.files()).map((file) => [file.name, file.generation]),
      [['final/kept.bin', receipt.generation]],
    );
    const since = Date.now();
    await cluster.startPrimary(old);
    await assertEveryNode(cluster, next.index, 'ha-mv', { 'final/kept.bin': `${receipt.generation} ${sha256(data)}` }, since);
  });

  it('a rename committed in etcd that no replica applied before the leader died is rolled forward by the next leader from the source\'s bytes', async function () {
    const cluster = await clusters.start(this);
    const { index: old } = await cluster.waitForLeader();
    const client = cluster.clientOf(old, 'ha-mv');
    const data = randomBytes(60_000);
    await client.upload('before.bin', [data], data.length);
    // Paused replicas take connections (the kernel does) but apply nothing: the leader
    // commits the rename in etcd and in its own catalog, then waits for them.
    cluster.replicas.forEach((node) => node!.child.kill('SIGSTOP'));
    const outcome = client.rename('before.bin', 'after.bin').then(
      () => 'renamed',
      (error: DfsError) => error.code,
    );
    await waitFor(async () => (await catalogOnDisk(cluster.primaryRoot(old))).names.get('ha-mv/after.bin') !== undefined, 'the leader to commit the rename');
    await cluster.killPrimary(old);
    assert.notStrictEqual(await outcome, 'renamed');
    // Killed while paused, the replicas never read the rename the leader sent them; they
    // come back with the old state only.
    for (let index = 0; index < cluster.replicas.length; index++) {
      await cluster.killReplica(index);
    }
    for (let index = 0; index < cluster.replicaCount; index++) {
      const held: string[] = [...(await catalogOnDisk(cluster.replicaRoot(index))).names].filter(([, state]) => state.versions.length > 0).map(([key]) => key);
      assert.deepStrictEqual(held, ['ha-mv/before.bin'], `replica ${index + 1} never applied the rename`);
      await cluster.startReplica(index);
    }
    const next = await cluster.waitForLeader({ not: old, timeoutMs: 40_000 });
    assert.ok(
      cluster.primaries[next.index]!.output.some((line) => /takeover: rename of ha-mv\/before\.bin to after\.bin .*applied from (this primary's copy|replica \d)/.test(line)),
      'the new leader rolled the rename forward from the source\'s bytes (no replica held the destination)',
    );
    const files = await cluster.client('ha-mv').files();
    assert.deepStrictEqual(files.map((file) => file.name), ['after.bin']);
    assert.ok((await downloadBytes(cluster.client('ha-mv'), 'after.bin')).equals(data));
    const since = Date.now();
    await cluster.startPrimary(old);
    await assertEveryNode(cluster, next.index, 'ha-mv', { 'after.bin': `${files[0].generation} ${sha256(data)}` }, since);
  });
});
