import { Auth, DfsError, PeerRole, formatChallenge, formatResponse, formatServerProof, newNonce, parseChallenge, verifyResponse, verifyServerProof } from '../protocol';
import type { Connection } from './connection';

/** The server's side: challenge, check the answer, prove ourselves. Returns the peer's role. */
export async function acceptHandshake(conn: Connection, secret: Buffer): Promise<PeerRole> {
  const serverNonce = newNonce();
  await conn.writeLine(formatChallenge(serverNonce));
  // Read like a header, so a client of the report (no newline) is refused at once, not after a timeout.
  const answer = await conn.readHeader();
  const { role, clientNonce } = verifyResponse(secret, serverNonce, answer.line);
  await conn.writeLine(formatServerProof(secret, serverNonce, clientNonce));
  return role;
}

/** The client's side, right after connecting. */
export async function offerHandshake(conn: Connection, secret: Buffer, role: PeerRole): Promise<void> {
  const challenge = await conn.readLine(conn.timeouts.headerMs).catch((error: unknown) => {
    throw error instanceof DfsError && error.code === 'TIMEOUT'
      ? new DfsError('AUTH', 'the server did not ask for authentication: it runs without a cluster secret (drop --secret-file / DFS_SECRET here, or start it with the secret)')
      : error;
  });
  const serverNonce = parseChallenge(challenge);
  const clientNonce = newNonce();
  await conn.writeLine(formatResponse(secret, role, serverNonce, clientNonce));
  verifyServerProof(secret, serverNonce, clientNonce, await conn.readLine(conn.timeouts.headerMs));
}

/** A reply that turns out to be a challenge means we came without the secret; otherwise the line passes through. */
export function refuseIfChallenged(line: string): string {
  if (line.startsWith(Auth.CHALLENGE)) {
    throw new DfsError('AUTH', 'this cluster requires a secret: give the same cluster secret with --secret-file PATH or DFS_SECRET (in VS Code: DFS: Set Cluster Secret)');
  }
  return line;
}
