import * as assert from 'assert';
import { once } from 'events';
import * as net from 'net';
import { DfsClient } from '../../server/client/dfs-client';
import { DfsError } from '../../server/protocol';
import { TestCluster } from '../support/cluster';

/**
 * An upload whose answer never reaches the client: a TCP relay between the client and
 * a real primary cuts the upload's connection at a chosen point and holds every later
 * connection until the test has changed the cluster. The client must then report
 * what really happened, or say that it cannot tell; never "not stored" for an upload
 * that was stored.
 */

type Cut = 'after-the-answer' | 'before-the-last-byte';

class CuttingRelay {
  readonly server: net.Server;
  private released = false;
  private readonly waiting: (() => void)[] = [];
  /** Resolves once the upload's connection has been cut. */
  readonly cut: Promise<void>;
  private markCut!: () => void;
  private connections = 0;

  constructor(
    private readonly primaryPort: number,
    private readonly how: Cut,
    private readonly bodySize: number,
  ) {
    this.cut = new Promise((resolve) => (this.markCut = resolve));
    this.server = net.createServer((client) => this.accept(client));
  }

  async listen(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Lets the connections held since the cut through to the primary. */
  release(): void {
    this.released = true;
    this.waiting.splice(0).forEach((go) => go());
  }

  close(): void {
    this.server.close();
  }

  private accept(client: net.Socket): void {
    client.on('error', () => undefined);
    if (this.connections++ === 0) {
      this.cutUpload(client);
      return;
    }
    const go = (): void => {
      const primary = net.connect(this.primaryPort, '127.0.0.1');
      primary.on('error', () => client.destroy());
      client.pipe(primary).pipe(client);
    };
    if (this.released) {
      go();
    } else {
      // Held unread: the client's request waits in the socket until release().
      this.waiting.push(go);
    }
  }

  private cutUpload(client: net.Socket): void {
    const primary = net.connect(this.primaryPort, '127.0.0.1');
    primary.on('error', () => undefined);
    const cutNow = (): void => {
      client.destroy();
      primary.destroy();
      this.markCut();
    };
    let fromClient = Buffer.alloc(0);
    let forwarded = 0;
    client.on('data', (chunk: Buffer) => {
      fromClient = Buffer.concat([fromClient, chunk]);
      const headerEnd = fromClient.indexOf('\n') + 1;
      const complete = headerEnd > 0 && fromClient.length === headerEnd + this.bodySize;
      if (this.how === 'after-the-answer' || !complete) {
        primary.write(fromClient.subarray(forwarded));
        forwarded = fromClient.length;
        return;
      }
      // Everything but the last byte reaches the primary, which can then never commit.
      primary.write(fromClient.subarray(forwarded, fromClient.length - 1), cutNow);
    });
    let lines = 0;
    primary.on('data', (chunk: Buffer) => {
      // SEND_FILE reaches the client; the answer after the body does not.
      if (lines === 0) {
        const end = chunk.indexOf('\n');
        client.write(end >= 0 ? chunk.subarray(0, end + 1) : chunk);
        if (end >= 0) {
          lines = 1;
          if (end + 1 < chunk.length) {
            cutNow();
          }
        }
        return;
      }
      cutNow();
    });
  }
}

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

  async function uploadThroughRelay(how: Cut, content: Buffer): Promise<{ outcome: Promise<unknown>; relay: CuttingRelay }> {
    relay = new CuttingRelay(cluster.primaryPort, how, content.length);
    const port = await relay.listen();
    const client = new DfsClient({ host: '127.0.0.1', port, clientId: 'lost', outcomeWaitMs: 20_000 });
    const outcome = client.upload('doc', [content], content.length).then(
      (receipt) => receipt,
      (error: unknown) => error,
    );
    return { outcome, relay };
  }

  it('stored, then overwritten before the client could ask: OUTCOME_UNKNOWN, never "not stored"', async () => {
    const direct = cluster.client('lost');
    await direct.upload('doc', [Buffer.from('first')], 5);
    const { outcome, relay } = await uploadThroughRelay('after-the-answer', Buffer.from('second'));
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
    const { outcome, relay } = await uploadThroughRelay('before-the-last-byte', Buffer.from('second'));
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
    const relay = new CuttingRelay(cluster.primaryPort, 'after-the-answer', 6);
    try {
      const direct = cluster.client('lost');
      await direct.upload('doc', [Buffer.from('first')], 5);
      const port = await relay.listen();
      const client = new DfsClient({ host: '127.0.0.1', port, clientId: 'lost', outcomeWaitMs: 20_000 });
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
