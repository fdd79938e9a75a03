import { DfsClient } from '../../server/client/dfs-client';
import type { ExtensionSettings } from '../model/settings';

/** How long a status probe waits: short, because it runs while the user looks at the UI. */
const PROBE_CONNECT_TIMEOUT_MS = 3_000;

/**
 * The current settings and a client made from them. Settings change under a running
 * extension, so nothing else keeps a client: each operation asks here for one.
 */
export class DfsConnection {
  /** The cluster secret, when one is stored; undefined speaks the open protocol. */
  secret: Buffer | undefined;

  constructor(private current: ExtensionSettings) {}

  get settings(): ExtensionSettings {
    return this.current;
  }

  update(settings: ExtensionSettings): void {
    this.current = settings;
  }

  get address(): string {
    return `${this.current.host}:${this.current.port}`;
  }

  client(): DfsClient {
    return new DfsClient({
      host: this.current.host,
      port: this.current.port,
      clientId: this.current.clientId,
      connectTimeoutMs: PROBE_CONNECT_TIMEOUT_MS,
      security: this.secret ? { secret: this.secret } : undefined,
    });
  }
}
