import { createHmac, randomBytes, timingSafeEqual } from 'crypto';
import { DfsError } from './errors';
import { ClientKey, keyMac, parseKey } from './keys';

/**
 * Challenge-response, with the cluster secret (members: servers and operators) or with
 * a key derived from it (clients and admins). The server speaks first with a fresh
 * nonce; the client answers with an HMAC over both nonces under what it holds; the
 * server proves it knows the same. Nothing secret crosses the wire, and a recorded
 * answer is worthless against the next nonce.
 */
export const AUTH_VERSION = 'dfs-auth-1';
export const Auth = {
  CHALLENGE: 'AUTH_CHALLENGE',
  RESPONSE: 'AUTH',
  OK: 'AUTH_OK',
  FAILURE: 'AUTH_FAILURE',
} as const;

export type PeerRole = 'client' | 'primary';

/** Who a connection proved to be. */
export type Principal =
  /** No cluster secret is configured: the report's open protocol (loopback only). */
  | { kind: 'open' }
  /** Holds the cluster secret: a server, or an operator's tool. */
  | { kind: 'member'; role: PeerRole }
  | { kind: 'client'; clientId: string; keyId: string }
  | { kind: 'admin'; keyId: string };

/** What a client presents: the cluster secret, or a key. */
export type Credential = { secret: Buffer; role: PeerRole } | { key: ClientKey };

const NONCE_BYTES = 32;

export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString('hex');
}

function mac(secret: Buffer, parts: string[]): string {
  return createHmac('sha256', secret).update([AUTH_VERSION, ...parts].join('|')).digest('hex');
}

export function formatChallenge(serverNonce: string): string {
  return `${Auth.CHALLENGE} ${AUTH_VERSION} ${serverNonce}`;
}

export function parseChallenge(line: string): string {
  const match = /^AUTH_CHALLENGE dfs-auth-1 ([0-9a-f]{64})$/.exec(line);
  if (!match) {
    throw new DfsError('AUTH', 'the server sent no valid authentication challenge');
  }
  return match[1];
}

/** The key both ends prove themselves with: the cluster secret, or the key's secret part. */
export function proofKey(credential: Credential): Buffer {
  return 'secret' in credential ? credential.secret : Buffer.from(credential.key.mac, 'hex');
}

export function formatResponse(credential: Credential, serverNonce: string, clientNonce: string): string {
  if ('secret' in credential) {
    return `${Auth.RESPONSE} ${credential.role} ${clientNonce} ${mac(credential.secret, ['client', credential.role, serverNonce, clientNonce])}`;
  }
  const { key } = credential;
  const subject = key.kind === 'client' ? Buffer.from(key.clientId!, 'utf8').toString('base64url') : '-';
  const answer = mac(proofKey(credential), ['client', 'key', serverNonce, clientNonce]);
  return `${Auth.RESPONSE} key ${key.kind === 'client' ? 'c' : 'a'} ${subject} ${key.keyId} ${clientNonce} ${answer}`;
}

export interface VerifiedResponse {
  principal: Principal;
  clientNonce: string;
  /** What the server proves itself with in return. */
  proof: Buffer;
}

/** Checks a client's answer against the cluster secret; `isRevoked` names the key ids no longer honoured. */
export function verifyResponse(secret: Buffer, serverNonce: string, line: string, isRevoked: (keyId: string) => boolean = () => false): VerifiedResponse {
  const member = /^AUTH (client|primary) ([0-9a-f]{64}) ([0-9a-f]{64})$/.exec(line);
  if (member) {
    const [, role, clientNonce, given] = member;
    if (!sameHex(given, mac(secret, ['client', role, serverNonce, clientNonce]))) {
      throw new DfsError('AUTH', 'authentication failed: the cluster secret does not match');
    }
    return { principal: { kind: 'member', role: role as PeerRole }, clientNonce, proof: secret };
  }
  const keyed = /^AUTH key ([ca]) ([A-Za-z0-9_-]+|-) ([0-9a-f]{16}) ([0-9a-f]{64}) ([0-9a-f]{64})$/.exec(line);
  if (!keyed) {
    throw new DfsError('AUTH', 'this cluster requires authentication: give this client a key (--key-file or DFS_KEY; "dfs key issue" makes one) or the cluster secret');
  }
  const [, letter, subject, keyId, clientNonce, given] = keyed;
  let key: ClientKey;
  try {
    const kind = letter === 'c' ? 'client' : 'admin';
    const clientId = kind === 'client' ? Buffer.from(subject, 'base64url').toString('utf8') : undefined;
    key = parseKey(`dfsk1.${letter}.${subject}.${keyId}.${keyMac(secret, kind, clientId, keyId)}`);
  } catch {
    throw new DfsError('AUTH', 'authentication failed: the key is malformed');
  }
  const proof = Buffer.from(key.mac, 'hex');
  if (!sameHex(given, mac(proof, ['client', 'key', serverNonce, clientNonce]))) {
    throw new DfsError('AUTH', 'authentication failed: this key was not issued for this cluster (or it was altered)');
  }
  if (isRevoked(keyId)) {
    throw new DfsError('AUTH', `authentication failed: key ${keyId} has been revoked; ask for a new one`);
  }
  const principal: Principal = key.kind === 'client' ? { kind: 'client', clientId: key.clientId!, keyId } : { kind: 'admin', keyId };
  return { principal, clientNonce, proof };
}

export function formatServerProof(proof: Buffer, serverNonce: string, clientNonce: string): string {
  return `${Auth.OK} ${mac(proof, ['server', serverNonce, clientNonce])}`;
}

export function verifyServerProof(proof: Buffer, serverNonce: string, clientNonce: string, line: string): void {
  const match = /^AUTH_OK ([0-9a-f]{64})$/.exec(line);
  if (!match) {
    throw new DfsError('AUTH', line.startsWith(Auth.FAILURE) ? `the server refused us: ${line.slice(Auth.FAILURE.length + 1).replace(/^AUTH /, '')}` : 'the server did not confirm authentication');
  }
  if (!sameHex(match[1], mac(proof, ['server', serverNonce, clientNonce]))) {
    throw new DfsError('AUTH', 'the server does not know the cluster secret: refusing to talk to it');
  }
}

function sameHex(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}
