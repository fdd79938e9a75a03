import { createHmac, randomBytes } from 'crypto';
import { DfsError } from './errors';
import { validateClientId } from './names';

/**
 * Keys for clients and admins, derived from the cluster secret so that servers need no
 * key database: a key's secret part is an HMAC of its identity and id under the
 * cluster secret. Whoever holds a key can prove it (the handshake never sends it), a
 * server that knows the cluster secret can check it, and the HMAC cannot be turned
 * back into the cluster secret. A key is revoked by its id.
 *
 *   dfsk1.c.<client id, base64url>.<key id>.<mac>    a client key, bound to one client id
 *   dfsk1.a.-.<key id>.<mac>                         an admin key
 */
export const KEY_VERSION = 'dfsk1';

export type KeyKind = 'client' | 'admin';

export interface ClientKey {
  kind: KeyKind;
  /** The client id a client key is bound to; undefined for an admin key. */
  clientId?: string;
  /** 16 hex digits, random: what a revocation names. */
  keyId: string;
  /** The key's secret part: HMAC-SHA256(cluster secret, identity), hex. */
  mac: string;
}

const KIND_LETTER: Record<KeyKind, string> = { client: 'c', admin: 'a' };

export function keyMac(clusterSecret: Buffer, kind: KeyKind, clientId: string | undefined, keyId: string): string {
  return createHmac('sha256', clusterSecret).update(`${KEY_VERSION}|${kind}|${clientId ?? '-'}|${keyId}`).digest('hex');
}

export function issueKey(clusterSecret: Buffer, kind: KeyKind, clientId?: string): ClientKey {
  if (kind === 'client') {
    validateClientId(clientId ?? '');
  }
  const keyId = randomBytes(8).toString('hex');
  return { kind, clientId: kind === 'client' ? clientId : undefined, keyId, mac: keyMac(clusterSecret, kind, kind === 'client' ? clientId : undefined, keyId) };
}

export function formatKey(key: ClientKey): string {
  const subject = key.kind === 'client' ? Buffer.from(key.clientId!, 'utf8').toString('base64url') : '-';
  return `${KEY_VERSION}.${KIND_LETTER[key.kind]}.${subject}.${key.keyId}.${key.mac}`;
}

export function parseKey(text: string): ClientKey {
  const match = /^dfsk1\.([ca])\.([A-Za-z0-9_-]+|-)\.([0-9a-f]{16})\.([0-9a-f]{64})$/.exec(text.trim());
  if (!match) {
    throw new DfsError('AUTH', 'that is not a DFS key (one line starting "dfsk1.", as "dfs key issue" prints it)');
  }
  const kind: KeyKind = match[1] === 'c' ? 'client' : 'admin';
  if (kind === 'client' && match[2] === '-') {
    throw new DfsError('AUTH', 'that client key names no client id');
  }
  const clientId = kind === 'client' ? validateClientId(Buffer.from(match[2], 'base64url').toString('utf8')) : undefined;
  return { kind, clientId, keyId: match[3], mac: match[4] };
}

/** A key id, or the id inside a whole key: what `dfs key revoke` accepts. */
export function keyIdOf(text: string): string {
  const trimmed = text.trim();
  if (/^[0-9a-f]{16}$/.test(trimmed)) {
    return trimmed;
  }
  return parseKey(trimmed).keyId;
}
