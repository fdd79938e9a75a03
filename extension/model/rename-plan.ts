import { validateFileName } from '../../server/protocol/names';
import { checkNewName } from './name-input';
import { filesUnder } from './selection-plan';
import type { FileNode, FolderNode } from './tree-model';

/** One stored file to rename: from, to, and the generation the tree showed (renamed only while still current). */
export interface RenameStep {
  from: string;
  to: string;
  generation: number;
}

/**
 * What an input box for a new folder path says: the server's name rules, not the
 * folder itself or a place inside it, and no file below it landing on a stored name.
 */
export function checkNewFolderName(typed: string, folder: FolderNode, stored: ReadonlySet<string>): string | undefined {
  const target = typed.trim().replace(/\/+$/, '');
  if (target === folder.path) {
    return 'That is the current folder; type another path.';
  }
  try {
    validateFileName(target);
  } catch (error) {
    return `${(error as Error).message}.`;
  }
  if (target.startsWith(`${folder.path}/`)) {
    return `"${target}" is inside "${folder.path}"; a folder cannot move into itself.`;
  }
  if (stored.has(target)) {
    return `"${target}" is a stored file; choose a path that is not.`;
  }
  const taken = renameSteps(folder, target).find((step) => stored.has(step.to));
  return taken ? `"${taken.to}" is already stored; choose a folder where none of the ${filesUnder(folder).length} files' names are taken.` : undefined;
}

/** The renames that move a file, or every file below a folder, to `target` (a folder keeps its files' paths below it). */
export function renameSteps(node: FileNode | FolderNode, target: string): RenameStep[] {
  const to = target.trim().replace(/\/+$/, '');
  if (node.kind === 'file') {
    return [{ from: node.record.name, to, generation: node.record.generation }];
  }
  return filesUnder(node).map((file) => ({ from: file.record.name, to: `${to}/${file.record.name.slice(node.path.length + 1)}`, generation: file.record.generation }));
}

/** The input box's check for either kind of node. */
export function checkRenameTarget(typed: string, node: FileNode | FolderNode, stored: ReadonlySet<string>): string | undefined {
  return node.kind === 'file' ? checkNewName(typed, node.record.name, stored) : checkNewFolderName(typed, node, stored);
}
