import {
  Auth,
  Credential,
  DfsError,
  Principal,
  formatChallenge,
  formatResponse,
  formatServerProof,
  newNonce,
  parseChallenge,
  parseReply,
  proofKey,
  replyError,
  verifyResponse,
  verifyServerProof,
} from '../protocol';
import type { Connection } from './connection';

/** The server's side: challenge, check the answer (the cluster secret or a key), prove ourselves. Returns who the peer is. */
export async function acceptHandshake(conn: Connection, secret: Buffer, isRevoked: (keyId: string) => boolean): Promise<Principal> {
  const serverNonce = newNonce();
  await conn.writeLine(formatChallenge(serverNonce));
  // Read like a header, so a client of the report (no newline) is refused at once, not after a timeout.
  const answer = await conn.readHeader();
  const { principal, clientNonce, proof } = verifyResponse(secret, serverNonce, answer.line, isRevoked);
  await conn.writeLine(formatServerProof(proof, serverNonce, clientNonce));
  return principal;
}

/** The client's side, right after connecting. */
export async function offerHandshake(conn: Connection, credential: Credential): Promise<void> {
  const challenge = await conn.readLine(conn.timeouts.headerMs).catch((error: unknown) => {
    throw error instanceof DfsError && error.code === 'TIMEOUT'
      ? new DfsError(
          'AUTH',
          `the server did not ask for authentication: it runs without a cluster secret (drop ${'secret' in credential ? '--secret-file / DFS_SECRET' : '--key-file / DFS_KEY'} here, or start it with the secret)`,
        )
      : error;
  });
  if (!challenge.startsWith(Auth.CHALLENGE)) {
    // A server refusing before any handshake (its connection limit; a standby that knows
    // no leader) says why in a failure line: that is the news, not a missing challenge.
    const refusal = parseReply(challenge);
    if (refusal.code) {
      throw replyError(refusal);
    }
  }
  const serverNonce = parseChallenge(challenge);
  const clientNonce = newNonce();
  await conn.writeLine(formatResponse(credential, serverNonce, clientNonce));
  verifyServerProof(proofKey(credential), serverNonce, clientNonce, await conn.readLine(conn.timeouts.headerMs));
}

/** A reply that turns out to be a challenge means we came without the secret; otherwise the line passes through. */
export function refuseIfChallenged(line: string): string {
  if (line.startsWith(Auth.CHALLENGE)) {
    throw new DfsError(
      'AUTH',
      'this cluster requires authentication: give this client a key (--key-file FILE or DFS_KEY; in VS Code: DFS: Set Client Key) or the cluster secret (--secret-file PATH or DFS_SECRET)',
    );
  }
  return line;
}
