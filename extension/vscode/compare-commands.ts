import { promises as fs } from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DfsConnection } from '../cluster/connection';
import { localSide, openDiff, storedSide } from './diff-editor';
import type { OutputLog } from './output-log';
import { StoredFile, labelOf, storedFileOf } from './stored-target';

/**
 * Compare with Local (a stored file against a file on this machine) and Compare with DFS
 * (a local file against the stored file of the same name), both in VS Code's diff
 * editor with the stored side on the left.
 */
export class CompareCommands {
  constructor(
    private readonly connection: DfsConnection,
    private readonly log: OutputLog,
  ) {}

  /** From the tree: the workspace file at the same relative path when there is one, or one the user picks. */
  async compareWithLocal(target?: unknown): Promise<vscode.Uri | undefined> {
    const file = storedFileOf(target);
    if (!file) {
      await vscode.window.showInformationMessage('DFS: Compare with Local works on a stored file: right-click one in the DFS view.');
      return undefined;
    }
    const local = await this.pickLocal(file);
    if (!local) {
      return undefined;
    }
    await this.diff(file, local);
    return local;
  }

  /** From the Explorer or a local editor: the stored file of the same workspace-relative path (or, failing that, the same base name) in the configured client. */
  async compareWithDfs(target?: unknown): Promise<StoredFile | undefined> {
    const local = target instanceof vscode.Uri ? target : vscode.window.activeTextEditor?.document.uri;
    if (!local || local.scheme !== 'file') {
      await vscode.window.showInformationMessage('DFS: Compare with DFS works on a local file: right-click one in the Explorer, or run it from the title of its editor.');
      return undefined;
    }
    const clientId = this.connection.clientId;
    const stored = new Set((await this.connection.reader().files(clientId)).map((record) => record.name));
    const candidates = [...new Set([workspaceRelative(local), path.basename(local.fsPath)].filter((name): name is string => name !== undefined))];
    const name = candidates.find((candidate) => stored.has(candidate));
    if (!name) {
      await vscode.window.showWarningMessage(
        `DFS: ${candidates.map((candidate) => `"${candidate}"`).join(' or ')} is not stored for client ${clientId}, so there is nothing to compare with. Upload it with "Upload to DFS" first, or check dfs.clientId.`,
      );
      return undefined;
    }
    const file = { clientId, name };
    await this.diff(file, local);
    return file;
  }

  private async pickLocal(file: StoredFile): Promise<vscode.Uri | undefined> {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const sameName = folder ? path.join(folder, ...file.name.split('/')) : undefined;
    if (sameName && (await isFile(sameName))) {
      const choice = await vscode.window.showQuickPick(
        [
          { label: `$(file) ${file.name}`, description: 'the workspace file at the same path', uri: vscode.Uri.file(sameName) },
          { label: '$(folder-opened) Choose a File...', description: 'any file on this machine', uri: undefined },
        ],
        { title: `Compare ${labelOf(file)} with` },
      );
      if (!choice) {
        return undefined;
      }
      if (choice.uri) {
        return choice.uri;
      }
    }
    const picked = await vscode.window.showOpenDialog({
      canSelectFiles: true,
      canSelectFolders: false,
      canSelectMany: false,
      openLabel: 'Compare',
      title: `Compare ${labelOf(file)} with`,
      defaultUri: folder ? vscode.Uri.file(folder) : undefined,
    });
    return picked?.[0];
  }

  private async diff(file: StoredFile, local: vscode.Uri): Promise<void> {
    this.log.info(`compare ${labelOf(file)} with ${local.fsPath}`);
    await openDiff(storedSide(file), localSide(local));
  }
}

/** The path below the workspace folder holding `uri`, with `/` between folders; undefined outside every workspace folder. */
function workspaceRelative(uri: vscode.Uri): string | undefined {
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    const relative = path.relative(folder.uri.fsPath, uri.fsPath);
    if (relative && !relative.startsWith('..') && !path.isAbsolute(relative)) {
      return relative.split(path.sep).join('/');
    }
  }
  return undefined;
}

async function isFile(fsPath: string): Promise<boolean> {
  return (await fs.stat(fsPath).catch(() => undefined))?.isFile() ?? false;
}
