import * as net from 'net';
import * as tls from 'tls';
import type { Duplex } from 'stream';
import { Connection, ConnectionTimeouts } from '../net/connection';
import { MuxSession, MuxStream } from '../net/multiplexer';
import type { Security } from '../net/security';
import { Handlers, serveStream } from '../net/session';
import { DfsError, Principal, formatFailure } from '../protocol';
import { connectionsAllowed, openDescriptors, openFilesSoftLimit } from '../config/descriptor-limit';
import { BurstLog } from './burst-log';

/** How long a refused connection may linger for its LIMIT answer to be read before it is cut. */
const REFUSAL_GRACE_MS = 2_000;

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
  /** Connections beyond this get a LIMIT failure and are closed at once; a multiplexed connection's streams count as connections. */
  maxConnections?: number;
  /** Peers holding the cluster secret may run many requests over one connection (MUX_PREFACE). */
  multiplex?: boolean;
}

/** Accepts TCP connections and serves each one concurrently, one request per connection or per stream of a multiplexed one. */
export class NodeServer {
  private readonly server: net.Server | tls.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Refused at the limit, waiting for the peer to read LIMIT and close. */
  private readonly refused = new Set<net.Socket>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Streams open on multiplexed connections: each counts against the connection limit. */
  private streams = 0;
  private readonly sessions = new Set<MuxSession>();
  /** Physical connections served since the start, and how many of them were multiplexed (STATUS shows both). */
  private accepted = 0;
  private multiplexed = 0;
  private readonly refusals: BurstLog;
  private readonly acceptFailures: BurstLog;
  /** The open-file limit, and the connection count past which descriptors can run out. */
  private readonly openFilesLimit = openFilesSoftLimit();
  private readonly watchDescriptorsFrom: number;

  constructor(
    private readonly handlers: Handlers,
    private readonly options: NodeServerOptions,
  ) {
    this.watchDescriptorsFrom = this.openFilesLimit === undefined ? Infinity : connectionsAllowed(this.openFilesLimit);
    this.refusals = new BurstLog(options.log, (count, windowMs) => `refused ${count} more connections over ${windowMs / 1000} s at the limit of ${options.maxConnections} (--max-connections)`);
    this.acceptFailures = new BurstLog(
      options.log,
      (count, windowMs) => `${count} more connections were accepted at the open-file limit over ${windowMs / 1000} s: this process is still out of file descriptors`,
    );
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

  /** Connections served since the start (a multiplexed one counts once, whatever it carried), and open multiplexed ones. */
  get connections(): { accepted: number; multiplexed: number; multiplexedOpen: number } {
    return { accepted: this.accepted, multiplexed: this.multiplexed, multiplexedOpen: this.sessions.size };
  }

  /** Serves a stream that did not come from our listener (tests, in-process pipes, a standby's forwarded connection). */
  handle(stream: Duplex, proved?: Principal): Promise<void> {
    if (!proved) {
      this.accepted++;
    }
    const served = serveStream(
      stream,
      this.handlers,
      {
        timeouts: this.options.timeouts,
        maxFileSize: this.options.maxFileSize,
        log: this.options.log,
        role: this.options.role,
        secret: this.options.security?.secret,
        node: this.options.node,
        isRevoked: this.options.isRevoked,
        multiplex: this.options.multiplex ? (conn, principal) => this.serveMultiplexed(conn, principal) : undefined,
      },
      proved,
    );
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
        this.server.on('error', (error: NodeJS.ErrnoException) => this.onListenerError(error));
        const address = this.server.address() as net.AddressInfo;
        const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        this.options.log(`listening on ${host}:${address.port}`);
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions) {
      session.close('the server is stopping');
    }
    for (const socket of [...this.sockets, ...this.refused]) {
      socket.destroy();
    }
    this.refusals.stop();
    this.acceptFailures.stop();
    await Promise.allSettled([...this.inFlight]);
    await closed;
  }

  /** Connections and streams being served: what the connection limit bounds. */
  private get serving(): number {
    return this.sockets.size + this.streams;
  }

  /** Takes over a connection whose peer sent the preface: each stream it opens is served as a connection of its own. */
  private async serveMultiplexed(conn: Connection, principal: Principal): Promise<void> {
    const socket = conn.stream as Duplex & { remoteAddress?: string; remotePort?: number };
    const session = new MuxSession(conn.stream, {
      role: 'acceptor',
      idleMs: this.options.timeouts.idleMs,
      initialBytes: conn.detach(),
      peer: socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'an in-process peer',
      onStream: (stream) => this.acceptStream(stream, principal),
    });
    this.sessions.add(session);
    this.multiplexed++;
    await session.closed;
    this.sessions.delete(session);
  }

  private acceptStream(stream: MuxStream, principal: Principal): void {
    stream.on('error', () => undefined);
    const limit = this.options.maxConnections;
    if (limit !== undefined && this.serving >= limit) {
      // Answered as a refused connection is, on the stream itself: the request it carries is never read.
      this.noteRefusal(limit);
      stream.on('data', () => undefined);
      stream.end(formatFailure('ERROR', this.limitError(limit)) + '\n');
      return;
    }
    this.streams++;
    stream.once('close', () => this.streams--);
    void this.handle(stream, principal);
  }

  private accept(socket: net.Socket): void {
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    const limit = this.options.maxConnections;
    if (limit !== undefined && this.serving >= limit) {
      this.refuse(socket, limit);
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    if (this.sockets.size > this.watchDescriptorsFrom) {
      this.checkDescriptors();
    }
    void this.handle(socket);
  }

  /**
   * Out of descriptors, libuv drains the kernel's queue by accepting and closing at
   * once, and tells nobody: those peers see a close with no answer. Only a limit above
   * what the open-file limit allows gets here, so the count is read only then.
   */
  private checkDescriptors(): void {
    const open = openDescriptors();
    if (open !== undefined && this.openFilesLimit !== undefined && open >= this.openFilesLimit - 1) {
      this.noteOutOfDescriptors(`the open-file limit of ${this.openFilesLimit} is reached`);
    }
  }

  private noteOutOfDescriptors(detail: string): void {
    this.acceptFailures.note(
      () =>
        `cannot accept connections: this process is out of file descriptors (${detail}) while serving ${this.sockets.size} connections; new connections are closed unanswered until some end. Lower --max-connections or raise the open-file limit (ulimit -n)`,
    );
  }

  /**
   * Answers LIMIT and closes. What the peer sent is read and dropped (closing on unread
   * bytes would reset the connection and could lose the answer), and the socket is cut
   * soon after, so refused connections cannot pile up. In a burst, libuv accepts every
   * queued connection in one go, before any peer could read its answer and close: past
   * half the limit of refusals waiting at once, a refused connection is closed as soon as
   * its answer is handed to the kernel, so the refusals never use up the descriptors the
   * limit keeps free (a peer that had already sent its request may then see a reset).
   */
  private refuse(socket: net.Socket, limit: number): void {
    const error = this.limitError(limit);
    this.noteRefusal(limit);
    if (this.refused.size >= Math.max(8, Math.floor(limit / 2))) {
      socket.end(formatFailure('ERROR', error) + '\n');
      socket.destroy();
      return;
    }
    this.refused.add(socket);
    socket.once('close', () => this.refused.delete(socket));
    socket.on('data', () => undefined);
    socket.end(formatFailure('ERROR', error) + '\n');
    socket.setTimeout(Math.min(this.options.timeouts.headerMs, REFUSAL_GRACE_MS), () => socket.destroy());
  }

  private limitError(limit: number): DfsError {
    return new DfsError('LIMIT', `the ${this.options.role} is serving its limit of ${limit} connections; try again shortly`);
  }

  private noteRefusal(limit: number): void {
    this.refusals.note(
      () =>
        `refusing connections with LIMIT: serving the limit of ${limit} (--max-connections); if this is the normal load, raise it (and the open-file limit, ulimit -n)`,
    );
  }

  /** Accept failures leave the listener open: said once per burst, with what to change. */
  private onListenerError(error: NodeJS.ErrnoException): void {
    if (error.code === 'EMFILE' || error.code === 'ENFILE') {
      this.noteOutOfDescriptors(error.code);
      return;
    }
    this.options.log(`listener error: ${error.message}`);
  }
}
