import { DfsError } from '../../server/protocol';

export const DFS_SCHEME = 'dfs';

/** `dfs:/<client id>/<stored name>`: the client comes first so every client's files can be opened. */
export function dfsPath(clientId: string, name: string): string {
  return `/${clientId}/${name}`;
}

export function parseDfsPath(uriPath: string): { clientId: string; name: string } {
  const trimmed = uriPath.replace(/^\/+/, '');
  const slash = trimmed.indexOf('/');
  if (trimmed.length === 0) {
    throw new DfsError('BAD_FILE_NAME', 'a dfs: address needs a client id');
  }
  return slash === -1 ? { clientId: trimmed, name: '' } : { clientId: trimmed.slice(0, slash), name: trimmed.slice(slash + 1).replace(/\/+$/, '') };
}
