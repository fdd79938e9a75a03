import { DfsClient } from '../../server/client/dfs-client';
import { PrimaryAddresses, formatHostPort } from '../../server/client/primary-addresses';
import { ReadOnlyFallback, ReadOnlyNotice } from '../../server/client/read-only-fallback';
import { ReplicaReads } from '../../server/client/replica-reads';
import { replicaAddresses } from '../../server/config/cluster-layout';
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
  /** The cluster secret, when one is stored: this window then acts as a member of the dfs.* settings' cluster (not of a named one, see activeSecret). */
  secret: Buffer | undefined;
  /** A client or admin key, when one is stored; the secret wins when both are. */
  key: ClientKey | undefined;
  /** Hears every read served from the replicas because no primary answered. */
  onReadOnly: (notice: ReadOnlyNotice) => void = () => undefined;
  private tls: { files?: TlsFiles; error?: unknown } = {};
  /** Kept across operations (and settings changes that keep the list), so every request starts at the primary that answered last. */
  private primaries: PrimaryAddresses;

  constructor(private current: ExtensionSettings) {
    this.primaries = new PrimaryAddresses(current.servers);
    this.loadTls();
  }

  get settings(): ExtensionSettings {
    return this.current;
  }

  update(settings: ExtensionSettings): void {
    if (settings.servers.map(formatHostPort).join(',') !== this.primaries.all.map(formatHostPort).join(',')) {
      this.primaries = new PrimaryAddresses(settings.servers);
    }
    this.current = settings;
    this.loadTls();
  }

  /** The primary that answered last. */
  get address(): string {
    return formatHostPort(this.primaries.current);
  }

  /** Every configured primary, for messages. */
  get addresses(): string {
    return this.primaries.describe();
  }

  /**
   * The secret Set Cluster Secret stored belongs to the cluster Start Cluster runs, the
   * dfs.* settings' one: a cluster from dfs.clusters is reached with its own client key.
   */
  private get activeSecret(): Buffer | undefined {
    return this.current.cluster === undefined ? this.secret : undefined;
  }

  /** Whose files uploads go to: dfs.clientId when set, else the client key's id, else the machine's default. */
  get clientId(): string {
    if (!this.current.clientIdFromSettings && !this.activeSecret && this.key?.kind === 'client' && this.key.clientId) {
      return this.key.clientId;
    }
    return this.current.clientId;
  }

  /** How this window authenticates, for the log and messages. */
  get credentialLabel(): string {
    if (this.activeSecret) {
      return 'the cluster secret';
    }
    if (this.key) {
      return this.key.kind === 'client' ? `client key ${this.key.keyId} (client ${this.key.clientId})` : `admin key ${this.key.keyId}`;
    }
    return 'no credential (open protocol)';
  }

  /** A client of the primaries, for everything (writes included); `clientId` names whose files it writes, by default this window's. */
  client(clientId = this.clientId): DfsClient {
    return new DfsClient({
      primaries: this.primaries,
      clientId,
      connectTimeoutMs: PROBE_CONNECT_TIMEOUT_MS,
      security: this.security(),
    });
  }

  /** The replicas, read straight, for when no primary answers. */
  replicas(): ReplicaReads {
    return new ReplicaReads({
      replicas: replicaAddresses({ host: this.primaries.all[0].host, basePort: this.current.basePort, replicas: this.current.replicas }),
      clientId: this.clientId,
      connectTimeoutMs: PROBE_CONNECT_TIMEOUT_MS,
      security: this.security(),
    });
  }

  /** Reads through the primaries, or from the replicas when none answers (telling onReadOnly). */
  reader(): ReadOnlyFallback {
    return new ReadOnlyFallback(this.client(), this.replicas(), (notice) => this.onReadOnly(notice));
  }

  private security(): Security | undefined {
    if (this.tls.error) {
      // Unreadable TLS files: no connection is tried without the protection asked for.
      throw this.tls.error;
    }
    const secret = this.activeSecret;
    const security: Security = { secret, key: secret ? undefined : this.key, tls: this.tls.files };
    return security.secret || security.key || security.tls ? security : undefined;
  }

  private loadTls(): void {
    try {
      // The client checks servers with the CA; the certificate and key are the servers' (Start Cluster).
      const ca = this.current.cluster === undefined ? 'dfs.tlsCaFile' : `the tlsCaFile of "${this.current.cluster}" in dfs.clusters`;
      this.tls = { files: readTlsFiles({ ca: this.current.tlsCaFile }, { cert: 'dfs.tlsCertFile', key: 'dfs.tlsKeyFile', ca }) };
    } catch (error) {
      this.tls = { error };
    }
  }
}
