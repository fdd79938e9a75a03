import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DfsConnection } from '../cluster/connection';
import { DFS_SCHEME, dfsPath } from '../model/dfs-uri';
import { unreadableCopyAdvice } from '../model/file-system-errors';
import { formatBytes } from '../model/format';
import { describeError } from '../model/logger';
import type { FileNode } from '../model/tree-model';
import { currentGenerationOf } from '../../server/protocol';
import type { OutputLog } from './output-log';

/** Above this, Open asks before reading a file into an editor. */
const LARGE_OPEN_BYTES = 50 * 1024 * 1024;

export interface FileViews {
  refreshTree(): void;
  filesChanged(clientId: string, names: readonly string[], deleted: boolean): void;
}

/** Open, Download..., Copy Checksum and Delete on a file in the tree. */
export class FileCommands {
  constructor(
    private readonly connection: DfsConnection,
    private readonly views: FileViews,
    private readonly log: OutputLog,
  ) {}

  async open(node: FileNode): Promise<void> {
    if (node.record.size > LARGE_OPEN_BYTES) {
      // An editor reads the whole file into memory, with no progress and no cancel.
      const choice = await vscode.window.showWarningMessage(
        `${node.record.name} is ${formatBytes(node.record.size)}: opening it reads all of it into memory.`,
        { modal: true, detail: 'Download it to a file instead, or open it anyway.' },
        'Download...',
        'Open Anyway',
      );
      if (choice === 'Download...') {
        await this.download(node);
        return;
      }
      if (choice !== 'Open Anyway') {
        return;
      }
    }
    const uri = vscode.Uri.from({ scheme: DFS_SCHEME, path: dfsPath(node.clientId, node.record.name) });
    this.log.info(`open ${uri.toString()}`);
    await vscode.commands.executeCommand('vscode.open', uri, { preview: true });
  }

  async download(node: FileNode): Promise<string | undefined> {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? os.homedir();
    const destination = await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.file(path.join(folder, path.posix.basename(node.record.name))),
      saveLabel: 'Download',
      title: `Download ${node.clientId}/${node.record.name} from DFS`,
    });
    if (!destination) {
      return undefined;
    }
    const label = `${node.clientId}/${node.record.name}`;
    this.log.info(`download ${label} to ${destination.fsPath}`);
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `DFS: downloading ${path.posix.basename(node.record.name)}`, cancellable: true },
        async (progress, token) => {
          const abort = new AbortController();
          const listener = token.onCancellationRequested(() => abort.abort());
          let reported = 0;
          try {
            return await this.connection.client().downloadToFile(node.record.name, destination.fsPath, {
              clientId: node.clientId,
              signal: abort.signal,
              onProgress: (done, total) => {
                const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
                if (percent > reported) {
                  progress.report({ message: `${formatBytes(done)} of ${formatBytes(total)} (${percent}%)`, increment: percent - reported });
                  reported = percent;
                }
              },
            });
          } finally {
            listener.dispose();
          }
        },
      );
      this.log.info(`downloaded ${label}: ${result.size} bytes, sha256 ${result.sha256} verified`);
      await vscode.window.showInformationMessage(`DFS: downloaded ${label} to ${destination.fsPath} (checksum verified).`);
      return destination.fsPath;
    } catch (error) {
      this.log.error(`download of ${label} failed`, error);
      const advice = unreadableCopyAdvice(error);
      await this.showFailure(`DFS: download of ${label} failed: ${describeError(error)}${advice ? `. ${advice}` : ''}`);
      return undefined;
    }
  }

  async copyChecksum(node: FileNode): Promise<void> {
    await vscode.env.clipboard.writeText(node.record.sha256);
    this.log.info(`copied the SHA-256 of ${node.clientId}/${node.record.name}: ${node.record.sha256}`);
    vscode.window.setStatusBarMessage(`DFS: SHA-256 of ${path.posix.basename(node.record.name)} copied`, 3_000);
  }

  async delete(node: FileNode): Promise<boolean> {
    const label = `${node.clientId}/${node.record.name}`;
    const choice = await vscode.window.showWarningMessage(
      `Delete "${label}" from DFS?`,
      { modal: true, detail: `Every copy, on the primary and on each replica, is removed (${formatBytes(node.record.size)}). This cannot be undone.` },
      'Delete',
    );
    if (choice !== 'Delete') {
      return false;
    }
    try {
      // Only the version the user looked at: one stored since then is not deleted blind.
      const receipt = await this.connection.client().delete(node.record.name, { clientId: node.clientId, ifGeneration: node.record.generation });
      this.log.info(`deleted ${label} (generation ${node.record.generation}; the delete is generation ${receipt.generation})`);
      this.views.refreshTree();
      this.views.filesChanged(node.clientId, [node.record.name], true);
      return true;
    } catch (error) {
      this.log.error(`delete of ${label} failed`, error);
      const current = currentGenerationOf(error);
      await this.showFailure(
        current !== undefined
          ? `DFS: ${label} was not deleted: it ${current === null ? 'is already gone' : `was changed since the tree showed it (now generation ${current})`}. The tree is refreshed; look again before deleting.`
          : `DFS: delete of ${label} failed: ${describeError(error)}`,
      );
      this.views.refreshTree();
      return false;
    }
  }

  private async showFailure(message: string): Promise<void> {
    if ((await vscode.window.showErrorMessage(message, 'Show Log')) === 'Show Log') {
      this.log.show();
    }
  }
}
