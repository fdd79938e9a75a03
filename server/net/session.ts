import type { Duplex } from 'stream';
import { DfsError, Request, Verb, failureTokenFor, formatFailure, formatSuccess, parseRequest, toDfsError, verbOf } from '../protocol';
import { Connection, ConnectionTimeouts } from './connection';

/**
 * One request on one connection. `seed` is true when the header came the report's
 * way (no terminator): then replies are the bare tokens it compares byte for byte.
 */
export class Session {
  constructor(
    readonly conn: Connection,
    readonly request: Request,
    readonly seed: boolean,
  ) {}

  async reply(token: string, payload?: unknown): Promise<void> {
    await this.conn.write(this.seed ? token : formatSuccess(token, payload) + '\n');
  }

  async fail(token: string, error: DfsError): Promise<void> {
    await this.conn.write(this.seed ? token : formatFailure(token, error) + '\n');
  }
}

export type Handler = (session: Session) => Promise<void>;
export type Handlers = Partial<Record<Verb, Handler>>;

export interface ServeOptions {
  timeouts: ConnectionTimeouts;
  maxFileSize: number;
  log: (line: string) => void;
  /** Verbs this node does not serve get a clear refusal naming the node. */
  role: string;
}

/** Serves one request on any duplex stream: header, dispatch to the verb's handler, failure reply, close. */
export async function serveStream(stream: Duplex, handlers: Handlers, options: ServeOptions): Promise<void> {
  const conn = new Connection(stream, options.timeouts);
  let verb: string | undefined;
  let seed = false;
  try {
    const header = await conn.readHeader();
    seed = !header.terminated;
    verb = verbOf(header.line);
    const request = parseRequest(header.line, options.maxFileSize);
    const handler = handlers[request.verb];
    if (!handler) {
      throw new DfsError('UNKNOWN_VERB', `${request.verb} is not served by the ${options.role}`);
    }
    await handler(new Session(conn, request, seed));
    await conn.end();
    // The peer normally closes at once; one that lingers is cut off rather than kept.
    setTimeout(() => conn.destroy(), options.timeouts.idleMs).unref();
  } catch (caught) {
    const error = toDfsError(caught);
    verb ??= verbOf(conn.headerStart.toString('latin1'));
    if (error.code !== 'PROTOCOL' || conn.isOpen) {
      options.log(`${verb ? verb.slice(0, 40) : 'request'} failed: ${error.code} ${error.message}`);
    }
    if (conn.isOpen) {
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
