import * as assert from 'assert';
import { DfsClient } from '../../server/client/dfs-client';
import { DfsError } from '../../server/protocol';
import { TestCluster } from '../support/cluster';
import { Cut, CuttingRelay } from '../support/cutting-relay';

/**
 * An upload whose answer never reaches the client: a TCP relay between the client and
 * a real primary cuts the upload's connection at a chosen point and holds every later
 * connection until the test has changed the cluster. The client must then report
 * what really happened, or say that it cannot tell; never "not stored" for an upload
 * that was stored.
 */

describe('an upload whose answer is lost in a primary restart', function () {
  this.timeout(60_000);
  let cluster: TestCluster;
  let relay: CuttingRelay | undefined;

  beforeEach(async () => {
    // No older versions kept: one overwrite removes every trace of the version before it.
    cluster = await TestCluster.start({ replicas: 2, primaryArgs: ['--keep-versions', '0'] });
  });

  afterEach(async () => {
    relay?.close();
    await cluster.destroy();
  });

  async function uploadThroughRelay(cut: Cut, content: Buffer): Promise<{ outcome: Promise<unknown>; relay: CuttingRelay }> {
    relay = await CuttingRelay.start(cluster.primaryPort, { cut, afterCut: 'hold' });
    const client = new DfsClient({ host: '127.0.0.1', port: relay.port, clientId: 'lost', outcomeWaitMs: 20_000 });
    const outcome = client.upload('doc', [content], content.length).then(
      (receipt) => receipt,
      (error: unknown) => error,
    );
    return { outcome, relay };
  }

  it('stored, then overwritten before the client could ask: OUTCOME_UNKNOWN, never "not stored"', async () => {
    const direct = cluster.client('lost');
    await direct.upload('doc', [Buffer.from('first')], 5);
    const { outcome, relay } = await uploadThroughRelay({ at: 'after-the-answer' }, Buffer.from('second'));
    await relay.cut;
    // The primary answered, so it had committed "second"; now it is overwritten and gone.
    assert.strictEqual((await direct.versions('doc'))[0].size, 6, 'the primary committed the upload whose answer was cut');
    const third = await direct.upload('doc', [Buffer.from('third!!')], 7);
    await cluster.restartPrimary();
    relay.release();
    const error = await outcome;
    assert.ok(error instanceof DfsError, `expected a failure, got ${JSON.stringify(error)}`);
    assert.strictEqual(error.code, 'OUTCOME_UNKNOWN', error.message);
    assert.match(error.message, new RegExp(`it is now generation ${third.generation}`));
  });

  it('cut before the last byte reached the primary, name unchanged: "not stored", and it is not', async () => {
    const direct = cluster.client('lost');
    const first = await direct.upload('doc', [Buffer.from('first')], 5);
    const { outcome, relay } = await uploadThroughRelay({ at: 'before-the-last-byte', bodySize: 6 }, Buffer.from('second'));
    await relay.cut;
    await cluster.restartPrimary();
    relay.release();
    const error = await outcome;
    assert.ok(error instanceof DfsError, `expected a failure, got ${JSON.stringify(error)}`);
    assert.strictEqual(error.code, 'REPLICA_FAILED', error.message);
    assert.match(error.message, /nothing was stored/);
    const versions = await direct.versions('doc');
    assert.deepStrictEqual(
      versions.map((version) => version.generation),
      [first.generation],
      'the primary holds only the first version',
    );
  });
});

describe('an upload whose answer is lost, then restored elsewhere before the client asks', function () {
  this.timeout(60_000);

  it('reports the generation the upload got, not that of a later restore of the same bytes', async () => {
    const cluster = await TestCluster.start({ replicas: 2 });
    const relay = await CuttingRelay.start(cluster.primaryPort, { cut: { at: 'after-the-answer' }, afterCut: 'hold' });
    try {
      const direct = cluster.client('lost');
      await direct.upload('doc', [Buffer.from('first')], 5);
      const client = new DfsClient({ host: '127.0.0.1', port: relay.port, clientId: 'lost', outcomeWaitMs: 20_000 });
      const outcome = client.upload('doc', [Buffer.from('second')], 6).then(
        (receipt) => receipt,
        (error: unknown) => error,
      );
      await relay.cut;
      const stored = (await direct.versions('doc'))[0];
      assert.strictEqual(stored.size, 6, 'the primary committed the upload whose answer was cut');
      await direct.upload('doc', [Buffer.from('third!!')], 7);
      const restored = await direct.restore('doc', stored.generation);
      assert.ok(restored.generation > stored.generation);
      relay.release();
      const receipt = await outcome;
      assert.ok(!(receipt instanceof Error), `expected the upload to be reported stored, got ${String(receipt)}`);
      assert.strictEqual((receipt as { generation: number }).generation, stored.generation, 'the generation the upload got, not the restore of its bytes');
    } finally {
      relay.close();
      await cluster.destroy();
    }
  });
});
