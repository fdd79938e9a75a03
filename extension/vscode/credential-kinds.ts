import { ClientKey, parseKey } from '../../server/protocol';
import { clientKeyStorageKey } from '../model/cluster-choice';
import type { CredentialKind } from './stored-credential';

const MIN_SECRET_LENGTH = 16;

export const CLUSTER_SECRET: CredentialKind<Buffer> = {
  storageKey: 'dfs.clusterSecret',
  what: 'cluster secret',
  title: 'DFS: Set Cluster Secret',
  prompt: "The secret every server of the cluster was started with (--secret-file or DFS_SECRET). It is kept in VS Code's secret storage.",
  normalize: (text) => text,
  problem: (text) => (text.length < MIN_SECRET_LENGTH ? `The cluster secret must be at least ${MIN_SECRET_LENGTH} characters (for example the output of: openssl rand -hex 32).` : undefined),
  parse: (text) => Buffer.from(text, 'utf8'),
  storedNote: () => 'cluster secret stored; connections now authenticate as a member, and Start Cluster starts servers that require it',
  forgottenNote: 'cluster secret forgotten; connections use a client key if one is set, otherwise the open protocol',
};

/** The client key of the dfs.* connection, or of one cluster of dfs.clusters: each keeps its own. */
export function clientKeyFor(clusterName: string | undefined): CredentialKind<ClientKey> {
  if (clusterName === undefined) {
    return CLIENT_KEY;
  }
  return {
    ...CLIENT_KEY,
    storageKey: clientKeyStorageKey(clusterName),
    title: `DFS: Set Client Key for "${clusterName}"`,
    forgottenNote: `client key of "${clusterName}" forgotten; connections to it use the open protocol`,
  };
}

export const CLIENT_KEY: CredentialKind<ClientKey> = {
  storageKey: clientKeyStorageKey(undefined),
  what: 'client key',
  title: 'DFS: Set Client Key',
  prompt: "The key an administrator issued you with \"dfs key issue --client ID\" (one line starting dfsk1.). It is kept in VS Code's secret storage.",
  placeHolder: 'dfsk1.c.…',
  normalize: (text) => text.trim(),
  problem: (text) => {
    try {
      parseKey(text);
      return undefined;
    } catch (error) {
      return `${(error as Error).message}.`;
    }
  },
  parse: parseKey,
  storedNote: (key) =>
    key.kind === 'client'
      ? `client key ${key.keyId} stored: connections authenticate as client ${key.clientId}, and uploads go to its files unless dfs.clientId names another`
      : `admin key ${key.keyId} stored: connections authenticate as an administrator`,
  forgottenNote: 'client key forgotten; connections use the cluster secret if one is set, otherwise the open protocol',
};
