import * as assert from 'assert';
import { randomBytes } from 'crypto';
import * as net from 'net';
import { DfsError } from '../../server/protocol';
import { TestCluster } from '../support/cluster';
import { waitFor } from '../support/wait';

/** Every server starts under a soft and hard open-file limit of 256, as on a small desktop. */
const UNDER_256 = ['bash', '-c', 'ulimit -n 256 && exec "$0" "$@"'];
/** What the default limit works out to under 256: half of (256 - 64). */
const DEFAULT_UNDER_256 = 96;
const IDLE = 400;

/** An idle client connection: what the server sent it, and whether it was closed. */
interface Idle {
  socket: net.Socket;
  received: string;
  closed: boolean;
}

/** Opens `count` connections at once and leaves them idle; resolves once every one has connected (or failed to). */
async function openIdle(port: number, count: number): Promise<Idle[]> {
  const idle = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Idle>((resolve) => {
          const socket = net.connect({ host: '127.0.0.1', port });
          const entry: Idle = { socket, received: '', closed: false };
          socket.on('data', (chunk) => (entry.received += chunk.toString('utf8')));
          socket.on('close', () => (entry.closed = true));
          socket.on('error', () => undefined);
          socket.once('connect', () => resolve(entry));
          socket.once('error', () => resolve(entry));
        }),
    ),
  );
  return idle;
}

function closeAll(idle: Idle[]): void {
  idle.forEach((entry) => entry.socket.destroy());
}

/** A request on a connection that sat idle: the server still answers it. */
async function requestOn(entry: Idle, line: string): Promise<string> {
  entry.socket.write(line + '\n');
  await waitFor(() => entry.closed, `an answer to ${line} on an idle connection`, 10_000);
  return entry.received;
}

function linesMatching(output: string[], pattern: RegExp): string[] {
  return output.filter((line) => pattern.test(line));
}

const skipReason = process.platform === 'linux' ? undefined : `open-file limits are read from /proc/self/limits, which ${process.platform} lacks`;

describe('exhausted descriptors', function () {
  this.timeout(60_000);
  let cluster: TestCluster | undefined;
  let idle: Idle[] = [];

  before(function () {
    if (skipReason) {
      console.log(`    skipped: ${skipReason}`);
      this.skip();
    }
  });

  afterEach(async () => {
    closeAll(idle);
    idle = [];
    await cluster?.destroy();
    cluster = undefined;
  });

  it(`under ulimit -n 256 the default limit is ${DEFAULT_UNDER_256}: with ${IDLE} idle connections a new upload gets LIMIT, refusals are logged once, the held connections are served, on the primary and on a replica`, async () => {
    cluster = await TestCluster.start({ replicas: 1, launcher: UNDER_256, args: ['--header-timeout', '60000'] });
    for (const node of [cluster.primary, cluster.replicas[0]!]) {
      await waitFor(() => linesMatching(node.output, new RegExp(`at most ${DEFAULT_UNDER_256} connections`)).length === 1, 'the start-up line with the connection limit');
      assert.deepStrictEqual(linesMatching(node.output, /warning/), []);
    }

    idle = await openIdle(cluster.primaryPort, IDLE);
    // The first ones are held; every other one is told LIMIT and closed, none dropped unanswered.
    await waitFor(() => idle.filter((entry) => entry.closed).length >= IDLE - DEFAULT_UNDER_256, 'the connections over the limit to be refused');
    const refused = idle.filter((entry) => entry.closed);
    assert.strictEqual(refused.length, IDLE - DEFAULT_UNDER_256);
    for (const entry of refused) {
      assert.match(entry.received, /^ERROR LIMIT the primary is serving its limit of 96 connections; try again shortly\n$/);
    }
    await assert.rejects(cluster.client().upload('new.bin', [randomBytes(1000)], 1000), (error: unknown) => {
      assert.ok(error instanceof DfsError, String(error));
      assert.strictEqual(error.code, 'LIMIT');
      assert.match(error.message, /the primary is serving its limit of 96 connections/);
      return true;
    });
    assert.strictEqual(linesMatching(cluster.primary.output, /refusing connections with LIMIT: serving the limit of 96/).length, 1, cluster.primary.output.join('\n'));
    assert.ok(linesMatching(cluster.primary.output, /LIMIT/).length <= 2, 'a refusal was logged per connection');
    assert.strictEqual(await requestOn(idle[0], 'LIST tester'), 'No files stored for client tester.');

    closeAll(idle);
    const bytes = randomBytes(100_000);
    const receipt = await waitFor(() => cluster!.client().upload('new.bin', [bytes], bytes.length).catch(() => undefined), 'an upload once the idle connections closed');
    assert.strictEqual(receipt.copies, 2);

    // The replica: the primary's link gets its LIMIT and the upload says so.
    idle = await openIdle(cluster.replicas[0]!.port, IDLE);
    await waitFor(() => idle.filter((entry) => entry.closed).length >= IDLE - DEFAULT_UNDER_256, 'the replica to refuse the connections over its limit');
    for (const entry of idle.filter((e) => e.closed)) {
      assert.match(entry.received, /^ERROR LIMIT the replica 1 is serving its limit of 96 connections/);
    }
    await assert.rejects(cluster.client().upload('other.bin', [bytes], bytes.length), (error: unknown) => {
      assert.ok(error instanceof DfsError, String(error));
      assert.strictEqual(error.code, 'LIMIT');
      assert.match(error.message, /replica 1 \(127\.0\.0\.1:\d+\): the replica 1 is serving its limit of 96 connections.*Nothing was stored\. A replica is serving its connection limit: try again shortly\./);
      return true;
    });
    assert.strictEqual(linesMatching(cluster.replicas[0]!.output, /refusing connections with LIMIT/).length, 1);
    assert.match(await requestOn(idle[0], 'LIST tester'), /^new\.bin/);
    closeAll(idle);
    await waitFor(() => cluster!.client().upload('other.bin', [bytes], bytes.length).catch(() => undefined), 'an upload once the replica has room again');
  });

  it('an explicit --max-connections above what ulimit -n 256 allows is warned about; when accept runs out of descriptors the server logs it once and keeps serving', async () => {
    cluster = await TestCluster.start({ replicas: 1, launcher: UNDER_256, args: ['--header-timeout', '60000', '--max-connections', '1000'] });
    assert.strictEqual(
      linesMatching(cluster.primary.output, /warning: --max-connections 1000 is more than this process's open-file limit of 256 allows \(96, keeping room for files and replica links\).*ulimit -n/).length,
      1,
      cluster.primary.output.join('\n'),
    );

    idle = await openIdle(cluster.primaryPort, IDLE);
    await waitFor(() => linesMatching(cluster!.primary.output, /cannot accept connections: this process is out of file descriptors \(the open-file limit of 256 is reached\) while serving \d+ connections.*ulimit -n/).length > 0, 'the primary to log that it ran out of descriptors');
    assert.strictEqual(linesMatching(cluster.primary.output, /out of file descriptors/).length, 1, 'accept failures were logged per connection');
    assert.deepStrictEqual(linesMatching(cluster.primary.output, /listener error/), []);
    assert.strictEqual(await requestOn(idle[0], 'LIST tester'), 'No files stored for client tester.');

    closeAll(idle);
    const bytes = randomBytes(100_000);
    const receipt = await waitFor(() => cluster!.client().upload('after.bin', [bytes], bytes.length).catch(() => undefined), 'an upload once descriptors are free again');
    assert.strictEqual(receipt.copies, 2);
  });
});
