import { readFileSync } from 'fs';
import { isIP } from 'net';
import type { Security, TlsFiles } from '../net/security';
import { ClientKey, DfsError, parseKey } from '../protocol';
import type { Settings } from './settings';

const MIN_SECRET_BYTES = 16;

/** The cluster secret from --secret-file / secretFile, else DFS_SECRET; undefined when neither is set. */
export function loadSecret(settings: Settings, env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  let secret: string | undefined;
  if (settings.secretFile) {
    try {
      secret = readFileSync(settings.secretFile, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new DfsError('AUTH', `cannot read the secret file ${settings.secretFile}: ${(error as Error).message}`);
    }
  } else if (env.DFS_SECRET) {
    secret = env.DFS_SECRET;
  }
  if (secret === undefined) {
    return undefined;
  }
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw new DfsError('AUTH', `the cluster secret is shorter than ${MIN_SECRET_BYTES} bytes; use a long random one (for example: openssl rand -hex 32)`);
  }
  return Buffer.from(secret, 'utf8');
}

/** The client or admin key from --key-file / keyFile, else DFS_KEY; undefined when neither is set. */
export function loadKey(settings: Settings, env: NodeJS.ProcessEnv = process.env): ClientKey | undefined {
  let text: string | undefined;
  let source = 'DFS_KEY';
  if (settings.keyFile) {
    source = settings.keyFile;
    try {
      text = readFileSync(settings.keyFile, 'utf8');
    } catch (error) {
      throw new DfsError('AUTH', `cannot read the key file ${settings.keyFile}: ${(error as Error).message}`);
    }
  } else if (env.DFS_KEY) {
    text = env.DFS_KEY;
  }
  if (text === undefined) {
    return undefined;
  }
  try {
    return parseKey(text);
  } catch (error) {
    throw new DfsError('AUTH', `${source}: ${(error as Error).message}`);
  }
}

/** TLS material read from its files (servers: cert, key and CA; clients: the CA, perhaps their own cert and key). */
export function readTlsFiles(files: { cert?: string; key?: string; ca?: string }, names = { cert: '--tls-cert', key: '--tls-key', ca: '--tls-ca' }): TlsFiles | undefined {
  const read = (file: string | undefined, what: string): Buffer | undefined => {
    if (!file) {
      return undefined;
    }
    try {
      return readFileSync(file);
    } catch (error) {
      throw new DfsError('BAD_HEADER', `cannot read the TLS ${what} ${file}: ${(error as Error).message}`);
    }
  };
  const tls = { cert: read(files.cert, 'certificate'), key: read(files.key, 'key'), ca: read(files.ca, 'CA file') };
  if (Boolean(tls.cert) !== Boolean(tls.key)) {
    throw new DfsError('BAD_HEADER', `TLS needs both ${names.cert} and ${names.key}`);
  }
  if (tls.cert && !tls.ca) {
    // Without it this process would accept TLS but make its own connections (to replicas) in plaintext.
    throw new DfsError('BAD_HEADER', `TLS also needs ${names.ca}: the CA that signed the certificates this process connects to`);
  }
  return tls.cert || tls.ca ? tls : undefined;
}

export function loadSecurity(settings: Settings, env: NodeJS.ProcessEnv = process.env): Security {
  const tls = readTlsFiles({ cert: settings.tlsCert, key: settings.tlsKey, ca: settings.tlsCa });
  return { secret: loadSecret(settings, env), key: loadKey(settings, env), tls };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/**
 * A server reachable from other machines without a secret lets anyone read and write
 * every file: it takes an explicit --insecure, and even then it says so.
 */
export function checkExposure(settings: Settings, security: Security, log: (line: string) => void): void {
  if (isLoopback(settings.host) || security.secret) {
    return;
  }
  if (!settings.insecure) {
    throw new DfsError(
      'AUTH',
      `refusing to listen on ${settings.host} without a cluster secret: anyone who can reach it could read and write every file. Set one with --secret-file PATH or DFS_SECRET, or pass --insecure to accept the risk.`,
    );
  }
  log(`WARNING: listening on ${settings.host} with no cluster secret (--insecure): anyone who can reach this port can read and write every file`);
}
