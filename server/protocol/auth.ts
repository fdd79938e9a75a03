import { createHmac, randomBytes, timingSafeEqual } from 'crypto';
import { DfsError } from './errors';

/**
 * Challenge-response with a shared cluster secret. The server speaks first with a
 * fresh nonce; the client answers with an HMAC over both nonces and the role it
 * claims; the server proves it knows the secret too. The secret never crosses the
 * wire, and a recorded answer is worthless against the next nonce.
 */
export const AUTH_VERSION = 'dfs-auth-1';
export const Auth = {
  CHALLENGE: 'AUTH_CHALLENGE',
  RESPONSE: 'AUTH',
  OK: 'AUTH_OK',
  FAILURE: 'AUTH_FAILURE',
} as const;

export type PeerRole = 'client' | 'primary';

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

export function formatResponse(secret: Buffer, role: PeerRole, serverNonce: string, clientNonce: string): string {
  return `${Auth.RESPONSE} ${role} ${clientNonce} ${mac(secret, ['client', role, serverNonce, clientNonce])}`;
}

/** Checks a client's answer; returns the role it proved. */
export function verifyResponse(secret: Buffer, serverNonce: string, line: string): { role: PeerRole; clientNonce: string } {
  const match = /^AUTH (client|primary) ([0-9a-f]{64}) ([0-9a-f]{64})$/.exec(line);
  if (!match) {
    throw new DfsError('AUTH', 'this cluster requires authentication: configure the cluster secret (--secret-file or DFS_SECRET) on this client');
  }
  const [, role, clientNonce, given] = match;
  const expected = mac(secret, ['client', role, serverNonce, clientNonce]);
  if (!timingSafeEqual(Buffer.from(given, 'hex'), Buffer.from(expected, 'hex'))) {
    throw new DfsError('AUTH', 'authentication failed: the cluster secret does not match');
  }
  return { role: role as PeerRole, clientNonce };
}

export function formatServerProof(secret: Buffer, serverNonce: string, clientNonce: string): string {
  return `${Auth.OK} ${mac(secret, ['server', serverNonce, clientNonce])}`;
}

export function verifyServerProof(secret: Buffer, serverNonce: string, clientNonce: string, line: string): void {
  const match = /^AUTH_OK ([0-9a-f]{64})$/.exec(line);
  if (!match) {
    throw new DfsError('AUTH', line.startsWith(Auth.FAILURE) ? `the server refused us: ${line.slice(Auth.FAILURE.length + 1).replace(/^AUTH /, '')}` : 'the server did not confirm authentication');
  }
  const expected = mac(secret, ['server', serverNonce, clientNonce]);
  if (!timingSafeEqual(Buffer.from(match[1], 'hex'), Buffer.from(expected, 'hex'))) {
    throw new DfsError('AUTH', 'the server does not know the cluster secret: refusing to talk to it');
  }
}
