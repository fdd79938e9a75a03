import * as path from 'path';
import * as vscode from 'vscode';
import type { FolderSyncer, SyncConflict } from '../sync/folder-syncer';
import { syncStatusView } from '../sync/sync-messages';
import type { FolderSync } from './folder-sync';
import type { SyncConflictChoices } from './sync-conflicts';

/** `DFS sync: 3 synced` / `2 pending` / `1 conflict`, shown while a folder is synced; a click lists the conflicts and the synced folders. */
export class SyncStatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly sync: FolderSync,
    private readonly choices: SyncConflictChoices,
  ) {
    this.item = vscode.window.createStatusBarItem('dfs.sync', vscode.StatusBarAlignment.Left, 49);
    this.item.name = 'DFS Folder Sync';
    this.item.command = 'dfs.showSyncStatus';
    this.subscription = sync.onDidChangeStatus(() => this.update());
    this.update();
  }

  update(): void {
    const folders = this.sync.syncers.length;
    if (folders === 0) {
      this.item.hide();
      return;
    }
    const view = syncStatusView(this.sync.status, folders);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.show();
  }

  get text(): string {
    return this.item.text;
  }

  /** The click: each conflict (choose what to do), each synced folder, and Stop Syncing. */
  async showQuickPick(): Promise<void> {
    type Item = vscode.QuickPickItem & { conflict?: { syncer: FolderSyncer; conflict: SyncConflict }; stop?: true; now?: true };
    const items: Item[] = [];
    for (const syncer of this.sync.syncers) {
      for (const conflict of syncer.conflicts) {
        items.push({ label: `$(warning) ${conflict.storedName}`, description: conflict.kind === 'bothChanged' ? 'changed here and in DFS' : 'deleted from DFS, changed here', conflict: { syncer, conflict } });
      }
    }
    for (const syncer of this.sync.syncers) {
      const status = syncer.status;
      items.push({
        label: `$(folder) ${path.basename(syncer.mapping.folder)}`,
        description: `${syncer.mapping.clientId}/${syncer.mapping.prefix}/ · ${status.synced} synced${status.pending ? ` · ${status.pending} pending` : ''}${status.conflicts ? ` · ${status.conflicts} in conflict` : ''}`,
        detail: `${syncer.mapping.folder}; deletes ${syncer.mapping.propagateDeletes ? 'propagated' : 'kept on one side'}`,
      });
    }
    items.push({ label: '$(sync) Sync Now', description: 'bring in what changed in DFS', now: true });
    items.push({ label: '$(debug-stop) Stop Syncing Folder...', stop: true });
    const picked = await vscode.window.showQuickPick(items, { title: 'DFS Folder Sync', placeHolder: 'Choose a conflict to settle it' });
    if (picked?.conflict) {
      await this.choices.offer(picked.conflict.syncer, picked.conflict.conflict);
    } else if (picked?.now) {
      await vscode.commands.executeCommand('dfs.syncNow');
    } else if (picked?.stop) {
      await vscode.commands.executeCommand('dfs.stopSyncFolder');
    }
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
