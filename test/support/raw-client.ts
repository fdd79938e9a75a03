import * as net from 'net';
import { Credential, formatResponse, newNonce, parseChallenge, proofKey, verifyServerProof } from '../../server/protocol';

/**
 * A client socket driven byte by byte, the way a client written against the report
 * (or a hostile one) talks: every read is one `recv`.
 */
export class RawClient {
  private readonly chunks: Buffer[] = [];
  private waiter: (() => void) | undefined;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      this.chunks.push(chunk);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** Connects and authenticates with a key (or the secret), the way our client does, then hands over the raw socket. */
  static async connectAs(port: number, credential: Credential, host = '127.0.0.1'): Promise<RawClient> {
    const client = await RawClient.connect(port, host);
    const challenge = await client.recvLine();
    const serverNonce = parseChallenge(challenge);
    const clientNonce = newNonce();
    await client.send(formatResponse(credential, serverNonce, clientNonce) + '\n');
    const answer = await client.recvLine();
    verifyServerProof(proofKey(credential), serverNonce, clientNonce, answer);
    return client;
  }

  /** One line (without its newline), however the bytes arrive. */
  async recvLine(timeoutMs = 10_000): Promise<string> {
    await this.until(() => Buffer.concat(this.chunks).includes(0x0a) || this.closed, timeoutMs);
    const all = Buffer.concat(this.chunks.splice(0));
    const newline = all.indexOf(0x0a);
    if (newline === -1) {
      return all.toString('utf8');
    }
    if (newline + 1 < all.length) {
      this.chunks.push(all.subarray(newline + 1));
    }
    return all.subarray(0, newline).toString('utf8');
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host }, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  send(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (error) => (error ? reject(error) : resolve())));
  }

  /** One recv: whatever has arrived, waiting for at least one byte (or the close). */
  async recv(timeoutMs = 10_000): Promise<string> {
    await this.until(() => this.chunks.length > 0 || this.closed, timeoutMs);
    const data = Buffer.concat(this.chunks.splice(0)).toString('utf8');
    return data;
  }

  /** Everything until the server closes the connection. */
  async readToClose(timeoutMs = 10_000): Promise<string> {
    await this.until(() => this.closed, timeoutMs);
    return Buffer.concat(this.chunks.splice(0)).toString('utf8');
  }

  destroy(): void {
    this.socket.destroy();
  }

  private async until(condition: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new Error(`no reply within ${timeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}

/** The report's UPLOAD, exactly as its client does it: header with no newline, wait, bytes, wait. */
export async function seedUpload(port: number, clientId: string, name: string, body: Buffer): Promise<{ first: string; final: string }> {
  const client = await RawClient.connect(port);
  try {
    await client.send(`UPLOAD ${clientId} ${name} ${body.length}`);
    const first = await client.recv();
    if (first !== 'SEND_FILE') {
      return { first, final: '' };
    }
    await client.send(body);
    return { first, final: await client.readToClose() };
  } finally {
    client.destroy();
  }
}

export async function seedList(port: number, clientId: string): Promise<string> {
  const client = await RawClient.connect(port);
  try {
    await client.send(`LIST ${clientId}`);
    return await client.readToClose();
  } finally {
    client.destroy();
  }
}
