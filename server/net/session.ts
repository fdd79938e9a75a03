import type { Duplex } from 'stream';
import {
  Auth,
  DfsError,
  Principal,
  Request,
  Verb,
  authorize,
  FENCE_VERB,
  MUX_PREFACE,
  encodeListing,
  failureTokenFor,
  formatFailure,
  formatSuccess,
  parseRequest,
  toDfsError,
  verbOf,
} from '../protocol';
import { AbandonedAnswer } from './abandoned-answer';
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
    /** Who the peer proved to be: open when the node has no cluster secret. */
    readonly principal: Principal = { kind: 'open' },
    /** The leadership epoch a primary elected through etcd named before its request (FENCE). */
    readonly epoch?: number,
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
  /** Which kind of node this is, for the authorization rules. */
  node: 'primary' | 'replica';
  /** With a secret, every connection must prove it knows it (or hold a key derived from it) before any verb is read. */
  secret?: Buffer;
  /** Key ids no longer honoured. */
  isRevoked?: (keyId: string) => boolean;
  /**
   * Set where a peer may switch its connection to frames (MUX_PREFACE after the
   * handshake): takes the connection over once the preface is answered, resolving when
   * the connection ends. Its streams are served with the principal the handshake proved.
   */
  multiplex?: (conn: Connection, principal: Principal) => Promise<void>;
}

/**
 * Serves one request on any duplex stream: header, authorization, dispatch to the verb's
 * handler, failure reply, close. A stream of a multiplexed connection comes with the
 * principal its connection proved, and is not asked to prove it again.
 */
export async function serveStream(stream: Duplex, handlers: Handlers, options: ServeOptions, proved?: Principal): Promise<void> {
  const conn = new Connection(stream, options.timeouts);
  let verb: string | undefined;
  let seed = false;
  let authenticated = !options.secret || proved !== undefined;
  const peer = peerOf(stream);
  try {
    let principal: Principal = proved ?? { kind: 'open' };
    if (options.secret && !proved) {
      principal = await acceptHandshake(conn, options.secret, options.isRevoked ?? (() => false));
      authenticated = true;
    }
    if (proved && 'keyId' in proved && options.isRevoked?.(proved.keyId)) {
      // A key revoked while its multiplexed connection stays open: each stream is a new
      // connection, so each is refused as a new connection with that key would be.
      throw new DfsError('AUTH', `authentication failed: key ${proved.keyId} has been revoked; ask for a new one`);
    }
    let header = await conn.readHeader();
    if (options.multiplex && !proved && header.terminated && header.line === MUX_PREFACE) {
      await conn.writeLine(MUX_PREFACE);
      await options.multiplex(conn, principal);
      return;
    }
    const fence = parseFence(header.line, header.terminated);
    if (fence !== undefined) {
      if (principal.kind === 'client' || principal.kind === 'admin') {
        throw new DfsError('FORBIDDEN', 'only a primary names a leadership epoch');
      }
      header = await conn.readHeader();
    }
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
    const access = authorize(principal, request, options.node);
    if (access.kind === 'deny') {
      throw new DfsError('FORBIDDEN', access.reason);
    }
    if (access.kind === 'hide' && (request.verb === 'LIST' || request.verb === 'FILES' || request.verb === 'CHANGES')) {
      await conn.write(hiddenAnswer(request));
    } else {
      await handler(new Session(conn, request, seed, principal, fence));
    }
    await conn.end();
    // The peer normally closes at once; one that lingers is cut off rather than kept.
    setTimeout(() => conn.destroy(), options.timeouts.idleMs).unref();
  } catch (caught) {
    if (caught instanceof AbandonedAnswer) {
      // A primary deposed mid-request answers nothing: the new leader knows the outcome.
      options.log(`${verb ?? 'request'}: no answer sent, ${caught.reason}`);
      conn.destroy();
      return;
    }
    const error = toDfsError(caught);
    verb ??= verbOf(conn.headerStart.toString('latin1'));
    seed ||= conn.headerUnterminated && SEED_VERBS.includes(verb);
    if (error.code !== 'PROTOCOL' || conn.isOpen) {
      const from = error.code === 'AUTH' || error.code === 'FORBIDDEN' ? ` (from ${peer})` : '';
      const what = verb ? verb.slice(0, 40) : 'request';
      // The sender closing mid-body is a cancelled transfer (a user's cancel, or one cut
      // upstream and passed on), not a failure of this node: say so.
      options.log(error.code === 'SHORT_BODY' ? `${what} cancelled by the sender (${peer}): ${error.message}; nothing was stored` : `${what} failed${from}: ${error.code} ${error.message}`);
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

/** What a key that may not see another client's files is told of them: that client has none, and nothing changed. */
function hiddenAnswer(request: Extract<Request, { verb: 'LIST' | 'FILES' | 'CHANGES' }>): string {
  switch (request.verb) {
    case 'LIST':
      return `No files stored for client ${request.clientId}.`;
    case 'FILES':
      return encodeListing([]);
    case 'CHANGES':
      return encodeListing([], { through: request.generation, complete: true });
  }
}

/** `FENCE <epoch>`, the line a primary elected through etcd sends before its request; undefined for any other line. */
function parseFence(line: string, terminated: boolean): number | undefined {
  if (!terminated || !line.startsWith(`${FENCE_VERB} `)) {
    return undefined;
  }
  const epoch = Number(line.slice(FENCE_VERB.length + 1));
  if (!Number.isSafeInteger(epoch) || epoch < 1) {
    throw new DfsError('BAD_HEADER', `${FENCE_VERB} needs a positive whole epoch, got ${JSON.stringify(line.slice(0, 40))}`);
  }
  return epoch;
}

function peerOf(stream: Duplex): string {
  const socket = stream as Duplex & { remoteAddress?: string; remotePort?: number };
  return socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'an in-process stream';
}
