import * as path from 'path';
import { counted, formatBytes } from './format';
import type { DfsNode, FileNode, FolderNode } from './tree-model';

/** One stored file a tree action works on, and where it goes below a local folder. */
export interface PlannedFile {
  clientId: string;
  name: string;
  size: number;
  generation: number;
  /** Relative to the chosen local folder, with `/` between folders. */
  relativePath: string;
}

export interface SelectionPlan {
  files: PlannedFile[];
  bytes: number;
  /** Two selected files that would land on the same local path: a download refuses these. */
  collisions: { relativePath: string; names: string[] }[];
}

/**
 * The files behind a tree selection: a file is itself, a folder is every file under it
 * (kept below a folder of its own name), client rows are left out. A file or folder
 * inside a selected folder is counted once, through that folder. A selection spanning
 * several clients puts each client's files below a folder named after the client.
 */
export function planSelection(nodes: readonly DfsNode[]): SelectionPlan {
  const picked = dedupe(nodes.filter((node): node is FileNode | FolderNode => node.kind !== 'client'));
  const several = new Set(picked.map((node) => node.clientId)).size > 1;
  const files: PlannedFile[] = [];
  const add = (file: FileNode, relative: string): void => {
    files.push({ clientId: file.clientId, name: file.record.name, size: file.record.size, generation: file.record.generation, relativePath: several ? `${file.clientId}/${relative}` : relative });
  };
  for (const node of picked) {
    if (node.kind === 'file') {
      add(node, path.posix.basename(node.record.name));
    } else {
      const base = path.posix.dirname(node.path) === '.' ? '' : `${path.posix.dirname(node.path)}/`;
      for (const file of filesUnder(node)) {
        add(file, file.record.name.slice(base.length));
      }
    }
  }
  const byPath = new Map<string, string[]>();
  for (const file of files) {
    byPath.set(file.relativePath, [...(byPath.get(file.relativePath) ?? []), `${file.clientId}/${file.name}`]);
  }
  const collisions = [...byPath].filter(([, names]) => names.length > 1).map(([relativePath, names]) => ({ relativePath, names }));
  return { files, bytes: files.reduce((sum, file) => sum + file.size, 0), collisions };
}

/** "3 files (1.2 KiB)". */
export function describeSelection(plan: SelectionPlan): string {
  return `${counted(plan.files.length, 'file')} (${formatBytes(plan.bytes)})`;
}

/** Every file below a folder, depth first. */
export function filesUnder(folder: FolderNode): FileNode[] {
  return folder.children.flatMap((child) => (child.kind === 'file' ? [child] : filesUnder(child)));
}

/** The clicked node and the rest of the selection, as VS Code passes them to a tree command; the clicked one alone when it is not among the selected. */
export function selectedNodes(clicked: DfsNode | undefined, selected: readonly DfsNode[] | undefined, focusedSelection: readonly DfsNode[] = []): DfsNode[] {
  if (selected && selected.length > 0 && (!clicked || selected.some((node) => node.id === clicked.id))) {
    return [...selected];
  }
  if (clicked) {
    return [clicked];
  }
  return [...focusedSelection];
}

function dedupe(nodes: readonly (FileNode | FolderNode)[]): (FileNode | FolderNode)[] {
  const unique = [...new Map(nodes.map((node) => [node.id, node])).values()];
  const folders = unique.filter((node): node is FolderNode => node.kind === 'folder');
  const inside = (node: FileNode | FolderNode, folder: FolderNode): boolean => {
    const own = node.kind === 'file' ? node.record.name : node.path;
    return node !== folder && node.clientId === folder.clientId && own.startsWith(`${folder.path}/`);
  };
  return unique.filter((node) => !folders.some((folder) => inside(node, folder)));
}
