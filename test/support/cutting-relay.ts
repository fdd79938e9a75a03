import { once } from 'events';
import * as net from 'net';
import { MUX_PREFACE } from '../../server/protocol';

/**
 * Where a relay between a client and a real primary cuts the first connection (an
 * upload), both ways, as a primary dying at that moment would:
 * - after-the-answer: the primary answered after the body, and the client never sees it;
 * - before-the-last-byte: all but the body's last byte reach the primary, which can then never commit;
 * - after-bytes: the first `bytes` bytes from the client reach the primary, then nothing.
 */
export type Cut = { at: 'after-the-answer' } | { at: 'before-the-last-byte'; bodySize: number } | { at: 'after-bytes'; bytes: number };

export interface CuttingRelayOptions {
  cut: Cut;
  /** After the cut: `refuse` stops listening (the primary is gone), `hold` keeps later connections unread until release(). */
  afterCut: 'refuse' | 'hold';
}

export class CuttingRelay {
  /** Resolves once the first connection has been cut. */
  readonly cut: Promise<void>;
  private readonly server: net.Server;
  private markCut!: () => void;
  private connections = 0;
  private released = false;
  private readonly waiting: (() => void)[] = [];
  port = 0;

  private constructor(
    private readonly primaryPort: number,
    private readonly options: CuttingRelayOptions,
  ) {
    this.cut = new Promise((resolve) => (this.markCut = resolve));
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(primaryPort: number, options: CuttingRelayOptions): Promise<CuttingRelay> {
    const relay = new CuttingRelay(primaryPort, options);
    relay.server.listen(0, '127.0.0.1');
    await once(relay.server, 'listening');
    relay.port = (relay.server.address() as net.AddressInfo).port;
    return relay;
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
    // The cuts are placed by reading the report's framing, one request per connection: the
    // relay answers a client's multiplexing preface as a server from before it would, so
    // the client falls back to a connection per request (and that path is exercised too).
    client.once('data', (first: Buffer) => {
      client.pause();
      if (first.toString('latin1').startsWith(`${MUX_PREFACE}\n`)) {
        client.end('ERROR UNKNOWN_VERB MUX is not a verb this server knows\n');
        return;
      }
      client.unshift(first);
      this.relay(client);
    });
  }

  private relay(client: net.Socket): void {
    if (this.connections++ === 0) {
      this.cutFirst(client);
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

  private cutFirst(client: net.Socket): void {
    const primary = net.connect(this.primaryPort, '127.0.0.1');
    primary.on('error', () => client.destroy());
    const cutNow = (): void => {
      if (this.options.afterCut === 'refuse') {
        this.server.close();
      }
      client.destroy();
      primary.destroy();
      this.markCut();
    };
    const cut = this.options.cut;
    let fromClient = 0;
    let header = '';
    client.on('data', (chunk: Buffer) => {
      if (cut.at === 'after-bytes') {
        const room = Math.max(0, cut.bytes - fromClient);
        fromClient += chunk.length;
        if (fromClient < cut.bytes) {
          primary.write(chunk);
        } else {
          primary.write(chunk.subarray(0, room), cutNow);
        }
        return;
      }
      if (cut.at === 'before-the-last-byte') {
        if (!header.includes('\n')) {
          header += chunk.toString('latin1');
        }
        const headerEnd = header.indexOf('\n') + 1;
        fromClient += chunk.length;
        if (headerEnd > 0 && fromClient === headerEnd + cut.bodySize) {
          primary.write(chunk.subarray(0, chunk.length - 1), cutNow);
          return;
        }
      }
      primary.write(chunk);
    });
    let answered = false;
    primary.on('data', (chunk: Buffer) => {
      // SEND_FILE reaches the client; with after-the-answer, what follows the body does not.
      if (cut.at !== 'after-the-answer' || !answered) {
        const end = chunk.indexOf('\n');
        client.write(cut.at === 'after-the-answer' && end >= 0 ? chunk.subarray(0, end + 1) : chunk);
        answered = end >= 0;
        if (cut.at === 'after-the-answer' && end >= 0 && end + 1 < chunk.length) {
          cutNow();
        }
        return;
      }
      cutNow();
    });
    // Paused while its first bytes were looked at: a 'data' listener alone does not resume it.
    client.resume();
  }
}
