import * as net from 'net';
import * as tls from 'tls';
import type { Duplex } from 'stream';
import { ConnectionTimeouts } from '../net/connection';
import type { Security } from '../net/security';
import { Handlers, serveStream } from '../net/session';
import { DfsError, formatFailure } from '../protocol';

export interface NodeServerOptions {
  host: string;
  port: number;
  /** How the node names itself in its log and in refusals ("primary", "replica 2"). */
  role: string;
  timeouts: ConnectionTimeouts;
  maxFileSize: number;
  log: (line: string) => void;
  security?: Security;
  /** Which kind of node this is, for the authorization rules. */
  node: 'primary' | 'replica';
  /** Key ids no longer honoured (with a secret). */
  isRevoked?: (keyId: string) => boolean;
  /** Connections beyond this get a LIMIT failure and are closed at once. */
  maxConnections?: number;
}

/** Accepts TCP connections and serves each one concurrently, one request per connection. */
export class NodeServer {
  private readonly server: net.Server | tls.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly handlers: Handlers,
    private readonly options: NodeServerOptions,
  ) {
    // Half-open sockets let a handler finish its cleanup before the peer sees the close.
    const tlsFiles = options.security?.tls;
    if (tlsFiles?.cert && tlsFiles.key) {
      this.server = tls.createServer({ allowHalfOpen: true, cert: tlsFiles.cert, key: tlsFiles.key, ca: tlsFiles.ca, handshakeTimeout: options.timeouts.headerMs }, (socket) =>
        this.accept(socket),
      );
      this.server.on('tlsClientError', (error) => options.log(`TLS handshake failed: ${error.message}`));
    } else {
      this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    }
  }

  /** Serves a stream that did not come from our listener (tests, in-process pipes). */
  handle(stream: Duplex): Promise<void> {
    const served = serveStream(stream, this.handlers, {
      timeouts: this.options.timeouts,
      maxFileSize: this.options.maxFileSize,
      log: this.options.log,
      role: this.options.role,
      secret: this.options.security?.secret,
      node: this.options.node,
      isRevoked: this.options.isRevoked,
    });
    this.inFlight.add(served);
    void served.finally(() => this.inFlight.delete(served));
    return served;
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        reject(
          error.code === 'EADDRINUSE'
            ? new DfsError('UNREACHABLE', `port ${this.options.port} on ${this.options.host} is already in use; stop whatever uses it or choose another port`)
            : error.code === 'EADDRNOTAVAIL'
              ? new DfsError('UNREACHABLE', `address ${this.options.host} does not belong to this machine; choose another --host`)
              : new DfsError('UNREACHABLE', `cannot listen on ${this.options.host}:${this.options.port}: ${error.message}`),
        );
      };
      this.server.once('error', onError);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', onError);
        this.server.on('error', (error) => this.options.log(`listener error: ${error.message}`));
        const address = this.server.address() as net.AddressInfo;
        const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        this.options.log(`listening on ${host}:${address.port}`);
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) {
      socket.destroy();
    }
    await Promise.allSettled([...this.inFlight]);
    await closed;
  }

  private accept(socket: net.Socket): void {
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    const limit = this.options.maxConnections;
    if (limit !== undefined && this.sockets.size >= limit) {
      const error = new DfsError('LIMIT', `the ${this.options.role} is serving its limit of ${limit} connections; try again shortly`);
      socket.end(formatFailure('ERROR', error) + '\n');
      socket.setTimeout(this.options.timeouts.headerMs, () => socket.destroy());
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    void this.handle(socket);
  }
}
