import * as assert from 'assert';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as net from 'net';
import * as path from 'path';
import { Connection } from '../../server/net/connection';
import { MuxSession } from '../../server/net/multiplexer';
import { MuxDialer } from '../../server/net/mux-dialer';
import { Handlers } from '../../server/net/session';
import { NodeServer } from '../../server/node/node-server';
import { ReplicaLink } from '../../server/primary/replica-link';
import { DfsError, MUX_PREFACE, Reply, encodeListing, issueKey, parseReply } from '../../server/protocol';
import { makeCertificates } from '../support/certificates';
import { TestCluster, stagedSize } from '../support/cluster';
import { waitFor } from '../support/wait';

interface Socket {
  localPort: number;
  remotePort: number;
  state: string;
}

const TCP_STATES: Record<string, string> = { '01': 'ESTABLISHED', '06': 'TIME_WAIT', '08': 'CLOSE_WAIT', '0A': 'LISTEN' };

/** Every IPv4 TCP socket of this machine's namespace, including closed ones still in TIME_WAIT (they stay 60 s). */
async function tcpSockets(): Promise<Socket[]> {
  const text = await fs.readFile('/proc/net/tcp', 'utf8');
  return text
    .split('\n')
    .slice(1)
    .filter((line) => line.trim())
    .map((line) => {
      const fields = line.trim().split(/\s+/);
      const port = (address: string): number => parseInt(address.split(':')[1], 16);
      return { localPort: port(fields[1]), remotePort: port(fields[2]), state: TCP_STATES[fields[3]] ?? fields[3] };
    });
}

/**
 * The connections to `port`, either end (whichever closed first holds the TIME_WAIT),
 * as "clientPort state": one entry per connection and state.
 */
async function connectionsTo(port: number): Promise<Set<string>> {
  const entries = new Set<string>();
  for (const socket of await tcpSockets()) {
    if (socket.remotePort === port) {
      entries.add(`${socket.localPort} ${socket.state}`);
    } else if (socket.localPort === port && socket.state !== 'LISTEN') {
      entries.add(`${socket.remotePort} ${socket.state}`);
    }
  }
  return entries;
}

function portsOf(entries: Set<string>): Set<string> {
  return new Set([...entries].map((entry) => entry.split(' ')[0]));
}

/** Uploads `count` files of `size` bytes from `clients` clients at once; returns each outcome. */
async function uploadConcurrently(cluster: TestCluster, clients: number, count: number, size: number): Promise<{ name: string; data: Buffer; outcome: PromiseSettledResult<{ copies: number }> }[]> {
  const results: { name: string; data: Buffer; outcome: PromiseSettledResult<{ copies: number }> }[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, worker) => {
      const client = cluster.client(`mux${worker}`);
      while (next < count) {
        const index = next++;
        const name = `f${index}.bin`;
        const data = randomBytes(size);
        const [outcome] = await Promise.allSettled([client.upload(name, [data], data.length)]);
        results.push({ name: `mux${worker}/${name}`, data, outcome });
      }
    }),
  );
  return results;
}

/** Asserts the primary reaches each replica over exactly one connection, the one it had before `before` was taken, and opened no other. */
async function assertOneConnectionEach(cluster: TestCluster, before: Map<number, Set<string>>): Promise<void> {
  for (let index = 0; index < cluster.replicaCount; index++) {
    const port = cluster.basePort + index;
    const now = await connectionsTo(port);
    const opened = [...portsOf(now)].filter((localPort) => !portsOf(before.get(port)!).has(localPort));
    assert.deepStrictEqual(opened, [], `connections opened to replica ${index + 1} during the uploads: ${opened.length}`);
    assert.deepStrictEqual(portsOf(new Set([...now].filter((entry) => entry.endsWith('ESTABLISHED')))).size, 1, `open connections to replica ${index + 1}: ${[...now].join(', ')}`);
  }
}

/** The replica connections as they are once the primary has made its first contact with every replica. */
async function settledConnections(cluster: TestCluster): Promise<Map<number, Set<string>>> {
  const before = new Map<number, Set<string>>();
  for (let index = 0; index < cluster.replicaCount; index++) {
    const port = cluster.basePort + index;
    before.set(port, await waitFor(async () => {
      const entries = await connectionsTo(port);
      return [...entries].some((entry) => entry.endsWith('ESTABLISHED')) && entries;
    }, `the primary's connection to replica ${index + 1}`));
  }
  return before;
}

describe('persistent, multiplexed peer connections', function () {
  it('200 uploads from 16 clients at once reach each replica over the one connection the primary keeps open', async () => {
    const cluster = await TestCluster.start({ replicas: 3 });
    try {
      await cluster.client('warm').upload('warm.txt', [Buffer.from('first contact')], 13);
      const before = await settledConnections(cluster);
      const primaryBefore = portsOf(await connectionsTo(cluster.primaryPort));
      const results = await uploadConcurrently(cluster, 16, 200, 4096);
      for (const { name, outcome } of results) {
        assert.strictEqual(outcome.status, 'fulfilled', `${name}: ${outcome.status === 'rejected' ? String(outcome.reason) : ''}`);
        assert.strictEqual((outcome as PromiseFulfilledResult<{ copies: number }>).value.copies, 4);
      }
      for (const { name, data } of results.slice(0, 20)) {
        for (let index = 0; index < 3; index++) {
          assert.ok((await fs.readFile(path.join(cluster.replicaRoot(index), name))).equals(data), `${name} on replica ${index + 1}`);
        }
      }
      await assertOneConnectionEach(cluster, before);
      // The count sees connections that came and went: the 16 clients of this process share
      // its one connection to the primary, opened by the warm-up upload, and opened no other.
      const clientConnections = [...portsOf(await connectionsTo(cluster.primaryPort))].filter((port) => !primaryBefore.has(port));
      assert.deepStrictEqual(clientConnections, [], `client connections opened to the primary during the uploads: ${clientConnections.length}`);
    } finally {
      await cluster.destroy();
    }
  });

  it('over TLS with the cluster secret: the one connection per replica is authenticated once and carries every request', async () => {
    const certs = await makeCertificates();
    const secret = randomBytes(32);
    const cluster = await TestCluster.start({
      replicas: 2,
      args: ['--tls-cert', certs.cert, '--tls-key', certs.key, '--tls-ca', certs.ca],
      env: { DFS_SECRET: secret.toString('hex') },
      clientSecurity: { secret: Buffer.from(secret.toString('hex')), tls: { ca: await fs.readFile(certs.ca) } },
    });
    try {
      await cluster.client('warm').upload('warm.txt', [Buffer.from('first contact')], 13);
      const before = await settledConnections(cluster);
      const results = await uploadConcurrently(cluster, 8, 40, 20_000);
      for (const { name, data, outcome } of results) {
        assert.strictEqual(outcome.status, 'fulfilled', `${name}: ${outcome.status === 'rejected' ? String(outcome.reason) : ''}`);
        assert.ok((await fs.readFile(path.join(cluster.replicaRoot(1), name))).equals(data));
      }
      await cluster.client('mux0').delete('f0.bin');
      await waitFor(async () => !(await fs.stat(path.join(cluster.replicaRoot(0), 'mux0', 'f0.bin')).catch(() => undefined)), 'the delete to reach replica 1');
      await assertOneConnectionEach(cluster, before);
    } finally {
      await cluster.destroy();
      await fs.rm(certs.dir, { recursive: true, force: true });
    }
  });

  it('kill -9 of a replica mid-uploads fails the uploads on it with the usual reason; the primary connects again once it is back', async () => {
    const cluster = await TestCluster.start({ replicas: 3 });
    try {
      await cluster.client('warm').upload('warm.txt', [Buffer.from('first contact')], 13);
      const uploads = uploadConcurrently(cluster, 16, 64, 2 * 1024 * 1024);
      await waitFor(async () => (await stagedSize(cluster.replicaRoot(0))) > 0, 'replica 1 to stage bytes of the uploads in flight');
      await cluster.killReplica(0);
      const results = await uploads;
      const failed = results.filter(({ outcome }) => outcome.status === 'rejected');
      assert.ok(failed.length > 0, 'some uploads were in flight when the replica died');
      for (const { name, outcome } of failed) {
        const error = (outcome as PromiseRejectedResult).reason as DfsError;
        assert.strictEqual(error.code, 'QUORUM', `${name}: ${error.message}`);
        assert.match(error.message, /replica 1/, name);
      }
      await cluster.startReplica(0);
      const receipt = await waitFor(
        () => cluster.client('after').upload('back.bin', [Buffer.from('replica 1 is back')], 17).catch(() => undefined),
        'an upload to succeed with replica 1 back',
      );
      assert.strictEqual(receipt.copies, 4);
      assert.strictEqual(await fs.readFile(path.join(cluster.replicaRoot(0), 'after', 'back.bin'), 'utf8'), 'replica 1 is back');
      const entries = await connectionsTo(cluster.basePort);
      assert.strictEqual(portsOf(new Set([...entries].filter((entry) => entry.endsWith('ESTABLISHED')))).size, 1, [...entries].join(', '));
    } finally {
      await cluster.destroy();
    }
  });
});

/** A peer speaking the preface and frames, answering each request stream with `answer`. */
async function scriptedReplica(answer: (stream: import('stream').Duplex, request: string) => void): Promise<{ port: number; close(): void }> {
  const sessions: MuxSession[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const conn = new Connection(socket);
    void conn.readLine().then(async (line) => {
      assert.strictEqual(line, MUX_PREFACE);
      await conn.writeLine(MUX_PREFACE);
      sessions.push(
        new MuxSession(socket, {
          role: 'acceptor',
          idleMs: 10_000,
          initialBytes: conn.detach(),
          peer: 'the primary',
          onStream: (stream) => {
            stream.on('error', () => undefined);
            const request = new Connection(stream);
            void request.readLine().then((line) => answer(stream, line));
          },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      sessions.forEach((session) => session.close());
      server.close();
    },
  };
}

const TIMEOUTS = { headerMs: 2_000, idleMs: 5_000, settleMs: 15 };

describe('multiplexed peer connections: listings, limits, older peers (in-process peers on real sockets)', () => {
  it('an INVENTORY cut by a reset is an error, never a shorter inventory', async () => {
    const header = { synced: 3, highest: 3, nodeId: 'n1', session: 's' };
    const record = { clientId: 'c', name: 'a.txt', size: 1, sha256: 'a'.repeat(64), generation: 1, mtimeMs: 1 };
    const whole = encodeListing([record, { ...record, name: 'b.txt', generation: 2 }], header);
    let cut = false;
    const peer = await scriptedReplica((stream) => {
      if (cut) {
        stream.write(whole.slice(0, whole.indexOf('b.txt')));
        setImmediate(() => stream.destroy(new Error('the replica stopped mid-listing')));
      } else {
        stream.end(whole);
      }
    });
    const link = new ReplicaLink({ id: 1, host: '127.0.0.1', port: peer.port }, { timeouts: TIMEOUTS, retry: { attempts: 1, firstDelayMs: 0, maxDelayMs: 0 }, connectTimeoutMs: 2_000 });
    try {
      assert.deepStrictEqual((await link.inventory()).records.map((entry) => entry.name), ['a.txt', 'b.txt']);
      cut = true;
      await assert.rejects(link.inventory(), (error: unknown) => {
        assert.ok(error instanceof DfsError);
        assert.strictEqual(error.code, 'PROTOCOL');
        assert.match(error.message, /reset the stream \(CANCEL\): the replica stopped mid-listing/);
        return true;
      });
      assert.strictEqual(link.reachable, false);
      assert.strictEqual(link.dialer.sessionsOpened, 1, 'both requests ran over the one connection');
    } finally {
      link.close();
      peer.close();
    }
  });

  it('streams count against the connection limit and are refused with LIMIT beyond it; a revoked key is refused on its next stream; peers without the preface get a connection per request', async () => {
    const held: (() => void)[] = [];
    const handlers: Handlers = {
      STATUS: async (session) => {
        await new Promise<void>((resolve) => held.push(resolve));
        await session.reply(Reply.OK, { ok: true });
      },
    };
    const serve = async (multiplex: boolean): Promise<{ server: NodeServer; dialer: MuxDialer }> => {
      const server = new NodeServer(handlers, { host: '127.0.0.1', port: 0, role: 'replica 9', timeouts: TIMEOUTS, maxFileSize: 1 << 20, log: () => undefined, node: 'replica', maxConnections: 3, multiplex });
      const { port } = await server.listen();
      return { server, dialer: new MuxDialer({ host: '127.0.0.1', port, timeouts: TIMEOUTS }, 'replica 9') };
    };
    const status = async (dialer: MuxDialer): Promise<string> => {
      const conn = await dialer.open({ attempts: 1, firstDelayMs: 0, maxDelayMs: 0 });
      try {
        await conn.writeLine('STATUS');
        return await conn.readLine();
      } finally {
        conn.destroy();
      }
    };

    const multiplexed = await serve(true);
    try {
      // The physical connection and two streams make three.
      const first = [status(multiplexed.dialer), status(multiplexed.dialer)];
      await waitFor(() => held.length === 2, 'two requests to be served');
      const refused = parseReply(await status(multiplexed.dialer));
      assert.strictEqual(refused.code, 'LIMIT');
      assert.match(refused.message ?? '', /replica 9 is serving its limit of 3 connections/);
      held.splice(0).forEach((release) => release());
      for (const reply of await Promise.all(first)) {
        assert.strictEqual(parseReply(reply).token, Reply.OK);
      }
      assert.strictEqual(multiplexed.dialer.sessionsOpened, 1);
      assert.ok(multiplexed.dialer.multiplexing);
    } finally {
      multiplexed.dialer.close();
      await multiplexed.server.close();
    }

    // With a secret, the secret's holders and keys' holders multiplex; every stream is
    // checked against the revoked keys, so a revocation is never outlived by a connection.
    const secret = Buffer.from('a cluster secret of more than 32 bytes, for this test');
    const revoked = new Set<string>();
    const guarded = new NodeServer(handlers, {
      host: '127.0.0.1',
      port: 0,
      role: 'replica 9',
      timeouts: TIMEOUTS,
      maxFileSize: 1 << 20,
      log: () => undefined,
      node: 'replica',
      security: { secret },
      multiplex: true,
      isRevoked: (keyId) => revoked.has(keyId),
    });
    const { port: guardedPort } = await guarded.listen();
    const key = issueKey(secret, 'admin');
    const member = new MuxDialer({ host: '127.0.0.1', port: guardedPort, timeouts: TIMEOUTS, security: { secret }, role: 'primary' }, 'replica 9');
    const keyHolder = new MuxDialer({ host: '127.0.0.1', port: guardedPort, timeouts: TIMEOUTS, security: { key } }, 'replica 9');
    try {
      for (const dialer of [member, keyHolder]) {
        const reply = status(dialer);
        await waitFor(() => held.length === 1, 'the request to be served');
        held.splice(0).forEach((release) => release());
        assert.strictEqual(parseReply(await reply).token, Reply.OK);
      }
      assert.deepStrictEqual([member.sessionsOpened, member.multiplexing], [1, true]);
      assert.deepStrictEqual([keyHolder.sessionsOpened, keyHolder.multiplexing], [1, true]);
      revoked.add(key.keyId);
      const refusal = parseReply(await status(keyHolder));
      assert.strictEqual(refusal.code, 'AUTH');
      assert.match(refusal.message ?? '', new RegExp(`key ${key.keyId} has been revoked`));
      assert.strictEqual(keyHolder.sessionsOpened, 1, 'refused on a stream of the connection it had');
      assert.strictEqual(held.length, 0, 'the revoked key\'s request was never served');
    } finally {
      member.close();
      keyHolder.close();
      await guarded.close();
    }

    const older = await serve(false);
    try {
      const replies = [status(older.dialer), status(older.dialer)];
      await waitFor(() => held.length === 2, 'two requests to be served on connections of their own');
      held.splice(0).forEach((release) => release());
      for (const reply of await Promise.all(replies)) {
        assert.strictEqual(parseReply(reply).token, Reply.OK);
      }
      assert.strictEqual(older.dialer.multiplexing, false, 'a peer that refused the preface is not asked again at once');
      assert.strictEqual(older.dialer.sessionsOpened, 0);
    } finally {
      older.dialer.close();
      await older.server.close();
    }
  });
});
