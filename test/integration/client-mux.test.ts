import * as assert from 'assert';
import { createHash, randomBytes } from 'crypto';
import { once } from 'events';
import { promises as fs } from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import { ClientConnections } from '../../server/client/client-connections';
import { DfsClient } from '../../server/client/dfs-client';
import { ClusterStatus, DfsError } from '../../server/protocol';
import { TestCluster } from '../support/cluster';
import { waitFor } from '../support/wait';

/**
 * A relay in front of the real primary that counts the connections it carries and can
 * cut them all at once (a pulled cable, or a connection that dies mid-request).
 */
class KillableRelay {
  connections = 0;
  /** Bytes from the client, over every connection. */
  fromClient = 0;
  /** Called with each chunk the client sends; return true to cut every connection there, before the chunk passes. */
  cutWhen: ((fromClient: number) => boolean) | undefined;
  /** Text that, seen in what the primary sends, cuts every connection before it reaches the client. */
  swallow: string | undefined;
  swallowed = false;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private readonly server: net.Server;
  port = 0;

  private constructor(private readonly target: () => number) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(target: () => number): Promise<KillableRelay> {
    const relay = new KillableRelay(target);
    relay.server.listen(0, '127.0.0.1');
    await once(relay.server, 'listening');
    relay.port = (relay.server.address() as net.AddressInfo).port;
    return relay;
  }

  cutAll(): void {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  close(): void {
    this.cutAll();
    this.server.close();
  }

  private accept(client: net.Socket): void {
    this.connections++;
    const upstream = net.connect(this.target(), '127.0.0.1');
    const pair: [net.Socket, net.Socket] = [client, upstream];
    this.pairs.add(pair);
    const done = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', done);
    upstream.on('error', done);
    client.on('close', done);
    upstream.on('close', done);
    client.on('data', (chunk: Buffer) => {
      this.fromClient += chunk.length;
      if (this.cutWhen?.(this.fromClient)) {
        this.cutWhen = undefined;
        this.cutAll();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (this.swallow && chunk.includes(this.swallow)) {
        // The answer never reaches the client: the connection dies with it.
        this.swallow = undefined;
        this.swallowed = true;
        this.cutAll();
        return;
      }
      client.write(chunk);
    });
  }
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Collects a download in memory; a held sink takes its first chunk and then no more until release(), so the download stalls mid-body. */
function memorySink(options: { held?: boolean } = {}): Writable & { bytes(): Buffer; release(): void } {
  const parts: Buffer[] = [];
  let held = options.held === true;
  let waiting: (() => void) | undefined;
  const sink = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _encoding, callback) {
      parts.push(chunk);
      if (held && parts.length > 1) {
        waiting = callback;
      } else {
        callback();
      }
    },
  });
  const release = (): void => {
    held = false;
    waiting?.();
    waiting = undefined;
  };
  return Object.assign(sink, { bytes: () => Buffer.concat(parts), release });
}

async function connectionsOf(client: DfsClient): Promise<NonNullable<ClusterStatus['connections']>> {
  const status = (await client.status()) as ClusterStatus;
  assert.ok(status.connections, 'STATUS carries the connection counts');
  return status.connections;
}

describe('DfsClient over one multiplexed connection to the primary', function () {
  let cluster: TestCluster;
  let scratch: string;

  beforeEach(async () => {
    cluster = await TestCluster.start({ replicas: 2 });
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-client-mux-'));
  });

  afterEach(async () => {
    await cluster.destroy();
    await fs.rm(scratch, { recursive: true, force: true });
  });

  it('uploads, listings, downloads and status, many at once, all run over the one connection the primary accepted', async () => {
    const connections = new ClientConnections();
    const client = new DfsClient({ host: '127.0.0.1', port: cluster.primaryPort, clientId: 'mux', connections });
    try {
      const first = await connectionsOf(client);
      const files = Array.from({ length: 24 }, (_, index) => ({ name: `dir/f${index}.bin`, data: randomBytes(index % 3 === 0 ? 300_000 : 4096) }));
      await Promise.all(files.map(async ({ name, data }) => assert.strictEqual((await client.upload(name, [data], data.length)).copies, 3)));
      const [names, records] = await Promise.all([client.list(), client.files()]);
      assert.deepStrictEqual([...names].sort(), files.map(({ name }) => name).sort());
      assert.strictEqual(records.length, files.length);
      await Promise.all(
        files.map(async ({ name, data }) => {
          const sink = memorySink();
          const result = await client.download(name, sink);
          assert.ok(sink.bytes().equals(data), `${name} downloaded whole`);
          assert.strictEqual(result.sha256, sha256(data));
        }),
      );
      await client.downloadToFile(files[0].name, path.join(scratch, 'f0.bin'));
      assert.ok((await fs.readFile(path.join(scratch, 'f0.bin'))).equals(files[0].data));
      for (const { name, data } of files.slice(0, 4)) {
        assert.ok((await fs.readFile(path.join(cluster.replicaRoot(1), 'mux', name))).equals(data), `${name} on replica 2`);
      }
      const last = await connectionsOf(client);
      assert.strictEqual(last.accepted, first.accepted, `connections the primary accepted during ${files.length * 2 + 4} requests`);
      assert.strictEqual(last.multiplexed, first.multiplexed);
      assert.strictEqual(connections.sessionsOpened, 1);
      assert.ok(last.multiplexedOpen >= 1);
    } finally {
      connections.close();
    }
    // Closed by the client: the primary sees the connection go.
    await waitFor(async () => (await connectionsOf(new DfsClient({ host: '127.0.0.1', port: cluster.primaryPort, clientId: 'probe', connections: new ClientConnections() }))).multiplexedOpen === 1, 'the closed connection to end on the primary');
  });

  it('survives a restart of the primary mid-session: the next request opens a new connection', async () => {
    const connections = new ClientConnections();
    const client = new DfsClient({ host: '127.0.0.1', port: cluster.primaryPort, clientId: 'mux', connections });
    try {
      const before = randomBytes(5000);
      await client.upload('before.bin', [before], before.length);
      await cluster.restartPrimary('SIGKILL');
      const after = randomBytes(5000);
      assert.strictEqual((await client.upload('after.bin', [after], after.length)).copies, 3);
      assert.deepStrictEqual((await client.list()).sort(), ['after.bin', 'before.bin']);
      const sink = memorySink();
      await client.download('before.bin', sink);
      assert.ok(sink.bytes().equals(before));
      assert.strictEqual(connections.sessionsOpened, 2);
      const counts = await connectionsOf(client);
      assert.deepStrictEqual([counts.accepted, counts.multiplexed], [1, 1], 'the restarted primary accepted the one new connection');
    } finally {
      connections.close();
    }
  });

  /**
   * A client whose first address is a relay playing a primary killed with kill -9 whose
   * reset the client has not read yet: the next request's first bytes find the process's
   * connection dead, and nothing listens there any more. The second address is the primary.
   */
  async function clientOnDyingPrimary(): Promise<{ client: DfsClient; connections: ClientConnections; relay: KillableRelay; reached: number }> {
    const relay = await KillableRelay.start(() => cluster.primaryPort);
    const connections = new ClientConnections();
    const primaries = [
      { host: '127.0.0.1', port: relay.port },
      { host: '127.0.0.1', port: cluster.primaryPort },
    ];
    const client = new DfsClient({ primaries, clientId: 'mux', connections, failoverWaitMs: 5_000 });
    try {
      await client.upload('before.bin', [Buffer.from('before')], 6);
    } catch (error) {
      connections.close();
      relay.close();
      throw error;
    }
    relay.cutWhen = () => {
      relay.close();
      return true;
    };
    return { client, connections, relay, reached: relay.fromClient };
  }

  it('an upload sent on a connection whose primary just died is asked of the next primary, nothing of it sent to the dead one', async () => {
    const { client, connections, relay, reached } = await clientOnDyingPrimary();
    try {
      const data = randomBytes(20_000);
      const receipt = await client.upload('after.bin', [data], data.length);
      assert.strictEqual(receipt.sha256, sha256(data));
      assert.strictEqual(receipt.copies, 3);
      assert.ok(relay.fromClient - reached < data.length, `nothing of the body went to the dead primary (${relay.fromClient - reached} bytes reached it)`);
      for (const root of cluster.allRoots()) {
        assert.ok((await fs.readFile(path.join(root, 'mux', 'after.bin'))).equals(data), `${root} holds after.bin`);
      }
    } finally {
      connections.close();
      relay.close();
    }
  });

  it('a listing sent on a connection whose primary just died is asked of the next primary; a delete so cut is not, and says its outcome is unknown', async () => {
    const listing = await clientOnDyingPrimary();
    try {
      assert.deepStrictEqual(await listing.client.list(), ['before.bin']);
    } finally {
      listing.connections.close();
    }
    // A delete may have been carried out before the reset: it is not asked again.
    const deleting = await clientOnDyingPrimary();
    try {
      await assert.rejects(deleting.client.delete('before.bin'), (error: unknown) => {
        assert.ok(error instanceof DfsError, String(error));
        assert.strictEqual(error.code, 'OUTCOME_UNKNOWN', error.message);
        assert.match(error.message, /broke before the answer to DELETE .*whether it was carried out is unknown\. List your files/);
        return true;
      });
      assert.deepStrictEqual(await deleting.client.list(), ['before.bin'], 'the delete never reached a live primary, so the file is still there');
    } finally {
      deleting.connections.close();
    }
  });

  it('a connection killed mid-upload fails that upload clearly, stores nothing, and the next request reconnects', async () => {
    const relay = await KillableRelay.start(() => cluster.primaryPort);
    const connections = new ClientConnections();
    const client = new DfsClient({ host: '127.0.0.1', port: relay.port, clientId: 'mux', connections });
    try {
      await client.upload('small.bin', [Buffer.from('small')], 5);
      const size = 4 * 1024 * 1024;
      const chunk = randomBytes(64 * 1024);
      const body = function* (): Generator<Buffer> {
        for (let sent = 0; sent < size; sent += chunk.length) {
          yield chunk;
        }
      };
      const startedAt = relay.fromClient;
      relay.cutWhen = (fromClient) => fromClient - startedAt > 1024 * 1024;
      const concurrent = client.list();
      await assert.rejects(client.upload('big.bin', body(), size), (error: unknown) => {
        assert.ok(error instanceof DfsError, String(error));
        assert.match(error.message, /the connection to the primary broke after \d+ of 4194304 bytes .*nothing was stored, try again/);
        return true;
      });
      // A listing running on the same connection fails too, with the connection's loss, or had finished whole.
      await concurrent.then(
        (names) => assert.deepStrictEqual(names, ['small.bin']),
        (error: unknown) => assert.match(String(error), /connection|lost/),
      );
      assert.deepStrictEqual(await client.list(), ['small.bin']);
      assert.strictEqual(relay.connections, 2, 'the next request opened one new connection');
      assert.strictEqual(connections.sessionsOpened, 2);
      // A download cut mid-body is a short transfer, not a short file: an error, never fewer bytes.
      const big = randomBytes(3 * 1024 * 1024);
      await client.upload('big.bin', [big], big.length);
      const sink = memorySink({ held: true });
      const download = client.download('big.bin', sink);
      await waitFor(() => sink.bytes().length > 0, 'the first bytes of the download');
      relay.cutAll();
      // The client reads on once its sink takes bytes again, and finds the connection gone.
      sink.release();
      await assert.rejects(download, (error: unknown) => error instanceof DfsError && error.code === 'SHORT_BODY' && /cut after \d+ of 3145728 bytes/.test(error.message));
      assert.ok(sink.bytes().length < big.length);
      await client.downloadToFile('big.bin', path.join(scratch, 'big.bin'));
      assert.ok((await fs.readFile(path.join(scratch, 'big.bin'))).equals(big));
      assert.strictEqual(relay.connections, 3);
    } finally {
      connections.close();
      relay.close();
    }
  });

  it('an upload whose answer is lost with its connection is settled as stored, through a new connection', async () => {
    const relay = await KillableRelay.start(() => cluster.primaryPort);
    const connections = new ClientConnections();
    const client = new DfsClient({ host: '127.0.0.1', port: relay.port, clientId: 'mux', connections, outcomeWaitMs: 20_000 });
    try {
      await client.status();
      const data = randomBytes(100_000);
      relay.swallow = 'UPLOAD_SUCCESS';
      const receipt = await client.upload('lost.bin', [data], data.length);
      assert.ok(relay.swallowed, 'the answer was cut off with the connection');
      assert.strictEqual(receipt.sha256, sha256(data));
      assert.strictEqual(receipt.size, data.length);
      assert.ok((await fs.readFile(path.join(cluster.primaryRoot(), 'mux', 'lost.bin'))).equals(data));
      assert.strictEqual(connections.sessionsOpened, 2, 'the question went over a new connection');
    } finally {
      connections.close();
      relay.close();
    }
  });
});
