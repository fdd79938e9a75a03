import { DfsClient } from '../../server/client/dfs-client';
import { readTlsFiles } from '../../server/config/security-settings';
import type { Security, TlsFiles } from '../../server/net/security';
import type { ClientKey } from '../../server/protocol';
import type { ExtensionSettings } from '../model/settings';

/** How long a status probe waits: short, because it runs while the user looks at the UI. */
const PROBE_CONNECT_TIMEOUT_MS = 3_000;

/**
 * The current settings and credentials, and a client made from them. Settings change
 * under a running extension, so nothing else keeps a client: each operation asks here
 * for one.
 */
export class DfsConnection {
  /** The cluster secret, when one is stored: this window then acts as a member. */
  secret: Buffer | undefined;
  /** A client or admin key, when one is stored; the secret wins when both are. */
  key: ClientKey | undefined;
  private tls: { files?: TlsFiles; error?: unknown } = {};

  constructor(private current: ExtensionSettings) {
    this.loadTls();
  }

  get settings(): ExtensionSettings {
    return this.current;
  }

  update(settings: ExtensionSettings): void {
    this.current = settings;
    this.loadTls();
  }

  get address(): string {
    return `${this.current.host}:${this.current.port}`;
  }

  /** Whose files uploads go to: dfs.clientId when set, else the client key's id, else the machine's default. */
  get clientId(): string {
    if (!this.current.clientIdFromSettings && !this.secret && this.key?.kind === 'client' && this.key.clientId) {
      return this.key.clientId;
    }
    return this.current.clientId;
  }

  /** How this window authenticates, for the log and messages. */
  get credentialLabel(): string {
    if (this.secret) {
      return 'the cluster secret';
    }
    if (this.key) {
      return this.key.kind === 'client' ? `client key ${this.key.keyId} (client ${this.key.clientId})` : `admin key ${this.key.keyId}`;
    }
    return 'no credential (open protocol)';
  }

  client(): DfsClient {
    if (this.tls.error) {
      // Unreadable TLS files: no connection is tried without the protection asked for.
      throw this.tls.error;
    }
    const security: Security = { secret: this.secret, key: this.secret ? undefined : this.key, tls: this.tls.files };
    return new DfsClient({
      host: this.current.host,
      port: this.current.port,
      clientId: this.clientId,
      connectTimeoutMs: PROBE_CONNECT_TIMEOUT_MS,
      security: security.secret || security.key || security.tls ? security : undefined,
    });
  }

  private loadTls(): void {
    try {
      // The client checks servers with the CA; the certificate and key are the servers' (Start Cluster).
      this.tls = { files: readTlsFiles({ ca: this.current.tlsCaFile }, { cert: 'dfs.tlsCertFile', key: 'dfs.tlsKeyFile', ca: 'dfs.tlsCaFile' }) };
    } catch (error) {
      this.tls = { error };
    }
  }
}
