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

/** The query of a `dfs:` address that names a kept version instead of the current one: `?generation=N`. */
export function versionQuery(generation: number): string {
  return `generation=${generation}`;
}

/** The generation a `dfs:` address's query names; undefined for the current version. */
export function parseVersionQuery(query: string): number | undefined {
  const match = /(?:^|&)generation=([^&]*)/.exec(query);
  if (!match) {
    return undefined;
  }
  if (!/^[1-9]\d*$/.test(match[1])) {
    throw new DfsError('BAD_HEADER', `a dfs: address names generation ${JSON.stringify(match[1])}; expected a whole number`);
  }
  return Number(match[1]);
}
