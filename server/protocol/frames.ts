import { DfsError } from './errors';

/**
 * Our peers' framing once a connection is multiplexed (PROTOCOL.md, "Multiplexed peer
 * connections"): every frame is `[u32 payload length][u32 stream id][u8 type][payload]`,
 * big-endian. The report's framing never uses it: only a peer that sent the preface
 * and got it back speaks frames.
 */

/** The line a peer sends after the handshake to switch the connection to frames; the server echoes it to accept. */
export const MUX_PREFACE = 'MUX 1';

export const FRAME_HEADER_BYTES = 9;
/** No frame carries more; a sender splits bigger writes. */
export const MAX_FRAME_PAYLOAD = 256 * 1024;
/** The credit each side of a stream starts with: bytes of DATA it may send before the receiver grants more. */
export const INITIAL_STREAM_WINDOW = 1024 * 1024;
/** Stream ids are u31 as in HTTP/2, so the parity rule (initiator odd, acceptor even) leaves room. */
export const MAX_STREAM_ID = 0x7fff_ffff;

export enum FrameType {
  /** A new stream; the id is the sender's (odd from the side that opened the connection, even from the other). */
  OPEN = 1,
  DATA = 2,
  /** The sender will send nothing more on this stream: a clean half-close. */
  END = 3,
  /** The stream is abandoned in both directions: `[u16 code][utf-8 reason]`. */
  RESET = 4,
  /** `[u32 increment]`: the receiver took that many more bytes of DATA off this stream. */
  WINDOW = 5,
  /** Stream 0, 8 opaque bytes: is the peer alive? */
  PING = 6,
  /** Stream 0, the PING's 8 bytes back. */
  PONG = 7,
}

export enum ResetCode {
  /** The sender gave up on the stream (its request failed or was abandoned). */
  CANCEL = 1,
  /** A frame on this stream broke the rules (DATA after END, an unknown stream). */
  PROTOCOL = 2,
  /** DATA beyond the credit granted. */
  FLOW_CONTROL = 3,
  /** The receiver will not serve another stream now (too many open at once). */
  REFUSED = 4,
  /** The physical connection under the stream was lost or closed. */
  CONNECTION_LOST = 5,
}

export interface Frame {
  type: FrameType;
  streamId: number;
  payload: Buffer;
}

const TYPES = new Set<number>(Object.values(FrameType).filter((value): value is number => typeof value === 'number'));

export function encodeFrameHeader(type: FrameType, streamId: number, payloadLength: number): Buffer {
  if (payloadLength > MAX_FRAME_PAYLOAD) {
    throw new DfsError('PROTOCOL', `a frame carries at most ${MAX_FRAME_PAYLOAD} bytes, not ${payloadLength}`);
  }
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(payloadLength, 0);
  header.writeUInt32BE(streamId, 4);
  header.writeUInt8(type, 8);
  return header;
}

export function encodeFrame(frame: Frame): Buffer {
  return Buffer.concat([encodeFrameHeader(frame.type, frame.streamId, frame.payload.length), frame.payload]);
}

export function encodeReset(code: ResetCode, reason: string): Buffer {
  const text = Buffer.from(reason.slice(0, 1000), 'utf8');
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return payload;
}

export function decodeReset(payload: Buffer): { code: ResetCode; reason: string } {
  if (payload.length < 2) {
    throw new DfsError('PROTOCOL', 'a RESET frame needs a 2-byte code');
  }
  return { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString('utf8') };
}

export function encodeWindow(increment: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(increment, 0);
  return payload;
}

export function decodeWindow(payload: Buffer): number {
  if (payload.length !== 4) {
    throw new DfsError('PROTOCOL', `a WINDOW frame carries 4 bytes, not ${payload.length}`);
  }
  const increment = payload.readUInt32BE(0);
  if (increment === 0) {
    throw new DfsError('PROTOCOL', 'a WINDOW frame grants at least one byte');
  }
  return increment;
}

/**
 * Cuts frames out of bytes that arrive in chunks of any size; never touches a socket.
 * A malformed frame (unknown type, oversized payload, a control frame on the wrong
 * stream) is an error: the connection it came on cannot be trusted further.
 */
export class FrameDecoder {
  private readonly parts: Buffer[] = [];
  private buffered = 0;
  /** With `dataPieces`, the DATA frame whose payload is still arriving: its stream and the bytes to come. */
  private data: { streamId: number; remaining: number } | undefined;

  /**
   * With `dataPieces`, a DATA payload is handed over as it arrives, in pieces that are
   * views of the chunks pushed (a frame then comes out as one or more DATA frames of
   * the same stream, in order). Joining a 256 KiB payload that spans four 64 KiB reads
   * cost a copy of every byte received and a large buffer per frame for the garbage
   * collector, which held tens of MiB of them during a big upload.
   */
  constructor(private readonly options: { dataPieces?: boolean } = {}) {}

  /** Bytes received that do not yet make a whole frame (or, with `dataPieces`, a piece of one). */
  get pending(): number {
    return this.buffered + (this.data ? FRAME_HEADER_BYTES : 0);
  }

  push(chunk: Buffer): Frame[] {
    if (chunk.length > 0) {
      this.parts.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    for (;;) {
      if (this.data) {
        if (this.buffered === 0) {
          break;
        }
        this.takePieces(this.data, frames);
        continue;
      }
      if (this.buffered < FRAME_HEADER_BYTES) {
        break;
      }
      const header = this.peek(FRAME_HEADER_BYTES);
      const length = header.readUInt32BE(0);
      const streamId = header.readUInt32BE(4);
      const type = header.readUInt8(8);
      checkHeader(length, streamId, type);
      if (this.options.dataPieces && type === FrameType.DATA && length > 0) {
        this.skip(FRAME_HEADER_BYTES);
        this.data = { streamId, remaining: length };
        continue;
      }
      if (this.buffered < FRAME_HEADER_BYTES + length) {
        break;
      }
      this.skip(FRAME_HEADER_BYTES);
      frames.push({ type, streamId, payload: this.take(length) });
    }
    return frames;
  }

  /** As much of the current DATA payload as has arrived, one piece per chunk it lies in. */
  private takePieces(data: { streamId: number; remaining: number }, frames: Frame[]): void {
    while (data.remaining > 0 && this.parts.length > 0) {
      const first = this.parts[0];
      const size = Math.min(first.length, data.remaining);
      frames.push({ type: FrameType.DATA, streamId: data.streamId, payload: size === first.length ? first : first.subarray(0, size) });
      this.skip(size);
      data.remaining -= size;
    }
    if (data.remaining === 0) {
      this.data = undefined;
    }
  }

  /** The first `size` bytes without consuming them (size <= buffered); only a header split across chunks is copied. */
  private peek(size: number): Buffer {
    return this.parts[0].length >= size ? this.parts[0].subarray(0, size) : this.copyOut(size);
  }

  /** The first `size` bytes (size <= buffered), copied out of the chunks they span, without consuming them. */
  private copyOut(size: number): Buffer {
    const out = Buffer.allocUnsafe(size);
    let filled = 0;
    for (const part of this.parts) {
      filled += part.copy(out, filled, 0, Math.min(part.length, size - filled));
      if (filled === size) {
        break;
      }
    }
    return out;
  }

  /** Drops the first `size` bytes (size <= buffered). */
  private skip(size: number): void {
    let left = size;
    while (left > 0) {
      const first = this.parts[0];
      if (first.length <= left) {
        left -= first.length;
        this.parts.shift();
      } else {
        this.parts[0] = first.subarray(left);
        left = 0;
      }
    }
    this.buffered -= size;
  }

  /** The first `size` bytes, consumed: a view when they lie in one chunk, else one copy of just them. */
  private take(size: number): Buffer {
    if (size === 0) {
      return Buffer.alloc(0);
    }
    const taken = this.parts[0].length >= size ? this.parts[0].subarray(0, size) : this.copyOut(size);
    this.skip(size);
    return taken;
  }
}

function checkHeader(length: number, streamId: number, type: number): void {
  if (!TYPES.has(type)) {
    throw new DfsError('PROTOCOL', `unknown frame type ${type}`);
  }
  if (length > MAX_FRAME_PAYLOAD) {
    throw new DfsError('PROTOCOL', `a frame of ${length} bytes is larger than the ${MAX_FRAME_PAYLOAD} allowed`);
  }
  if (streamId > MAX_STREAM_ID) {
    throw new DfsError('PROTOCOL', `stream id ${streamId} is out of range`);
  }
  const control = type === FrameType.PING || type === FrameType.PONG;
  if (control !== (streamId === 0)) {
    throw new DfsError('PROTOCOL', control ? `${FrameType[type]} belongs on stream 0, not ${streamId}` : `${FrameType[type]} needs a stream id other than 0`);
  }
  if (control && length !== 8) {
    throw new DfsError('PROTOCOL', `${FrameType[type]} carries 8 bytes, not ${length}`);
  }
}
