import type { Duplex } from 'stream';
import { Auth, DfsError, PeerRole, Request, Verb, failureTokenFor, formatFailure, formatSuccess, parseRequest, toDfsError, verbOf } from '../protocol';
import { Connection, ConnectionTimeouts } from './connection';
import { acceptHandshake } from './handshake';

/**
 * One request on one connection. `seed` is true when the header came the report's
 * way (no terminator): then replies are the bare tokens it compares byte for byte.
 */
export class Session {
  constructor(
    readonly conn: Connection,
    readonly request: Request,
    readonly seed: boolean,
    /** The role the peer proved with the cluster secret; undefined on an open cluster. */
    readonly peerRole?: PeerRole,
  ) {}

  async reply(token: string, payload?: unknown): Promise<void> {
    await this.conn.write(this.seed ? token : formatSuccess(token, payload) + '\n');
  }

  async fail(token: string, error: DfsError): Promise<void> {
    await this.conn.write(this.seed ? token : formatFailure(token, error) + '\n');
  }
}

/** The report's verbs: the only ones whose header may end at a pause instead of a newline. */
const SEED_VERBS: readonly string[] = ['UPLOAD', 'LIST', 'REPLICA'];

export type Handler = (session: Session) => Promise<void>;
export type Handlers = Partial<Record<Verb, Handler>>;

export interface ServeOptions {
  timeouts: ConnectionTimeouts;
  maxFileSize: number;
  log: (line: string) => void;
  /** Verbs this node does not serve get a clear refusal naming the node. */
  role: string;
  /** With a secret, every connection must prove it knows it before any verb is read. */
  secret?: Buffer;
  /** Verbs served only to a peer that proved the primary's role (when a secret is set). */
  primaryOnly?: readonly Verb[];
}

/** Serves one request on any duplex stream: header, dispatch to the verb's handler, failure reply, close. */
export async function serveStream(stream: Duplex, handlers: Handlers, options: ServeOptions): Promise<void> {
  const conn = new Connection(stream, options.timeouts);
  let verb: string | undefined;
  let seed = false;
  let authenticated = !options.secret;
  try {
    let peerRole: PeerRole | undefined;
    if (options.secret) {
      peerRole = await acceptHandshake(conn, options.secret);
      authenticated = true;
    }
    const header = await conn.readHeader();
    seed = !header.terminated;
    verb = verbOf(header.line);
    if (seed && !SEED_VERBS.includes(verb)) {
      // Only the report's verbs may end at a pause; ours end with a newline, so a pause
      // inside one (a retransmitted segment) must not cut a name short and act on it.
      // Our own clients sent it, so they get the reason.
      seed = false;
      throw new DfsError('BAD_HEADER', `${verb.slice(0, 40)} must end with a newline`);
    }
    const request = parseRequest(header.line, options.maxFileSize);
    const handler = handlers[request.verb];
    if (!handler) {
      throw new DfsError('UNKNOWN_VERB', `${request.verb} is not served by the ${options.role}`);
    }
    if (options.secret && options.primaryOnly?.includes(request.verb) && peerRole !== 'primary') {
      throw new DfsError('AUTH', `${request.verb} is served only to the cluster's primary`);
    }
    await handler(new Session(conn, request, seed, peerRole));
    await conn.end();
    // The peer normally closes at once; one that lingers is cut off rather than kept.
    setTimeout(() => conn.destroy(), options.timeouts.idleMs).unref();
  } catch (caught) {
    const error = toDfsError(caught);
    verb ??= verbOf(conn.headerStart.toString('latin1'));
    seed ||= conn.headerUnterminated && SEED_VERBS.includes(verb);
    if (error.code !== 'PROTOCOL' || conn.isOpen) {
      options.log(`${verb ? verb.slice(0, 40) : 'request'} failed: ${error.code} ${error.message}`);
    }
    if (conn.isOpen && !authenticated) {
      try {
        await conn.endDiscarding(`${Auth.FAILURE} ${error.code} ${error.message}\n`);
      } catch {
        conn.destroy();
      }
    } else if (conn.isOpen) {
      const token = failureTokenFor(verb);
      try {
        await conn.endDiscarding(seed ? token : formatFailure(token, error) + '\n');
      } catch {
        conn.destroy();
      }
    } else {
      conn.destroy();
    }
  }
}
