import type { ClientRecord, FileRecord } from '../../server/protocol/records';
import { counted, formatAge, formatBytes } from './format';

/** Menus in package.json match these through `viewItem == ...`; the manifest test keeps them in step. */
export const ContextValue = {
  client: 'dfsClient',
  folder: 'dfsFolder',
  file: 'dfsFile',
} as const;

export interface ClientNode {
  kind: 'client';
  id: string;
  clientId: string;
  own: boolean;
  label: string;
  description: string;
  tooltip: string;
  contextValue: typeof ContextValue.client;
}

export interface FolderNode {
  kind: 'folder';
  id: string;
  clientId: string;
  /** The folder's path inside the client, without a trailing slash. */
  path: string;
  label: string;
  description: string;
  children: (FolderNode | FileNode)[];
  contextValue: typeof ContextValue.folder;
}

export interface FileNode {
  kind: 'file';
  id: string;
  clientId: string;
  record: FileRecord;
  label: string;
  description: string;
  tooltip: string;
  /** Fewer copies exist than the cluster is configured to keep. */
  underReplicated: boolean;
  contextValue: typeof ContextValue.file;
}

export type DfsNode = ClientNode | FolderNode | FileNode;

/**
 * One node per client, the user's own first even before it stores anything, so the
 * place an upload lands is always visible.
 */
export function buildClientNodes(ownClientId: string, clients: readonly ClientRecord[]): ClientNode[] {
  const byId = new Map(clients.map((client) => [client.clientId, client]));
  if (!byId.has(ownClientId)) {
    byId.set(ownClientId, { clientId: ownClientId, files: 0, bytes: 0 });
  }
  const others = [...byId.values()].filter((client) => client.clientId !== ownClientId).sort((a, b) => a.clientId.localeCompare(b.clientId));
  return [byId.get(ownClientId)!, ...others].map((client) => {
    const own = client.clientId === ownClientId;
    const summary = `${counted(client.files, 'file')}, ${formatBytes(client.bytes)}`;
    return {
      kind: 'client',
      id: `client:${client.clientId}`,
      clientId: client.clientId,
      own,
      label: client.clientId,
      description: own ? `you · ${summary}` : summary,
      tooltip: `Client ${client.clientId}${own ? ' (your client id, where uploads go)' : ''}\n${summary}`,
      contextValue: ContextValue.client,
    };
  });
}

/**
 * Turns a client's flat list of names into folders and files: `a/b/c.txt` becomes
 * folder a, folder b, file c.txt. Folders sort before files, like the Explorer.
 */
export function buildFileTree(clientId: string, files: readonly FileRecord[], expectedCopies: number, nowMs: number): (FolderNode | FileNode)[] {
  const root: FolderNode = folderNode(clientId, '');
  const folders = new Map<string, FolderNode>([['', root]]);
  const folderFor = (folderPath: string): FolderNode => {
    const existing = folders.get(folderPath);
    if (existing) {
      return existing;
    }
    const slash = folderPath.lastIndexOf('/');
    const parent = folderFor(slash === -1 ? '' : folderPath.slice(0, slash));
    const created = folderNode(clientId, folderPath);
    parent.children.push(created);
    folders.set(folderPath, created);
    return created;
  };
  for (const record of files) {
    const slash = record.name.lastIndexOf('/');
    folderFor(slash === -1 ? '' : record.name.slice(0, slash)).children.push(fileNode(clientId, record, expectedCopies, nowMs));
  }
  for (const folder of folders.values()) {
    folder.children.sort(byKindThenLabel);
    folder.description = describeFolder(folder);
  }
  return root.children;
}

export function fileNode(clientId: string, record: FileRecord, expectedCopies: number, nowMs: number): FileNode {
  const slash = record.name.lastIndexOf('/');
  const copies = record.copies;
  const underReplicated = copies !== undefined && copies < expectedCopies;
  const copiesText = copies === undefined ? 'unknown' : `${copies} of ${expectedCopies}${underReplicated ? ' (fewer than configured; the primary repairs missing copies when replicas come back)' : ''}`;
  return {
    kind: 'file',
    id: `file:${clientId}/${record.name}`,
    clientId,
    record,
    label: slash === -1 ? record.name : record.name.slice(slash + 1),
    description: `${formatBytes(record.size)} · ${formatAge(record.mtimeMs, nowMs)}${underReplicated ? ` · ${copies}/${expectedCopies} copies` : ''}`,
    tooltip: [
      `${clientId}/${record.name}`,
      `Size: ${formatBytes(record.size)} (${record.size.toLocaleString('en-US')} bytes)`,
      `Stored: ${new Date(record.mtimeMs).toISOString()} (${formatAge(record.mtimeMs, nowMs)})`,
      `Generation: ${record.generation}`,
      `SHA-256: ${record.sha256}`,
      `Copies: ${copiesText}`,
    ].join('\n'),
    underReplicated,
    contextValue: ContextValue.file,
  };
}

/** Copies a file should have: the primary's plus one per configured replica. */
export function expectedCopies(replicaCount: number): number {
  return 1 + replicaCount;
}

function folderNode(clientId: string, folderPath: string): FolderNode {
  const slash = folderPath.lastIndexOf('/');
  return {
    kind: 'folder',
    id: `folder:${clientId}/${folderPath}`,
    clientId,
    path: folderPath,
    label: slash === -1 ? folderPath : folderPath.slice(slash + 1),
    description: '',
    children: [],
    contextValue: ContextValue.folder,
  };
}

function describeFolder(folder: FolderNode): string {
  let files = 0;
  let bytes = 0;
  const visit = (node: FolderNode | FileNode): void => {
    if (node.kind === 'file') {
      files++;
      bytes += node.record.size;
    } else {
      node.children.forEach(visit);
    }
  };
  folder.children.forEach(visit);
  return `${counted(files, 'file')}, ${formatBytes(bytes)}`;
}

function byKindThenLabel(a: FolderNode | FileNode, b: FolderNode | FileNode): number {
  if (a.kind !== b.kind) {
    return a.kind === 'folder' ? -1 : 1;
  }
  return a.label.localeCompare(b.label);
}

/**
 * Whether a stored name matches the tree's filter: every word of it appears in the
 * name's path, ignoring case; `*` and `?` in a word match any run of characters and any
 * one character. An empty filter matches everything.
 */
export function matchesFilter(name: string, filter: string): boolean {
  const terms = filter.trim().toLowerCase().split(/\s+/).filter((term) => term.length > 0);
  const path = name.toLowerCase();
  return terms.every((term) => new RegExp(term.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')).test(path));
}

/** The files a filter keeps; their folders follow from their names when the tree is built from them. */
export function filterRecords(files: readonly FileRecord[], filter: string): FileRecord[] {
  return filter.trim() === '' ? [...files] : files.filter((record) => matchesFilter(record.name, filter));
}

/** What the tree says above its files while a filter narrows it. */
export function filterMessage(filter: string): string {
  return `Showing only files whose path matches "${filter.trim()}". Clear Filter (in this view's title bar) shows every file again.`;
}
