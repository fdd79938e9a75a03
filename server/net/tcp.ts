import * as net from 'net';
import * as tls from 'tls';
import { DfsError } from '../protocol';
import { Connection, ConnectionTimeouts, DEFAULT_TIMEOUTS } from './connection';
import { offerHandshake } from './handshake';
import type { Security } from './security';

export interface ConnectOptions {
  host: string;
  port: number;
  timeouts?: ConnectionTimeouts;
  connectTimeoutMs?: number;
  signal?: AbortSignal;
  security?: Security;
  /** The role proved to a server that requires the cluster secret. */
  role?: 'client' | 'primary';
}

/** One connection attempt, bounded in time and cancellable, authenticated when a secret is set. */
export async function connect(options: ConnectOptions): Promise<Connection> {
  const conn = await openTransport(options);
  const security = options.security;
  if (security?.secret || security?.key) {
    try {
      await offerHandshake(conn, security.secret ? { secret: security.secret, role: options.role ?? 'client' } : { key: security.key! });
    } catch (error) {
      conn.destroy();
      throw error;
    }
  }
  return conn;
}

function openTransport(options: ConnectOptions): Promise<Connection> {
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new DfsError('CANCELLED', 'cancelled'));
      return;
    }
    const tlsFiles = options.security?.tls;
    const useTls = Boolean(tlsFiles?.ca);
    const socket: net.Socket = useTls
      ? tls.connect({ host: options.host, port: options.port, ca: tlsFiles!.ca, cert: tlsFiles!.cert, key: tlsFiles!.key, servername: net.isIP(options.host) ? undefined : options.host })
      : net.connect({ host: options.host, port: options.port });
    socket.setNoDelay(true);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      options.signal?.removeEventListener('abort', onAbort);
    };
    const onError = (error: NodeJS.ErrnoException): void => {
      cleanup();
      socket.destroy();
      const reason = error.code === 'ECONNREFUSED' ? 'nothing is listening there' : useTls ? `TLS failed: ${error.message}` : error.message;
      reject(new DfsError('UNREACHABLE', `cannot connect to ${options.host}:${options.port}: ${reason}`));
    };
    const onAbort = (): void => {
      cleanup();
      socket.destroy();
      reject(new DfsError('CANCELLED', 'cancelled'));
    };
    const timer = setTimeout(() => {
      cleanup();
      socket.destroy();
      reject(new DfsError('UNREACHABLE', `cannot connect to ${options.host}:${options.port}: no answer within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    socket.once('error', onError);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once(useTls ? 'secureConnect' : 'connect', () => {
      cleanup();
      const connection = new Connection(socket, options.timeouts ?? DEFAULT_TIMEOUTS);
      if (options.signal) {
        const signal = options.signal;
        const abort = (): void => connection.destroy(new DfsError('CANCELLED', 'cancelled'));
        signal.addEventListener('abort', abort, { once: true });
        socket.once('close', () => signal.removeEventListener('abort', abort));
      }
      resolve(connection);
    });
  });
}

export interface RetryPolicy {
  attempts: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, firstDelayMs: 50, maxDelayMs: 1_000 };

/** Connects, retrying refused or silent peers with bounded exponential backoff. */
export async function connectWithRetry(options: ConnectOptions, retry: RetryPolicy = DEFAULT_RETRY): Promise<Connection> {
  let delay = retry.firstDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect(options);
    } catch (error) {
      if (attempt >= retry.attempts || (error instanceof DfsError && error.code === 'CANCELLED')) {
        throw error;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, retry.maxDelayMs);
  }
}
