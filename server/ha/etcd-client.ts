import { promises as fs } from 'fs';
import * as http from 'http';
import * as https from 'https';

/**
 * A small etcd v3 client over etcd's JSON gateway (grpc-gateway, served on the client
 * port at /v3/...), built on Node's http/https only so it runs under VS Code's own
 * runtime as well as plain node. Keys and values are UTF-8 strings here and base64 on
 * the wire; revisions are numbers (they stay far below 2^53), lease ids are strings
 * (they are 64-bit and do not fit a number).
 *
 * Every call tries the endpoints in turn, starting with the last one that answered: an
 * attempt that cannot connect, times out, or is told "unavailable" by the member (it has
 * no raft leader) moves on to the next endpoint. A write whose attempt timed out after
 * being sent may nevertheless have been applied; the error then says so
 * (mayHaveApplied), and `retryAfterSend: false` lets a caller that must know stop there.
 */

export type EtcdErrorCode =
  /** No endpoint could be reached, or every one said it could not serve (no leader). */
  | 'UNAVAILABLE'
  /** The last attempt got no answer within its timeout. */
  | 'TIMEOUT'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** The lease named in the request does not exist (expired or revoked). */
  | 'LEASE_NOT_FOUND'
  /** etcd refused the request (bad argument, permission, ...): retrying elsewhere would not help. */
  | 'REJECTED'
  /** The answer was not the JSON etcd's gateway sends. */
  | 'PROTOCOL';

export class EtcdError extends Error {
  constructor(
    readonly code: EtcdErrorCode,
    message: string,
    /** True when an attempt reached a member and its fate is unknown (a write may have been applied). */
    readonly mayHaveApplied = false,
    /** etcd's gRPC status code, when etcd answered with an error. */
    readonly grpcCode?: number,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

export interface EtcdClientOptions {
  /** Client URLs, e.g. ['http://127.0.0.1:2379', 'http://127.0.0.1:22379']. */
  endpoints: string[];
  /** Per attempt, in ms (default 1000). */
  timeoutMs?: number;
  /** PEM CA bundle for https endpoints (the file's contents, not its path: see EtcdClient.fromFiles). */
  ca?: string | Buffer;
  /** PEM client certificate and key, for members started with --client-cert-auth. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Overrides the client's per-attempt timeout. */
  timeoutMs?: number;
  /** Whether to try the next endpoint after an attempt that may have reached etcd (default true). */
  retryAfterSend?: boolean;
}

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** '0' when the key has no lease. */
  lease: string;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** The store's revision when the range was served. */
  revision: number;
}

export type CompareTarget = 'CREATE' | 'MOD' | 'VERSION' | 'VALUE' | 'LEASE';
export type CompareResult = 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';

export interface Compare {
  key: string;
  target: CompareTarget;
  result: CompareResult;
  /** A revision or version number for CREATE/MOD/VERSION, a value for VALUE, a lease id for LEASE. */
  operand: number | string;
}

export type TxnOp =
  | { type: 'put'; key: string; value: string; lease?: string }
  | { type: 'delete'; key: string; prefix?: boolean }
  | { type: 'range'; key: string; prefix?: boolean };

export type TxnResponse =
  | { type: 'put'; revision: number }
  | { type: 'delete'; deleted: number }
  | { type: 'range'; kvs: KeyValue[] };

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  responses: TxnResponse[];
}

export interface Lease {
  id: string;
  /** Seconds, as etcd granted it (etcd raises a TTL below its minimum). */
  ttl: number;
}

export interface WatchEvent {
  type: 'PUT' | 'DELETE';
  /** For a DELETE, only key and modRevision (the deletion's revision) are set. */
  kv: KeyValue;
}

export interface WatchOptions {
  prefix?: boolean;
  /** Replay events from this revision on (etcd keeps them until compaction). */
  startRevision?: number;
  /** Ends the watch; the promise then resolves. */
  signal: AbortSignal;
  onEvent: (event: WatchEvent) => void;
  /** Until etcd has accepted the watch (default: the client's per-attempt timeout). */
  timeoutMs?: number;
}

/** gRPC status codes etcd uses that mean "this member cannot serve now; another might". */
const GRPC_UNAVAILABLE = 14;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_NOT_FOUND = 5;

type Json = Record<string, unknown>;

export class EtcdClient {
  private readonly endpoints: URL[];
  private readonly timeoutMs: number;
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgent: https.Agent;
  private readonly tls: https.AgentOptions;
  /** Index of the endpoint that answered last: calls start there. */
  private preferred = 0;

  constructor(options: EtcdClientOptions) {
    if (options.endpoints.length === 0) {
      throw new EtcdError('REJECTED', 'no etcd endpoints given: pass at least one URL such as http://127.0.0.1:2379');
    }
    this.endpoints = options.endpoints.map((endpoint) => parseEndpoint(endpoint));
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.tls = { ca: options.ca, cert: options.cert, key: options.key };
    this.httpsAgent = new https.Agent({ keepAlive: true, ...this.tls });
  }

  /** A client whose TLS material is read from PEM files (each optional). */
  static async fromFiles(options: Omit<EtcdClientOptions, 'ca' | 'cert' | 'key'> & { caFile?: string; certFile?: string; keyFile?: string }): Promise<EtcdClient> {
    const read = (file: string | undefined): Promise<Buffer | undefined> => (file === undefined ? Promise.resolve(undefined) : fs.readFile(file));
    const [ca, cert, key] = await Promise.all([read(options.caFile), read(options.certFile), read(options.keyFile)]);
    return new EtcdClient({ endpoints: options.endpoints, timeoutMs: options.timeoutMs, ca, cert, key });
  }

  /** Closes idle connections; calls made afterwards open new ones. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  async range(key: string, options: CallOptions & { prefix?: boolean } = {}): Promise<RangeResult> {
    const answer = await this.call('/v3/kv/range', rangeRequest(key, options.prefix), options);
    return { kvs: keyValues(answer.kvs), revision: headerRevision(answer) };
  }

  /** Returns the revision of the put. */
  async put(key: string, value: string, options: CallOptions & { lease?: string } = {}): Promise<number> {
    const answer = await this.call('/v3/kv/put', putRequest(key, value, options.lease), options);
    return headerRevision(answer);
  }

  /** Returns how many keys were deleted. */
  async deleteRange(key: string, options: CallOptions & { prefix?: boolean } = {}): Promise<number> {
    const answer = await this.call('/v3/kv/deleterange', rangeRequest(key, options.prefix), options);
    return int(answer.deleted);
  }

  async txn(compares: Compare[], success: TxnOp[], failure: TxnOp[] = [], options: CallOptions = {}): Promise<TxnResult> {
    const answer = await this.call(
      '/v3/kv/txn',
      { compare: compares.map(compareRequest), success: success.map(opRequest), failure: failure.map(opRequest) },
      options,
    );
    const responses = Array.isArray(answer.responses) ? (answer.responses as Json[]) : [];
    return { succeeded: answer.succeeded === true, revision: headerRevision(answer), responses: responses.map(txnResponse) };
  }

  async grantLease(ttlSeconds: number, options: CallOptions = {}): Promise<Lease> {
    const answer = await this.call('/v3/lease/grant', { TTL: String(Math.ceil(ttlSeconds)) }, options);
    if (typeof answer.error === 'string' && answer.error !== '') {
      throw new EtcdError('REJECTED', `etcd refused the lease: ${answer.error}`);
    }
    return { id: String(answer.ID), ttl: int(answer.TTL) };
  }

  /**
   * Refreshes a lease once and returns its TTL in seconds as etcd now counts it from
   * (the granted TTL), or 0 when the lease no longer exists. The gateway maps the
   * keep-alive stream to one request, one `{"result": ...}` answer per HTTP call.
   */
  async keepAliveOnce(id: string, options: CallOptions = {}): Promise<number> {
    const answer = await this.call('/v3/lease/keepalive', { ID: id }, options);
    const result = answer.result as Json | undefined;
    if (result === undefined) {
      throw new EtcdError('PROTOCOL', `etcd's keep-alive answer had no result: ${JSON.stringify(answer).slice(0, 200)}`);
    }
    return int(result.TTL);
  }

  /** Revokes a lease, deleting its keys at once. A lease already gone is not an error. */
  async revokeLease(id: string, options: CallOptions = {}): Promise<void> {
    try {
      await this.call('/v3/lease/revoke', { ID: id }, options);
    } catch (error) {
      if (!(error instanceof EtcdError && error.code === 'LEASE_NOT_FOUND')) {
        throw error;
      }
    }
  }

  /** Seconds left on a lease, -1 when it does not exist; with its keys when asked. */
  async leaseTimeToLive(id: string, options: CallOptions & { keys?: boolean } = {}): Promise<{ ttl: number; grantedTtl: number; keys: string[] }> {
    const answer = await this.call('/v3/lease/timetolive', { ID: id, keys: options.keys === true }, options);
    const keys = Array.isArray(answer.keys) ? (answer.keys as string[]).map(fromBase64) : [];
    return { ttl: int(answer.TTL), grantedTtl: int(answer.grantedTTL), keys };
  }

  /**
   * Streams changes of a key (or prefix) from one endpoint until `signal` aborts
   * (resolves) or the stream breaks (rejects, and the next watch starts at the next
   * endpoint). The gateway keeps the stream open after the request body ends and sends
   * one JSON message per line. A stream across a cut network can stay silent without
   * breaking: treat events as hints that speed things up, never as the only signal.
   */
  watch(key: string, options: WatchOptions): Promise<void> {
    const index = this.preferred;
    const endpoint = this.endpoints[index];
    const payload = JSON.stringify({ create_request: { ...rangeRequest(key, options.prefix), ...(options.startRevision ? { start_revision: String(options.startRevision) } : {}) } });
    const secure = endpoint.protocol === 'https:';
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (error?: EtcdError): void => {
        if (settled) {
          return;
        }
        settled = true;
        clearTimeout(acceptTimer);
        options.signal.removeEventListener('abort', onAbort);
        request.destroy();
        if (error) {
          this.preferred = (index + 1) % this.endpoints.length;
          reject(error);
        } else {
          resolve();
        }
      };
      const onMessage = (line: string): void => {
        let message: Json;
        try {
          message = JSON.parse(line) as Json;
        } catch {
          finish(new EtcdError('PROTOCOL', `etcd's watch stream sent something other than JSON: ${line.slice(0, 200)}`));
          return;
        }
        if (message.error !== undefined) {
          const error = message.error as Json;
          finish(new EtcdError('UNAVAILABLE', `etcd's watch stream at ${endpoint.host} failed: ${String(error.message ?? JSON.stringify(error))}`));
          return;
        }
        const result = (message.result ?? {}) as Json;
        if (result.created === true) {
          clearTimeout(acceptTimer);
        }
        if (result.canceled === true) {
          finish(new EtcdError('REJECTED', `etcd cancelled the watch: ${String(result.cancel_reason ?? '')}${result.compact_revision ? ` (compacted to ${String(result.compact_revision)})` : ''}`));
          return;
        }
        for (const event of Array.isArray(result.events) ? (result.events as Json[]) : []) {
          const [kv] = keyValues([event.kv]);
          options.onEvent({ type: event.type === 'DELETE' ? 'DELETE' : 'PUT', kv });
        }
      };
      const request = (secure ? https : http).request(
        {
          protocol: endpoint.protocol,
          hostname: endpoint.hostname,
          port: endpoint.port,
          method: 'POST',
          path: endpoint.pathname.replace(/\/$/, '') + '/v3/watch',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          // Its own connection: a stream never goes back to the pool.
          agent: false,
          ...(secure ? this.tls : {}),
        },
        (response) => {
          let buffer = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            buffer += chunk;
            for (let newline = buffer.indexOf('\n'); newline >= 0 && !settled; newline = buffer.indexOf('\n')) {
              const line = buffer.slice(0, newline).trim();
              buffer = buffer.slice(newline + 1);
              if (line !== '') {
                onMessage(line);
              }
            }
          });
          response.on('end', () => finish(new EtcdError('UNAVAILABLE', `etcd's watch stream at ${endpoint.host} ended${response.statusCode === 200 ? '' : ` (HTTP ${response.statusCode}: ${buffer.slice(0, 200)})`}`)));
          response.on('error', (error) => finish(new EtcdError('UNAVAILABLE', `etcd's watch stream at ${endpoint.host} broke: ${error.message}`)));
        },
      );
      const onAbort = (): void => finish();
      if (options.signal.aborted) {
        queueMicrotask(onAbort);
      }
      options.signal.addEventListener('abort', onAbort, { once: true });
      const timeoutMs = options.timeoutMs ?? this.timeoutMs;
      const acceptTimer = setTimeout(() => finish(new EtcdError('TIMEOUT', `etcd at ${endpoint.host} did not accept the watch within ${timeoutMs} ms`)), timeoutMs);
      request.on('error', (error: NodeJS.ErrnoException) => finish(new EtcdError('UNAVAILABLE', `etcd watch at ${endpoint.host} failed: ${error.code ?? error.message}`)));
      request.end(payload);
    });
  }

  private async call(path: string, body: Json, options: CallOptions): Promise<Json> {
    const payload = JSON.stringify(body);
    const failures: string[] = [];
    let timedOut = false;
    let mayHaveApplied = false;
    const first = this.preferred;
    for (let tried = 0; tried < this.endpoints.length; tried++) {
      const index = (first + tried) % this.endpoints.length;
      const endpoint = this.endpoints[index];
      const outcome = await this.attempt(endpoint, path, payload, options);
      if (outcome.kind === 'answer') {
        this.preferred = index;
        return outcome.body;
      }
      if (outcome.kind === 'aborted') {
        throw new EtcdError('ABORTED', `etcd ${path} was cancelled`, mayHaveApplied || outcome.sent);
      }
      if (outcome.kind === 'refused') {
        throw outcome.error;
      }
      failures.push(`${endpoint.host}: ${outcome.reason}`);
      timedOut = outcome.kind === 'timeout';
      mayHaveApplied ||= outcome.sent;
      // The next call starts at the endpoint after the one that failed.
      this.preferred = (index + 1) % this.endpoints.length;
      if (outcome.sent && options.retryAfterSend === false) {
        break;
      }
    }
    throw new EtcdError(
      timedOut ? 'TIMEOUT' : 'UNAVAILABLE',
      `etcd ${path} failed on ${failures.length === 1 ? 'its endpoint' : 'every endpoint tried'}: ${failures.join('; ')}`,
      mayHaveApplied,
    );
  }

  private attempt(endpoint: URL, path: string, payload: string, options: CallOptions): Promise<AttemptOutcome> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise<AttemptOutcome>((resolve) => {
      if (options.signal?.aborted) {
        resolve({ kind: 'aborted', sent: false });
        return;
      }
      const secure = endpoint.protocol === 'https:';
      const transport = secure ? https : http;
      let connected = false;
      let settled = false;
      const settle = (outcome: AttemptOutcome, answered = false): void => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          if (!answered) {
            // A connection left with a request in flight cannot be reused.
            request.destroy();
          }
          resolve(outcome);
        }
      };
      const request = transport.request(
        {
          protocol: endpoint.protocol,
          hostname: endpoint.hostname,
          port: endpoint.port,
          method: 'POST',
          path: endpoint.pathname.replace(/\/$/, '') + path,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          agent: secure ? this.httpsAgent : this.httpAgent,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', (error) => settle({ kind: 'failed', sent: true, reason: error.message }));
          response.on('end', () => settle(interpretAnswer(response.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), path), true));
        },
      );
      const onAbort = (): void => settle({ kind: 'aborted', sent: connected });
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => settle({ kind: 'timeout', sent: connected, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
      request.on('socket', (socket) => {
        // A reused keep-alive socket is connected already; a new one is once it says so.
        if (request.reusedSocket) {
          connected = true;
        } else {
          socket.once(secure ? 'secureConnect' : 'connect', () => (connected = true));
        }
      });
      request.on('error', (error: NodeJS.ErrnoException) => settle({ kind: 'failed', sent: connected, reason: error.code ?? error.message }));
      request.end(payload);
    });
  }
}

type AttemptOutcome =
  | { kind: 'answer'; body: Json }
  | { kind: 'refused'; error: EtcdError }
  | { kind: 'failed' | 'timeout'; sent: boolean; reason: string }
  | { kind: 'aborted'; sent: boolean };

function interpretAnswer(status: number, text: string, path: string): AttemptOutcome {
  let body: Json;
  try {
    body = JSON.parse(text) as Json;
  } catch {
    return { kind: 'refused', error: new EtcdError('PROTOCOL', `etcd ${path} answered HTTP ${status} with something other than JSON: ${text.slice(0, 200)}`) };
  }
  // Unary errors are {"error", "message", "code"}; a stream's (keep-alive) are {"error": {...}}.
  const error = (typeof body.error === 'object' && body.error !== null ? body.error : status >= 400 ? body : undefined) as Json | undefined;
  if (error === undefined) {
    return { kind: 'answer', body };
  }
  const grpcCode = typeof error.code === 'number' ? error.code : undefined;
  const message = String(error.message ?? error.error ?? `HTTP ${status}`);
  if (grpcCode === GRPC_UNAVAILABLE || grpcCode === GRPC_DEADLINE_EXCEEDED) {
    return { kind: 'failed', sent: true, reason: message };
  }
  if (grpcCode === GRPC_NOT_FOUND && /lease not found/.test(message)) {
    return { kind: 'refused', error: new EtcdError('LEASE_NOT_FOUND', message, false, grpcCode) };
  }
  return { kind: 'refused', error: new EtcdError('REJECTED', `etcd refused ${path}: ${message}`, false, grpcCode) };
}

function parseEndpoint(endpoint: string): URL {
  let url: URL;
  try {
    url = new URL(endpoint.includes('://') ? endpoint : `http://${endpoint}`);
  } catch {
    throw new EtcdError('REJECTED', `"${endpoint}" is not an etcd endpoint: use a URL such as http://127.0.0.1:2379`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new EtcdError('REJECTED', `"${endpoint}" is not an etcd endpoint: only http:// and https:// are supported`);
  }
  return url;
}

function toBase64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

function fromBase64(text: unknown): string {
  return typeof text === 'string' ? Buffer.from(text, 'base64').toString('utf8') : '';
}

/** The end of the range of keys starting with `prefix`: the prefix with its last byte below 0xff incremented. */
export function prefixRangeEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let index = bytes.length - 1; index >= 0; index--) {
    if (bytes[index] < 0xff) {
      const end = Buffer.from(bytes.subarray(0, index + 1));
      end[index]++;
      return end;
    }
  }
  // Every byte is 0xff (or the prefix is empty): to the end of the keyspace.
  return Buffer.from([0]);
}

function rangeRequest(key: string, prefix: boolean | undefined): Json {
  return prefix ? { key: toBase64(key), range_end: prefixRangeEnd(key).toString('base64') } : { key: toBase64(key) };
}

function putRequest(key: string, value: string, lease: string | undefined): Json {
  return lease === undefined ? { key: toBase64(key), value: toBase64(value) } : { key: toBase64(key), value: toBase64(value), lease };
}

function compareRequest(compare: Compare): Json {
  const base = { key: toBase64(compare.key), target: compare.target, result: compare.result };
  switch (compare.target) {
    case 'CREATE':
      return { ...base, create_revision: String(compare.operand) };
    case 'MOD':
      return { ...base, mod_revision: String(compare.operand) };
    case 'VERSION':
      return { ...base, version: String(compare.operand) };
    case 'VALUE':
      return { ...base, value: toBase64(String(compare.operand)) };
    case 'LEASE':
      return { ...base, lease: String(compare.operand) };
  }
}

function opRequest(op: TxnOp): Json {
  switch (op.type) {
    case 'put':
      return { request_put: putRequest(op.key, op.value, op.lease) };
    case 'delete':
      return { request_delete_range: rangeRequest(op.key, op.prefix) };
    case 'range':
      return { request_range: rangeRequest(op.key, op.prefix) };
  }
}

function txnResponse(response: Json): TxnResponse {
  if (response.response_put !== undefined) {
    return { type: 'put', revision: headerRevision(response.response_put as Json) };
  }
  if (response.response_delete_range !== undefined) {
    return { type: 'delete', deleted: int((response.response_delete_range as Json).deleted) };
  }
  if (response.response_range !== undefined) {
    return { type: 'range', kvs: keyValues((response.response_range as Json).kvs) };
  }
  throw new EtcdError('PROTOCOL', `etcd's transaction answer held an unknown response: ${JSON.stringify(response).slice(0, 200)}`);
}

function keyValues(kvs: unknown): KeyValue[] {
  if (!Array.isArray(kvs)) {
    return [];
  }
  return (kvs as Json[]).map((kv) => ({
    key: fromBase64(kv.key),
    value: fromBase64(kv.value),
    createRevision: int(kv.create_revision),
    modRevision: int(kv.mod_revision),
    version: int(kv.version),
    lease: kv.lease === undefined ? '0' : String(kv.lease),
  }));
}

function headerRevision(answer: Json): number {
  return int((answer.header as Json | undefined)?.revision);
}

/** The gateway writes int64s as strings and omits zero values. */
function int(value: unknown): number {
  return value === undefined ? 0 : Number(value);
}
