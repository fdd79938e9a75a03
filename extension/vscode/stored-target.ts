import * as vscode from 'vscode';
import { DFS_SCHEME, dfsPath, parseDfsPath, versionQuery } from '../model/dfs-uri';
import type { DfsNode } from '../model/tree-model';

/** A stored file a command acts on: from a tree row, or from a `dfs:` editor. */
export interface StoredFile {
  clientId: string;
  name: string;
}

/** The `dfs:` address of a stored file's current version, or of a kept one. */
export function storedUri(file: StoredFile, generation?: number): vscode.Uri {
  return vscode.Uri.from({ scheme: DFS_SCHEME, path: dfsPath(file.clientId, file.name), query: generation === undefined ? '' : versionQuery(generation) });
}

/**
 * The stored file behind a command's argument: a file row of the tree, a `dfs:` URI
 * (editor title), or with neither the active editor when it shows a stored file.
 */
export function storedFileOf(target: unknown): StoredFile | undefined {
  if (isDfsNode(target)) {
    return target.kind === 'file' ? { clientId: target.clientId, name: target.record.name } : undefined;
  }
  const uri = target instanceof vscode.Uri ? target : target === undefined ? vscode.window.activeTextEditor?.document.uri : undefined;
  if (uri?.scheme !== DFS_SCHEME) {
    return undefined;
  }
  const { clientId, name } = parseDfsPath(uri.path);
  return name ? { clientId, name } : undefined;
}

export function isDfsNode(value: unknown): value is DfsNode {
  const kind = (value as { kind?: unknown } | undefined)?.kind;
  return typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string' && (kind === 'client' || kind === 'folder' || kind === 'file');
}

/** "alice/docs/a.txt". */
export function labelOf(file: StoredFile): string {
  return `${file.clientId}/${file.name}`;
}
