/** TLS material, as file contents; a server needs cert and key, a client at least the CA. */
export interface TlsFiles {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

/** How a node or a client protects its connections: both parts are optional. */
export interface Security {
  secret?: Buffer;
  tls?: TlsFiles;
}
