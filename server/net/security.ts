import type { ClientKey } from '../protocol';

/** TLS material, as file contents; a server needs cert and key, a client at least the CA. */
export interface TlsFiles {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

/**
 * How a node or a client protects its connections: every part is optional. A server
 * with a secret requires authentication; a client presents its key, or the secret
 * (members: servers and operators' tools).
 */
export interface Security {
  secret?: Buffer;
  /** A client or admin key (clients only); the secret wins when both are given. */
  key?: ClientKey;
  tls?: TlsFiles;
}
