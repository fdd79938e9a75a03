/**
 * The minimal store's framing (minimal-server.ts), shared by its server process and
 * its clients in the bench: a request is a 8-byte header (client id length u16, name
 * length u16, body length u32, big-endian), the client id, the name, the body; the
 * answer is one byte. A connection carries one request at a time.
 */
import * as net from 'net';

export const REPLY_STORED = Buffer.from([1]);
export const REPLY_FAILED = Buffer.from([0]);
const HEADER = 8;
const MAX_BODY = 64 * 1024 * 1024;

export interface Frame {
  client: string;
  name: string;
  body: Buffer;
}

export function encodeFrame(client: string, name: string, body: Buffer): Buffer {
  const clientBytes = Buffer.from(client);
  const nameBytes = Buffer.from(name);
  const header = Buffer.alloc(HEADER);
  header.writeUInt16BE(clientBytes.length, 0);
  header.writeUInt16BE(nameBytes.length, 2);
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, clientBytes, nameBytes, body]);
}

/** One path component of letters, digits, '.', '_' and '-', not "." or "..". */
export function validName(name: string): boolean {
  return /^[\w.-]{1,200}$/.test(name) && name !== '.' && name !== '..';
}

/** Cuts a byte stream into frames, handing each to `onFrame` as soon as it is whole. */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (frame: Frame) => void) {}

  push(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    for (;;) {
      if (this.buffered.length < HEADER) {
        return;
      }
      const clientLength = this.buffered.readUInt16BE(0);
      const nameLength = this.buffered.readUInt16BE(2);
      const bodyLength = this.buffered.readUInt32BE(4);
      if (bodyLength > MAX_BODY) {
        throw new Error(`a body of ${bodyLength} bytes is over the ${MAX_BODY}-byte limit`);
      }
      const end = HEADER + clientLength + nameLength + bodyLength;
      if (this.buffered.length < end) {
        return;
      }
      const client = this.buffered.toString('utf8', HEADER, HEADER + clientLength);
      const name = this.buffered.toString('utf8', HEADER + clientLength, HEADER + clientLength + nameLength);
      // A copy: the rest of the buffer may be reused for the next frame.
      const body = Buffer.from(this.buffered.subarray(HEADER + clientLength + nameLength, end));
      this.buffered = this.buffered.subarray(end);
      this.onFrame({ client, name, body });
    }
  }
}

/** One client of the minimal store: one connection, one request at a time. */
export class MinimalClient {
  private constructor(
    private readonly socket: net.Socket,
    private readonly client: string,
  ) {}

  static connect(port: number, client: string): Promise<MinimalClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      socket.once('connect', () => {
        socket.off('error', reject);
        socket.on('error', () => undefined);
        resolve(new MinimalClient(socket, client));
      });
      socket.once('error', reject);
    });
  }

  upload(name: string, body: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const onData = (answer: Buffer): void => {
        cleanup();
        if (answer.length === 1 && answer[0] === REPLY_STORED[0]) {
          resolve();
        } else {
          reject(new Error(`the minimal server did not store ${name} (answer ${answer.toString('hex')})`));
        }
      };
      const onClose = (): void => {
        cleanup();
        reject(new Error(`the minimal server closed the connection before storing ${name}`));
      };
      const cleanup = (): void => {
        this.socket.off('data', onData);
        this.socket.off('close', onClose);
      };
      this.socket.once('data', onData);
      this.socket.once('close', onClose);
      this.socket.write(encodeFrame(this.client, name, body));
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
