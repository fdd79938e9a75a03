import { createHash } from 'crypto';
import { ConnectionTimeouts, DEFAULT_TIMEOUTS } from '../net/connection';
import { MuxDialer } from '../net/mux-dialer';
import type { Security } from '../net/security';
import { HostPort, formatHostPort } from './primary-addresses';

export interface DialTarget {
  address: HostPort;
  security?: Security;
  timeouts?: ConnectionTimeouts;
  connectTimeoutMs?: number;
}

/**
 * The connections a client process keeps to its servers: one multiplexed connection per
 * server and credential, opened by the first request and shared by every later one, by
 * every DfsClient of the process (the extension makes one per operation). A connection
 * holds the process open only while a request runs on it and closes after an idle
 * timeout with none, so a CLI exits as soon as its work is done.
 */
export class ClientConnections {
  private readonly dialers = new Map<string, MuxDialer>();

  /** The dialer for this server, as this credential: made on first use. */
  dialerFor(target: DialTarget): MuxDialer {
    const key = `${formatHostPort(target.address)}|${credentialOf(target.security)}`;
    let dialer = this.dialers.get(key);
    if (!dialer) {
      const timeouts = target.timeouts ?? DEFAULT_TIMEOUTS;
      dialer = new MuxDialer(
        {
          host: target.address.host,
          port: target.address.port,
          timeouts,
          connectTimeoutMs: target.connectTimeoutMs,
          security: target.security,
          role: 'client',
        },
        `the server ${formatHostPort(target.address)}`,
        { closeWhenIdleMs: timeouts.idleMs },
      );
      this.dialers.set(key, dialer);
    }
    return dialer;
  }

  /** Physical connections opened for multiplexing, over every server (for tests and figures). */
  get sessionsOpened(): number {
    let total = 0;
    for (const dialer of this.dialers.values()) {
      total += dialer.sessionsOpened;
    }
    return total;
  }

  /** Closes every connection: requests still running on one fail as if it broke. Later requests open new ones. */
  close(): void {
    for (const dialer of this.dialers.values()) {
      dialer.close();
    }
    this.dialers.clear();
  }
}

/** Which credential a connection was proved with, without keeping it readable in the key (a digest). */
function credentialOf(security: Security | undefined): string {
  if (!security) {
    return 'open';
  }
  const hash = createHash('sha256');
  if (security.secret) {
    hash.update('secret\0').update(security.secret);
  } else if (security.key) {
    hash.update(`key\0${security.key.kind}\0${security.key.clientId ?? ''}\0${security.key.keyId}\0${security.key.mac}`);
  }
  if (security.tls?.ca) {
    hash.update('\0tls\0').update(security.tls.ca);
    if (security.tls.cert) {
      hash.update(security.tls.cert);
    }
  }
  return hash.digest('hex');
}

/** The connections every DfsClient of this process shares unless it is given its own. */
export const sharedConnections = new ClientConnections();
