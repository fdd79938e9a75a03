import { once } from 'events';
import * as net from 'net';

/**
 * A TCP relay in front of a server, which a test can cut like a pulled cable: from
 * cut() on, bytes in either direction are dropped and new connections are accepted
 * and then left silent, so the far side sees no error, only silence (the way a
 * keep-alive can look alive across a cut network), until restore().
 */
export class TcpRelay {
  private readonly server: net.Server;
  private readonly pairs = new Set<{ client: net.Socket; upstream?: net.Socket }>();
  private cutOff = false;

  private constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    this.server = net.createServer((client) => this.accept(client));
  }

  /** A relay to `url`'s host and port; `url()` is its own URL, same scheme. */
  static async to(url: string): Promise<TcpRelay & { url(): string }> {
    const target = new URL(url);
    const relay = new TcpRelay(target.hostname, Number(target.port));
    relay.server.listen(0, '127.0.0.1');
    await once(relay.server, 'listening');
    const port = (relay.server.address() as net.AddressInfo).port;
    return Object.assign(relay, { url: () => `${target.protocol}//127.0.0.1:${port}` });
  }

  cut(): void {
    this.cutOff = true;
  }

  /** Reconnects: connections held silent while cut are dropped, new ones pass again. */
  restore(): void {
    this.cutOff = false;
    for (const pair of this.pairs) {
      if (!pair.upstream) {
        pair.client.destroy();
      }
    }
  }

  close(): void {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    this.server.close();
  }

  private accept(client: net.Socket): void {
    client.on('error', () => undefined);
    const pair: { client: net.Socket; upstream?: net.Socket } = { client };
    this.pairs.add(pair);
    client.once('close', () => {
      this.pairs.delete(pair);
      pair.upstream?.destroy();
    });
    if (this.cutOff) {
      client.on('data', () => undefined);
      return;
    }
    const upstream = net.connect(this.port, this.host);
    pair.upstream = upstream;
    upstream.on('error', () => client.destroy());
    upstream.once('close', () => client.destroy());
    client.on('data', (chunk) => {
      if (!this.cutOff) {
        upstream.write(chunk);
      }
    });
    upstream.on('data', (chunk) => {
      if (!this.cutOff) {
        client.write(chunk);
      }
    });
    client.once('end', () => upstream.end());
    upstream.once('end', () => client.end());
  }
}
