import * as path from 'path';
import * as vscode from 'vscode';
import { StoredFile, labelOf, storedUri } from './stored-target';

/** One side of VS Code's diff editor: what it reads, and how the title names it. */
export interface DiffSide {
  uri: vscode.Uri;
  label: string;
}

/** A stored file's current version, named by its client and path: "alice/a.txt (DFS)". */
export function storedSide(file: StoredFile): DiffSide {
  return { uri: storedUri(file), label: `${labelOf(file)} (DFS)` };
}

/** A version from Show Versions, named by its generation; the current one is read as the file itself. */
export function versionSide(file: StoredFile, generation: number, current: boolean): DiffSide {
  return { uri: storedUri(file, current ? undefined : generation), label: `${path.posix.basename(file.name)} (generation ${generation})` };
}

/** A file on this machine: "a.txt (local)". */
export function localSide(uri: vscode.Uri): DiffSide {
  return { uri, label: `${path.basename(uri.fsPath)} (local)` };
}

/**
 * Every diff the extension opens (Compare with Local, Compare with DFS, the versions'
 * Compare, a save or sync conflict's Compare): the stored side on the left, the title
 * "left ↔ right". A `dfs:` side is read through the file system provider, so each
 * gets its reads' checks and retry.
 */
export async function openDiff(left: DiffSide, right: DiffSide): Promise<void> {
  await vscode.commands.executeCommand('vscode.diff', left.uri, right.uri, `${left.label} ↔ ${right.label}`);
}
