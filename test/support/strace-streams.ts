import { FrameDecoder, FrameType, MUX_PREFACE } from '../../server/protocol';
import type { Call } from './strace-parse';

/**
 * A multiplexed connection (PROTOCOL.md) carries many requests on one socket, as
 * frames: this splits each such socket's reads and writes into one conversation per
 * stream, so rules written for a connection per request read them the same way. Each
 * DATA frame becomes a call of its own carrying its payload, dated by the call its
 * bytes came in: for a write, the call that began the frame (a message counts as sent
 * from its first byte); for a read, the call that completed it (it counts as read only
 * once whole). Sockets that never carried the preface pass through unchanged.
 */
export function demultiplex(bySocket: Map<string, Call[]>, isWrite: (call: Call) => boolean): { conversations: Map<string, Call[]>; unreadable: Call[] } {
  const conversations = new Map<string, Call[]>();
  const unreadable: Call[] = [];
  for (const [socket, calls] of bySocket) {
    if (!calls.some((call) => call.data?.startsWith(PREFACE_LINE))) {
      conversations.set(socket, calls);
      continue;
    }
    const directions = { write: new Direction(), read: new Direction() };
    for (const call of calls) {
      const direction = isWrite(call) ? directions.write : directions.read;
      if (call.truncated) {
        unreadable.push(call);
        break;
      }
      for (const { streamId, payload, startedIn } of direction.push(call, call.data!)) {
        const key = `${socket}#${streamId}`;
        const dated = isWrite(call) ? startedIn : call;
        conversations.set(key, [...(conversations.get(key) ?? []), { ...dated, data: payload }]);
      }
    }
  }
  return { conversations, unreadable };
}

const PREFACE_LINE = MUX_PREFACE + '\n';

/** One direction of a socket: lines (the handshake, the preface), then frames from the byte after the preface. */
class Direction {
  private readonly decoder = new FrameDecoder();
  private framing = false;
  /** The call each byte not yet decoded came in, oldest first: the frame's first byte is at the head. */
  private readonly origins: { call: Call; bytes: number }[] = [];

  push(call: Call, data: string): { streamId: number; payload: string; startedIn: Call }[] {
    if (!this.framing) {
      // The handshake's lines are no request: only what follows the preface is framed.
      if (!data.startsWith(PREFACE_LINE)) {
        return [];
      }
      this.framing = true;
      data = data.slice(PREFACE_LINE.length);
    }
    const bytes = Buffer.from(data, 'latin1');
    if (bytes.length === 0) {
      return [];
    }
    this.origins.push({ call, bytes: bytes.length });
    const out: { streamId: number; payload: string; startedIn: Call }[] = [];
    for (const frame of this.decoder.push(bytes)) {
      const startedIn = this.origins[0].call;
      this.consume(9 + frame.payload.length);
      if (frame.type === FrameType.DATA) {
        out.push({ streamId: frame.streamId, payload: frame.payload.toString('latin1'), startedIn });
      }
    }
    return out;
  }

  private consume(size: number): void {
    let left = size;
    while (left > 0) {
      const head = this.origins[0];
      const taken = Math.min(head.bytes, left);
      head.bytes -= taken;
      left -= taken;
      if (head.bytes === 0) {
        this.origins.shift();
      }
    }
  }
}
