import * as vscode from 'vscode';
import type { DfsConnection } from '../cluster/connection';
import { counted, formatBytes } from '../model/format';
import { describeError } from '../model/logger';
import { VersionAction, VersionItem, buildVersionList, versionActions } from '../model/version-list';
import { UploadReceipt, VersionInfo, toDfsError } from '../../server/protocol';
import { localSide, openDiff, versionSide } from './diff-editor';
import type { FileViews } from './file-commands';
import type { OutputLog } from './output-log';
import { StoredFile, labelOf, storedFileOf, storedUri } from './stored-target';

/** What Show Versions did, for whoever runs it as a command (tests, other commands). */
export interface VersionOutcome {
  action: VersionAction;
  generation: number;
  receipt?: UploadReceipt;
}

/**
 * Show Versions: a quick pick of a stored file's kept versions (time, size, short
 * checksum), then what to do with the one picked: open it read-only, compare it with the
 * current version or a local file, or restore it (a new version with its bytes).
 */
export class VersionCommands {
  constructor(
    private readonly connection: DfsConnection,
    private readonly views: FileViews,
    private readonly log: OutputLog,
  ) {}

  async showVersions(target?: unknown): Promise<VersionOutcome | undefined> {
    const file = storedFileOf(target);
    if (!file) {
      await vscode.window.showInformationMessage('DFS: Show Versions works on a stored file: right-click one in the DFS view, or run it from the title of an editor showing one.');
      return undefined;
    }
    const label = labelOf(file);
    let versions: VersionInfo[];
    try {
      versions = await this.connection.client().versions(file.name, file.clientId);
    } catch (error) {
      if (toDfsError(error).code !== 'NOT_FOUND') {
        throw error;
      }
      versions = [];
    }
    const list = buildVersionList(label, versions, Date.now());
    this.log.info(`versions of ${label}: ${versions.map((version) => `${version.generation}${version.current ? ' (current)' : ''}`).join(', ') || 'none'}`);
    if (list.deleted) {
      await vscode.window.showWarningMessage(`DFS: ${list.title}.`);
      this.views.refreshTree();
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(list.items, { title: list.title, placeHolder: 'Pick a version to open, compare or restore', matchOnDescription: true, matchOnDetail: true });
    if (!picked) {
      return undefined;
    }
    const action = await vscode.window.showQuickPick(versionActions(picked), { title: `${label}, generation ${picked.generation}${picked.current ? ' (current)' : ''}` });
    if (!action) {
      return undefined;
    }
    switch (action.action) {
      case 'open':
        await vscode.commands.executeCommand('vscode.open', storedUri(file, picked.current ? undefined : picked.generation), { preview: true });
        break;
      case 'compareWithCurrent':
        await openDiff(versionSide(file, picked.generation, false), { uri: storedUri(file), label: 'current' });
        break;
      case 'compareWithLocal': {
        const local = await vscode.window.showOpenDialog({ canSelectFiles: true, canSelectFolders: false, canSelectMany: false, openLabel: 'Compare', title: `Compare ${label} generation ${picked.generation} with` });
        if (!local?.[0]) {
          return undefined;
        }
        await openDiff(versionSide(file, picked.generation, picked.current), localSide(local[0]));
        break;
      }
      case 'restore':
        return { action: action.action, generation: picked.generation, receipt: await this.restore(file, picked) };
    }
    return { action: action.action, generation: picked.generation };
  }

  private async restore(file: StoredFile, item: VersionItem): Promise<UploadReceipt | undefined> {
    const label = labelOf(file);
    try {
      const receipt = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `DFS: restoring ${label} generation ${item.generation}` }, () =>
        this.connection.client().restore(file.name, item.generation, file.clientId),
      );
      this.log.info(`restored ${label}: generation ${item.generation} is current again as generation ${receipt.generation} (${receipt.size} bytes, ${receipt.copies} copies, sha256 ${receipt.sha256})`);
      this.views.refreshTree();
      this.views.filesChanged(file.clientId, [file.name], false);
      const behind = receipt.replicasBehind.length > 0 ? ` ${counted(receipt.replicasBehind.length, 'replica')} missed it and ${receipt.replicasBehind.length === 1 ? 'gets' : 'get'} it when back.` : '';
      await vscode.window.showInformationMessage(`DFS: restored ${label}: generation ${item.generation}'s bytes (${formatBytes(receipt.size)}) are current again as generation ${receipt.generation}.${behind}`);
      return receipt;
    } catch (error) {
      this.log.error(`restore of ${label} generation ${item.generation} failed`, error);
      if ((await vscode.window.showErrorMessage(`DFS: ${label} was not restored: ${describeError(error)}`, 'Show Log')) === 'Show Log') {
        this.log.show();
      }
      return undefined;
    }
  }
}
