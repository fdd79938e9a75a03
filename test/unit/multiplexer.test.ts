import * as assert from 'assert';
import { createHash, randomBytes } from 'crypto';
import * as net from 'net';
import { Connection } from '../../server/net/connection';
import { MuxSession, MuxStream } from '../../server/net/multiplexer';
import { DfsError, FrameType, INITIAL_STREAM_WINDOW, encodeFrame } from '../../server/protocol';
import { waitFor } from '../support/wait';

interface Pair {
  initiator: MuxSession;
  /** Absent when the far end is a bare socket that reads and answers nothing. */
  acceptor: MuxSession;
  /** Sockets under the sessions, for cutting the connection. */
  initiatorSocket: net.Socket;
  acceptorSocket: net.Socket;
  close(): void;
}

/** Two sessions over a real loopback TCP connection; `onStream` serves what the initiator opens. */
async function pair(onStream: ((stream: MuxStream) => void) | 'silent', idleMs = 10_000): Promise<Pair> {
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const initiatorSocket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve) => initiatorSocket.once('connect', resolve));
  const acceptorSocket = await accepted;
  server.close();
  if (onStream === 'silent') {
    acceptorSocket.on('data', () => undefined);
    acceptorSocket.on('error', () => undefined);
  }
  const acceptor =
    onStream === 'silent' ? (undefined as unknown as MuxSession) : new MuxSession(acceptorSocket, { role: 'acceptor', idleMs, onStream, peer: 'the initiator' });
  const initiator = new MuxSession(initiatorSocket, { role: 'initiator', idleMs, peer: 'the acceptor' });
  return {
    initiator,
    acceptor,
    initiatorSocket,
    acceptorSocket,
    close: () => {
      initiator.close();
      acceptor?.close();
      acceptorSocket.destroy();
    },
  };
}

/** Serves each stream by echoing the SHA-256 of everything it received, then ending. */
function hashEcho(stream: MuxStream): void {
  const hash = createHash('sha256');
  stream.on('data', (chunk: Buffer) => hash.update(chunk));
  stream.on('end', () => stream.end(hash.digest('hex')));
  stream.on('error', () => undefined);
}

async function sendAndHash(session: MuxSession, body: Buffer): Promise<string> {
  const conn = new Connection(session.openStream());
  for (let offset = 0; offset < body.length; offset += 100_000) {
    await conn.write(body.subarray(offset, offset + 100_000));
  }
  conn.stream.end();
  return (await conn.readToEnd(1000)).toString();
}

describe('multiplexer (server/net/multiplexer.ts)', () => {
  it('runs many streams at once over one connection, each byte-exact, bodies larger than the credit window', async () => {
    const link = await pair(hashEcho);
    try {
      const bodies = Array.from({ length: 40 }, (_, index) => randomBytes(index % 5 === 0 ? 3 * INITIAL_STREAM_WINDOW + 17 : 1 + index * 997));
      const hashes = await Promise.all(bodies.map((body) => sendAndHash(link.initiator, body)));
      hashes.forEach((hash, index) => assert.strictEqual(hash, createHash('sha256').update(bodies[index]).digest('hex')));
      await waitFor(() => link.initiator.openStreams === 0 && link.acceptor.openStreams === 0, 'every finished stream to be forgotten on both sides');
    } finally {
      link.close();
    }
  });

  it('a stream whose reader stops holds back only itself: credit, not the shared connection, fills up', async () => {
    let stalled: MuxStream | undefined;
    const link = await pair((stream) => {
      if (!stalled) {
        stalled = stream;
        stream.on('error', () => undefined);
        stream.pause();
        return;
      }
      hashEcho(stream);
    });
    try {
      const slow = link.initiator.openStream();
      slow.on('error', () => undefined);
      const piece = Buffer.alloc(64 * 1024);
      for (let written = 0; written < 2 * INITIAL_STREAM_WINDOW; written += piece.length) {
        slow.write(piece);
      }
      await waitFor(() => (stalled?.readableLength ?? 0) >= INITIAL_STREAM_WINDOW, 'the stalled stream to take its whole credit');
      const body = randomBytes(8 * INITIAL_STREAM_WINDOW);
      assert.strictEqual(await sendAndHash(link.initiator, body), createHash('sha256').update(body).digest('hex'));
      // Nothing beyond the credit reached the stalled reader, the rest waits on our side.
      assert.ok(stalled!.readableLength <= INITIAL_STREAM_WINDOW, `the stalled stream buffered ${stalled!.readableLength} bytes`);
      assert.ok(slow.writableLength > 0, 'the slow stream still holds bytes it may not send yet');
      stalled!.resume();
      await waitFor(() => slow.writableLength === 0, 'the slow stream to drain once its reader reads');
    } finally {
      link.close();
    }
  });

  it('END ends a reply; RESET makes the reader fail, so a cut listing is never read as a shorter one', async () => {
    const link = await pair((stream) => {
      stream.on('error', () => undefined);
      stream.once('data', (request: Buffer) => {
        stream.write('{"header":1}\n{"record":1}\n');
        if (request.toString() === 'whole') {
          stream.end('{"record":2}\n');
        } else {
          stream.destroy(new Error('the disk went away'));
        }
      });
    });
    try {
      const whole = new Connection(link.initiator.openStream());
      await whole.write('whole');
      assert.strictEqual((await whole.readToEnd(1000)).toString(), '{"header":1}\n{"record":1}\n{"record":2}\n');
      const cut = new Connection(link.initiator.openStream());
      await cut.write('cut');
      await assert.rejects(cut.readToEnd(1000), (error: unknown) => {
        assert.ok(error instanceof DfsError);
        assert.strictEqual(error.code, 'PROTOCOL');
        assert.match(error.message, /reset the stream \(CANCEL\): the disk went away/);
        return true;
      });
    } finally {
      link.close();
    }
  });

  it('the physical connection lost fails every stream on it, and no new stream opens', async () => {
    const link = await pair((stream) => stream.on('error', () => undefined));
    const streams = Array.from({ length: 5 }, () => new Connection(link.initiator.openStream()));
    const reads = streams.map((conn) => conn.readLine(5_000));
    await waitFor(() => link.acceptor.openStreams === 5, 'the acceptor to see the five streams');
    link.acceptorSocket.destroy();
    for (const read of reads) {
      await assert.rejects(read, /connection failed: the connection to the acceptor was lost/);
    }
    await link.initiator.closed;
    assert.strictEqual(link.initiator.alive, false);
    assert.throws(() => link.initiator.openStream(), /was lost/);
  });

  it('an idle connection whose peer answers PINGs is kept; a peer that answers nothing is found dead within the idle timeout', async () => {
    const idleMs = 300;
    const link = await pair(hashEcho, idleMs);
    try {
      // What is tested is that it survives the time passing: three idle periods without a request.
      const started = Date.now();
      await waitFor(() => Date.now() - started > 3 * idleMs, 'three idle periods');
      assert.ok(link.initiator.alive && link.acceptor.alive);
      assert.strictEqual(await sendAndHash(link.initiator, Buffer.from('still here')), createHash('sha256').update('still here').digest('hex'));
    } finally {
      link.close();
    }
    // A hung peer: its socket stays open, but nothing comes back, not even a PONG.
    const hung = await pair('silent', idleMs);
    try {
      const conn = new Connection(hung.initiator.openStream());
      const read = conn.readLine(10_000);
      const opened = Date.now();
      await hung.initiator.closed;
      assert.ok(Date.now() - opened < 3 * idleMs, `found dead after ${Date.now() - opened} ms`);
      await assert.rejects(read, /sent nothing for \d+ ms, not even an answer to a PING/);
    } finally {
      hung.close();
    }
  });

  it('DATA beyond the credit granted resets the stream; a malformed frame ends the connection', async () => {
    const received: MuxStream[] = [];
    const link = await pair((stream) => {
      stream.on('error', () => undefined);
      received.push(stream);
    });
    try {
      const ours = link.initiator.openStream();
      ours.on('error', () => undefined);
      // Written straight to the socket on that stream: our own streams never overrun their credit.
      const chunk = Buffer.alloc(256 * 1024);
      for (let sent = 0; sent <= INITIAL_STREAM_WINDOW; sent += chunk.length) {
        link.initiatorSocket.write(encodeFrame({ type: FrameType.DATA, streamId: ours.id, payload: chunk }));
      }
      await waitFor(() => received[0]?.destroyed, 'the overrunning stream to be reset');
      assert.match(String(received[0].errored), /FLOW_CONTROL/);
      await waitFor(() => ours.destroyed, 'our side to hear of the reset');
      assert.match(String(ours.errored), /reset the stream \(FLOW_CONTROL\)/);
      assert.ok(link.acceptor.alive, 'one stream breaking the rules costs only that stream');
      link.initiatorSocket.write(Buffer.from([0, 0, 0, 0, 0, 0, 0, 3, 42]));
      await link.acceptor.closed;
      assert.strictEqual(link.acceptor.alive, false);
    } finally {
      link.close();
    }
  });
});
