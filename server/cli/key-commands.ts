import { loadSecret } from '../config/security-settings';
import { Settings } from '../config/settings';
import { DfsError, formatKey, issueKey, keyIdOf, validateClientId } from '../protocol';
import { clientFor } from './client-commands';

/**
 * `dfs key issue --client ID` / `--admin`: prints a new key on standard output, one
 * line. Needs the cluster secret (the key is derived from it, so no server has to
 * learn of it), never contacts a server.
 */
export function issueKeyCommand(settings: Settings, clientGiven: boolean, admin: boolean, env: NodeJS.ProcessEnv = process.env): void {
  const secret = loadSecret(settings, env);
  if (!secret) {
    throw new DfsError('AUTH', 'dfs key issue needs the cluster secret it derives keys from: --secret-file PATH or DFS_SECRET');
  }
  if (admin === clientGiven) {
    throw new DfsError('BAD_HEADER', 'dfs key issue needs either --client ID (a key for that client only) or --admin (a key for every client, status and scrub)');
  }
  const key = admin ? issueKey(secret, 'admin') : issueKey(secret, 'client', validateClientId(settings.client));
  process.stdout.write(formatKey(key) + '\n');
  process.stderr.write(
    `${admin ? 'admin key' : `key for client ${key.clientId}`} ${key.keyId}: give it to ${admin ? 'the admin' : 'that client'} (--key-file FILE or DFS_KEY; in VS Code: DFS: Set Client Key); revoke it with: dfs key revoke ${key.keyId}\n`,
  );
}

/** `dfs key revoke KEY|KEY_ID`: every server refuses the key from now on (the primary tells the replicas). */
export async function revokeKeyCommand(settings: Settings, given: string | undefined): Promise<void> {
  if (!given) {
    throw new DfsError('BAD_HEADER', 'dfs key revoke needs the key, or its id (the 16 hex digits "dfs key issue" printed)');
  }
  const keyId = keyIdOf(given);
  const client = clientFor(settings);
  const outcome = await client.revoke(keyId);
  process.stdout.write(`revoked key ${keyId}: refused by the primary and by ${outcome.replicas} of ${outcome.of} replicas now; the others refuse it as soon as the primary reaches them\n`);
}
