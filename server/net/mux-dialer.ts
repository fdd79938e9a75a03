import { DfsError, MUX_PREFACE, parseReply, replyError } from '../protocol';
import { Connection } from './connection';
import { refuseIfChallenged } from './handshake';
import { MuxSession } from './multiplexer';
import { ConnectOptions, RetryPolicy, connectWithRetry } from './tcp';

/** How long a peer that did not know the preface is served a connection per request before it is asked again (it may have been upgraded). */
const ASK_AGAIN_MS = 60_000;

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
  ) {}

  /** True while requests run over a multiplexed connection (or will, once one is open). */
  get multiplexing(): boolean {
    return Date.now() >= this.singleUntilMs;
  }

  /** A connection for one request: a new stream, or a new TCP connection where the peer cannot multiplex. */
  async open(retry: RetryPolicy): Promise<Connection> {
    if (this.closed) {
      throw new DfsError('CANCELLED', `the connection to ${this.peer} is closed: this node is stopping`);
    }
    if (!this.multiplexing) {
      return connectWithRetry(this.target, retry);
    }
    // A connection lost between being found and being used is opened again once.
    for (let attempt = 1; ; attempt++) {
      const session = await this.current(retry);
      if (!session) {
        return connectWithRetry(this.target, retry);
      }
      try {
        return new Connection(session.openStream(), this.target.timeouts);
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

  private async openSession(retry: RetryPolicy): Promise<MuxSession | undefined> {
    const conn = await connectWithRetry(this.target, retry);
    try {
      await conn.writeLine(MUX_PREFACE);
      const answer = refuseIfChallenged(await conn.readLine(conn.timeouts.headerMs));
      if (answer !== MUX_PREFACE) {
        const reply = parseReply(answer);
        if (reply.code === 'UNKNOWN_VERB' || reply.code === 'BAD_HEADER') {
          // A peer from before multiplexing: it refused the preface as a verb it does not know.
          this.singleUntilMs = Date.now() + ASK_AGAIN_MS;
          conn.destroy();
          return undefined;
        }
        throw reply.code ? replyError(reply) : new DfsError('PROTOCOL', `${this.peer} answered the multiplexing preface with ${JSON.stringify(answer.slice(0, 60))}`);
      }
    } catch (error) {
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
