import * as assert from 'assert';
import fc from 'fast-check';
import {
  DfsError,
  FRAME_HEADER_BYTES,
  Frame,
  FrameDecoder,
  FrameType,
  MAX_FRAME_PAYLOAD,
  ResetCode,
  decodeReset,
  decodeWindow,
  encodeFrame,
  encodeFrameHeader,
  encodeReset,
  encodeWindow,
} from '../../server/protocol';

const frameArbitrary: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({
    type: fc.constantFrom(FrameType.OPEN, FrameType.DATA, FrameType.END, FrameType.RESET, FrameType.WINDOW),
    streamId: fc.integer({ min: 1, max: 0x7fff_ffff }),
    payload: fc.uint8Array({ maxLength: 3000 }).map((bytes) => Buffer.from(bytes)),
  }),
  fc.record({
    type: fc.constantFrom(FrameType.PING, FrameType.PONG),
    streamId: fc.constant(0),
    payload: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((bytes) => Buffer.from(bytes)),
  }),
);

/** Splits `bytes` at the given cut points (any positions, repeated or out of order). */
function cut(bytes: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((point) => point % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of [...at, bytes.length]) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  return chunks;
}

function decodeError(bytes: Buffer): DfsError {
  try {
    new FrameDecoder().push(bytes);
  } catch (error) {
    assert.ok(error instanceof DfsError);
    return error;
  }
  assert.fail('expected the decoder to refuse the bytes');
}

describe('frames (server/protocol/frames.ts)', () => {
  it('any sequence of frames, cut into chunks anywhere, decodes to exactly the same frames', () => {
    fc.assert(
      fc.property(fc.array(frameArbitrary, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, points) => {
        const wire = Buffer.concat(frames.map(encodeFrame));
        const decoder = new FrameDecoder();
        const decoded = cut(wire, points).flatMap((chunk) => decoder.push(chunk));
        assert.deepStrictEqual(
          decoded.map((frame) => ({ ...frame, payload: Buffer.from(frame.payload) })),
          frames.map((frame) => ({ ...frame })),
        );
        assert.strictEqual(decoder.pending, 0);
      }),
      { numRuns: 300 },
    );
  });

  it('holds a partial frame until the rest arrives, one byte at a time', () => {
    const frame = { type: FrameType.DATA, streamId: 7, payload: Buffer.from('hello, stream') };
    const wire = encodeFrame(frame);
    const decoder = new FrameDecoder();
    for (let index = 0; index < wire.length - 1; index++) {
      assert.deepStrictEqual(decoder.push(wire.subarray(index, index + 1)), []);
    }
    assert.strictEqual(decoder.pending, wire.length - 1);
    assert.deepStrictEqual(decoder.push(wire.subarray(wire.length - 1)), [frame]);
  });

  it('with dataPieces, DATA comes out as it arrives, in views of the chunks pushed, and every other frame whole', () => {
    fc.assert(
      fc.property(fc.array(frameArbitrary, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, points) => {
        const wire = Buffer.concat(frames.map(encodeFrame));
        // Each chunk in its own memory, so a piece can be traced to the chunk it views.
        const chunks = cut(wire, points).map((chunk) => Buffer.from(chunk));
        const decoder = new FrameDecoder({ dataPieces: true });
        const decoded = chunks.flatMap((chunk) => decoder.push(chunk));
        const received = new Set<ArrayBufferLike>(chunks.map((chunk) => chunk.buffer));
        for (const expected of frames) {
          if (expected.type !== FrameType.DATA || expected.payload.length === 0) {
            const frame = decoded.shift();
            assert.ok(frame, 'a frame is missing');
            assert.deepStrictEqual({ ...frame, payload: Buffer.from(frame.payload) }, { ...expected });
            continue;
          }
          const pieces: Buffer[] = [];
          for (let length = 0; length < expected.payload.length; ) {
            const piece = decoded.shift();
            assert.ok(piece, 'a piece of a DATA frame is missing');
            assert.strictEqual(piece.type, FrameType.DATA);
            assert.strictEqual(piece.streamId, expected.streamId);
            assert.ok(piece.payload.length > 0, 'no empty pieces');
            assert.ok(received.has(piece.payload.buffer), 'a piece is a view of a chunk pushed, not a copy');
            pieces.push(piece.payload);
            length += piece.payload.length;
          }
          assert.deepStrictEqual(Buffer.concat(pieces), expected.payload);
        }
        assert.deepStrictEqual(decoded, [], 'nothing beyond the frames sent');
        assert.strictEqual(decoder.pending, 0);
      }),
      { numRuns: 300 },
    );
  });

  it('with dataPieces, a DATA header that has arrived without its payload still counts as pending', () => {
    const decoder = new FrameDecoder({ dataPieces: true });
    const wire = encodeFrame({ type: FrameType.DATA, streamId: 3, payload: Buffer.from('abcdef') });
    assert.deepStrictEqual(decoder.push(wire.subarray(0, FRAME_HEADER_BYTES + 2)), [{ type: FrameType.DATA, streamId: 3, payload: Buffer.from('ab') }]);
    assert.ok(decoder.pending > 0, 'four bytes of the frame are still to come');
    assert.deepStrictEqual(decoder.push(wire.subarray(FRAME_HEADER_BYTES + 2)), [{ type: FrameType.DATA, streamId: 3, payload: Buffer.from('cdef') }]);
    assert.strictEqual(decoder.pending, 0);
  });

  it('the header is [u32 payload length][u32 stream id][u8 type], big-endian', () => {
    assert.deepStrictEqual([...encodeFrameHeader(FrameType.WINDOW, 0x01020304, 4)], [0, 0, 0, 4, 1, 2, 3, 4, 5]);
    assert.strictEqual(FRAME_HEADER_BYTES, 9);
  });

  it('refuses an oversized frame from its header alone, before buffering its payload', () => {
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32BE(MAX_FRAME_PAYLOAD + 1, 0);
    header.writeUInt32BE(1, 4);
    header.writeUInt8(FrameType.DATA, 8);
    assert.match(decodeError(header).message, /larger than/);
    assert.throws(() => encodeFrameHeader(FrameType.DATA, 1, MAX_FRAME_PAYLOAD + 1), /at most/);
  });

  it('refuses unknown types, control frames off stream 0, stream frames on it, and bad PING sizes', () => {
    assert.match(decodeError(Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 99])).message, /unknown frame type 99/);
    assert.match(decodeError(encodeFrame({ type: FrameType.PING, streamId: 3, payload: Buffer.alloc(8) })).message, /belongs on stream 0/);
    assert.match(decodeError(encodeFrame({ type: FrameType.DATA, streamId: 0, payload: Buffer.from('x') })).message, /other than 0/);
    assert.match(decodeError(encodeFrame({ type: FrameType.PONG, streamId: 0, payload: Buffer.alloc(3) })).message, /carries 8 bytes/);
    assert.match(decodeError(Buffer.from([0, 0, 0, 0, 0x80, 0, 0, 1, FrameType.OPEN])).message, /out of range/);
  });

  it('RESET carries a code and a reason; WINDOW a positive increment', () => {
    assert.deepStrictEqual(decodeReset(encodeReset(ResetCode.FLOW_CONTROL, 'too much, ünïcode')), { code: ResetCode.FLOW_CONTROL, reason: 'too much, ünïcode' });
    assert.throws(() => decodeReset(Buffer.alloc(1)), /2-byte code/);
    assert.strictEqual(decodeWindow(encodeWindow(65_536)), 65_536);
    assert.throws(() => decodeWindow(encodeWindow(0)), /at least one byte/);
    assert.throws(() => decodeWindow(Buffer.alloc(3)), /carries 4 bytes/);
  });
});
