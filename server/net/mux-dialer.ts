import { DfsError, ErrorCode, MUX_PREFACE, parseReply, replyError } from '../protocol';
import { Connection, ConnectionTimeouts } from './connection';
import { refuseIfChallenged } from './handshake';
import { MuxSession } from './multiplexer';
import { ConnectOptions, RetryPolicy, connectWithRetry } from './tcp';

/** How long a peer that did not know the preface is served a connection per request before it is asked again (it may have been upgraded). */
const ASK_AGAIN_MS = 60_000;
/** Refusals of the preface that are news about the peer (it is full, wants other credentials, knows no leader), not a sign it cannot multiplex. */
const REFUSALS: readonly ErrorCode[] = ['LIMIT', 'AUTH', 'FORBIDDEN', 'UNREACHABLE', 'TIMEOUT'];

export interface DialerOptions {
  /** A client's dialer: the connection keeps the process alive only while a request runs on it, and closes after this long idle. */
  closeWhenIdleMs?: number;
}

export interface OpenOptions {
  /** Timeouts of this request's connection; the dialer's own by default. */
  timeouts?: ConnectionTimeouts;
  /** Abandons this request (its stream, or its own connection): never the shared connection. */
  signal?: AbortSignal;
}

/**
 * Connections to one peer, as many as wanted, over one physical connection: opened
 * lazily (handshake, then the preface), shared by every request, opened again after it
 * is lost. A peer that does not know the preface gets a connection per request, as
 * before multiplexing.
 */
export class MuxDialer {
  private session: MuxSession | undefined;
  private opening: Promise<MuxSession | undefined> | undefined;
  private singleUntilMs = 0;
  private closed = false;
  /** Physical connections opened for multiplexing since this dialer was made (for tests and figures). */
  sessionsOpened = 0;

  constructor(
    private readonly target: ConnectOptions,
    /** Who the peer is, in messages. */
    private readonly peer: string,
    private readonly dialerOptions: DialerOptions = {},
  ) {}

  /** True while requests run over a multiplexed connection (or will, once one is open). */
  get multiplexing(): boolean {
    return Date.now() >= this.singleUntilMs;
  }

  /** A connection for one request: a new stream, or a new TCP connection where the peer cannot multiplex. */
  async open(retry: RetryPolicy, options: OpenOptions = {}): Promise<Connection> {
    if (this.closed) {
      throw new DfsError('CANCELLED', `the connection to ${this.peer} is closed: this node is stopping`);
    }
    const single = (): Promise<Connection> => connectWithRetry({ ...this.target, timeouts: options.timeouts ?? this.target.timeouts, signal: options.signal }, retry);
    if (!this.multiplexing) {
      return single();
    }
    // A connection lost between being found and being used is opened again once.
    for (let attempt = 1; ; attempt++) {
      const session = await abandonable(this.current(retry), options.signal);
      if (!session) {
        return single();
      }
      try {
        const stream = session.openStream();
        const conn = new Connection(stream, options.timeouts ?? this.target.timeouts);
        cancelWith(conn, options.signal);
        return conn;
      } catch (error) {
        if (this.session === session) {
          this.session = undefined;
        }
        session.close();
        if (attempt >= 2) {
          throw error;
        }
      }
    }
  }

  /** Closes the physical connection: every request on it fails as if its connection broke. */
  close(): void {
    this.closed = true;
    this.session?.close('this node is stopping');
    this.session = undefined;
  }

  private current(retry: RetryPolicy): Promise<MuxSession | undefined> {
    if (this.session?.alive) {
      return Promise.resolve(this.session);
    }
    if (!this.opening) {
      const opening = this.openSession(retry);
      this.opening = opening;
      // Every waiter sees the outcome; the next request after a failure tries afresh.
      opening.then(
        () => (this.opening = undefined),
        () => (this.opening = undefined),
      );
    }
    return this.opening;
  }

  private servedSingly(conn: Connection): undefined {
    this.singleUntilMs = Date.now() + ASK_AGAIN_MS;
    conn.destroy();
    return undefined;
  }

  private async openSession(retry: RetryPolicy): Promise<MuxSession | undefined> {
    const conn = await connectWithRetry(this.target, retry);
    try {
      await conn.writeLine(MUX_PREFACE);
      const answer = refuseIfChallenged(await conn.readLine(conn.timeouts.headerMs));
      if (answer !== MUX_PREFACE) {
        const reply = parseReply(answer);
        if (reply.code && REFUSALS.includes(reply.code)) {
          throw replyError(reply);
        }
        // A peer from before multiplexing refuses the preface as a verb it does not know
        // (one of the report's kind may answer anything): a connection per request, then.
        return this.servedSingly(conn);
      }
    } catch (error) {
      if (error instanceof DfsError && error.code === 'PROTOCOL' && /^connection closed by the peer/.test(error.message)) {
        // Closed on the preface without a word: a server that knows nothing of it.
        return this.servedSingly(conn);
      }
      conn.destroy();
      throw error;
    }
    if (this.closed) {
      conn.destroy();
      throw new DfsError('CANCELLED', `the connection to ${this.peer} is closed: this node is stopping`);
    }
    const session = new MuxSession(conn.stream, {
      role: 'initiator',
      idleMs: conn.timeouts.idleMs,
      initialBytes: conn.detach(),
      peer: this.peer,
      closeWhenIdleMs: this.dialerOptions.closeWhenIdleMs,
    });
    this.sessionsOpened++;
    this.session = session;
    void session.closed.then(() => {
      if (this.session === session) {
        this.session = undefined;
      }
    });
    return session;
  }
}

/** Resolves as `promise` does, or rejects with CANCELLED once `signal` aborts (the promise runs on for whoever else waits on it). */
function abandonable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) {
    return promise;
  }
  if (signal.aborted) {
    return Promise.reject(new DfsError('CANCELLED', 'cancelled'));
  }
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(new DfsError('CANCELLED', 'cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Aborting `signal` destroys this one connection (a stream: RESET CANCEL), as it would a connection of its own. */
function cancelWith(conn: Connection, signal: AbortSignal | undefined): void {
  if (!signal) {
    return;
  }
  const abort = (): void => conn.destroy(new DfsError('CANCELLED', 'cancelled'));
  if (signal.aborted) {
    abort();
    return;
  }
  signal.addEventListener('abort', abort, { once: true });
  conn.stream.once('close', () => signal.removeEventListener('abort', abort));
}
