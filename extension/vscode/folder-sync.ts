import { promises as fs } from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DfsConnection } from '../cluster/connection';
import type { Logger } from '../model/logger';
import { DfsError, validateFileName } from '../../server/protocol';
import { BaselineStore, FolderSyncer, SyncConflict, SyncMapping, SyncStatus } from '../sync/folder-syncer';
import { firstSyncQuestion } from '../sync/sync-messages';
import { BaselineEntry, needsConfirmation } from '../sync/sync-plan';

/**
 * Mappings and their last-synced state live in the workspace state, not in settings:
 * the two must stay together (a mapping without its baseline would see every file as
 * new on both sides), and both belong to this machine and its client identity, not to a
 * settings file that is committed or synced to other machines.
 */
const MAPPINGS_KEY = 'dfs.syncFolders';
const baselineKey = (folder: string): string => `dfs.syncBaseline:${folder}`;

interface RunningMapping {
  syncer: FolderSyncer;
  watcher: vscode.FileSystemWatcher;
  /** The last full sync failed (the cluster was down): run it again when the cluster answers. */
  needsReconcile: boolean;
  /** A full sync scheduled after a failed save. */
  retry?: NodeJS.Timeout;
}

/** How soon a full sync follows a save that could not be sent. */
const RETRY_FAILED_SAVES_MS = 10_000;

export interface FolderSyncEvents {
  /** Stored files changed through a sync: the tree and open dfs: editors should show it. */
  storedChanged(clientId: string, name: string, deleted: boolean): void;
  /** A file became a conflict: the user is offered the choices. */
  conflict(syncer: FolderSyncer, conflict: SyncConflict): void;
}

/** DFS: Sync Folder... and DFS: Stop Syncing Folder, and the syncers and watchers of the mapped folders. */
export class FolderSync implements vscode.Disposable {
  private readonly running = new Map<string, RunningMapping>();
  private readonly statusChanged = new vscode.EventEmitter<void>();
  readonly onDidChangeStatus = this.statusChanged.event;

  constructor(
    private readonly state: vscode.Memento,
    private readonly connection: DfsConnection,
    private readonly events: FolderSyncEvents,
    private readonly log: Logger,
  ) {}

  get syncers(): FolderSyncer[] {
    return [...this.running.values()].map((entry) => entry.syncer);
  }

  /** All mapped folders together. */
  get status(): SyncStatus {
    return this.syncers.reduce((sum, syncer) => {
      const status = syncer.status;
      return { pending: sum.pending + status.pending, synced: sum.synced + status.synced, conflicts: sum.conflicts + status.conflicts };
    }, { pending: 0, synced: 0, conflicts: 0 } as SyncStatus);
  }

  /** Starts the folders mapped in an earlier session and brings them in step (nothing is asked: they were confirmed when mapped). */
  async resume(): Promise<void> {
    // Every folder is watched from the start, so nothing saved during the first full syncs is missed.
    const entries = this.mappings().map((mapping) => this.start(mapping));
    for (const entry of entries) {
      await this.reconcileInBackground(entry);
    }
  }

  /** Retries the full syncs that failed, once the cluster answers again. */
  async clusterOnline(): Promise<void> {
    for (const entry of this.running.values()) {
      if (entry.needsReconcile) {
        await this.reconcileInBackground(entry);
      }
    }
  }

  /** DFS: Sync Folders Now: the full comparison of every mapped folder, to bring in what changed in DFS (saves here go up by themselves). */
  async syncNow(): Promise<void> {
    if (this.running.size === 0) {
      void vscode.window.showInformationMessage('DFS: no folder is synced in this workspace. Use DFS: Sync Folder... to sync one.');
      return;
    }
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'DFS: syncing folders' }, async () => {
      for (const entry of this.running.values()) {
        entry.needsReconcile = false;
        await entry.syncer.reconcile();
      }
    });
  }

  /** DFS: Sync Folder...: from the Explorer (a folder) or the palette (asks which). */
  async syncFolder(clicked?: vscode.Uri): Promise<FolderSyncer | undefined> {
    const folder = clicked?.scheme === 'file' ? clicked.fsPath : await this.pickFolder();
    if (!folder) {
      return undefined;
    }
    const stat = await fs.stat(folder).catch(() => undefined);
    if (!stat?.isDirectory()) {
      throw new DfsError('BAD_FILE_NAME', `${folder} is not a folder; choose a folder to sync`);
    }
    const inWorkspace = (vscode.workspace.workspaceFolders ?? []).some((workspaceFolder) => isInside(workspaceFolder.uri.fsPath, folder));
    if (!inWorkspace) {
      throw new DfsError('BAD_FILE_NAME', `${folder} is not in this workspace; open it in VS Code first, or choose a folder of the workspace`);
    }
    for (const mapping of this.mappings()) {
      if (isInside(mapping.folder, folder) || isInside(folder, mapping.folder)) {
        throw new DfsError(
          'BAD_FILE_NAME',
          mapping.folder === folder ? `${folder} is already synced with ${mapping.clientId}/${mapping.prefix}/` : `${folder} overlaps ${mapping.folder}, which is already synced; stop syncing that one first (DFS: Stop Syncing Folder)`,
        );
      }
    }
    const clientId = this.connection.clientId;
    const prefix = await vscode.window.showInputBox({
      title: 'DFS: Sync Folder',
      prompt: `The folder of ${clientId}'s stored files to keep in step with ${path.basename(folder)}`,
      value: path.basename(folder),
      validateInput: (value) => {
        const trimmed = value.trim().replace(/^\/+|\/+$/g, '');
        if (!trimmed) {
          return 'Name a stored folder';
        }
        try {
          validateFileName(`${trimmed}/x`);
          return undefined;
        } catch (error) {
          return (error as Error).message;
        }
      },
    });
    if (prefix === undefined) {
      return undefined;
    }
    const deletes = await vscode.window.showQuickPick(
      [
        { label: 'Keep deletes on one side', description: 'recommended', detail: 'A file deleted here stays in DFS, and one deleted in DFS stays here.', propagate: false },
        { label: 'Propagate deletes', detail: 'A file deleted here is deleted from DFS, and one deleted in DFS is deleted here, unless it changed on the other side meanwhile.', propagate: true },
      ],
      { title: 'DFS: Sync Folder: deletes', placeHolder: 'What happens when a synced file is deleted on one side?' },
    );
    if (!deletes) {
      return undefined;
    }
    const mapping: SyncMapping = { folder, prefix: prefix.trim().replace(/^\/+|\/+$/g, ''), clientId, propagateDeletes: deletes.propagate };
    const entry = this.start(mapping);
    const label = path.basename(folder);
    const stored = `${clientId}/${mapping.prefix}/`;
    let outcome;
    try {
      outcome = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `DFS: comparing ${label} with ${stored}…` }, () =>
        entry.syncer.reconcile(async (summary) => {
          if (!needsConfirmation(summary)) {
            return true;
          }
          const question = firstSyncQuestion(summary, label, stored);
          return (await vscode.window.showWarningMessage(question.message, { modal: true, detail: question.detail }, 'Sync')) === 'Sync';
        }),
      );
    } catch (error) {
      this.stop(folder);
      throw error;
    }
    if (!outcome.done) {
      this.stop(folder);
      this.log.info(`sync ${folder}: the first sync was not confirmed; nothing was transferred`);
      return undefined;
    }
    await this.state.update(MAPPINGS_KEY, [...this.mappings(), mapping]);
    const status = entry.syncer.status;
    this.log.info(`sync ${folder} with ${stored}: mapped (deletes ${mapping.propagateDeletes ? 'propagated' : 'kept on one side'})`);
    void vscode.window.showInformationMessage(
      `DFS: ${label} is synced with ${stored} (${status.synced} file${status.synced === 1 ? '' : 's'} in step${status.conflicts ? `, ${status.conflicts} in conflict` : ''}). Saving a file there uploads it.`,
    );
    return entry.syncer;
  }

  /** DFS: Stop Syncing Folder: nothing is deleted on either side. */
  async stopSyncing(clicked?: vscode.Uri): Promise<void> {
    const mappings = this.mappings();
    if (mappings.length === 0) {
      void vscode.window.showInformationMessage('DFS: no folder is synced in this workspace. Use DFS: Sync Folder... to sync one.');
      return;
    }
    let chosen = clicked?.scheme === 'file' ? mappings.find((mapping) => mapping.folder === clicked.fsPath) : undefined;
    if (!chosen) {
      const picked = await vscode.window.showQuickPick(
        mappings.map((mapping) => ({ label: path.basename(mapping.folder), description: `${mapping.clientId}/${mapping.prefix}/`, detail: mapping.folder, mapping })),
        { title: 'DFS: Stop Syncing Folder', placeHolder: 'Which folder should stop syncing? Nothing is deleted.' },
      );
      chosen = picked?.mapping;
    }
    if (!chosen) {
      return;
    }
    const folder = chosen.folder;
    this.stop(folder);
    await this.state.update(MAPPINGS_KEY, this.mappings().filter((mapping) => mapping.folder !== folder));
    await this.state.update(baselineKey(folder), undefined);
    this.log.info(`sync ${folder}: stopped; local and stored files are kept`);
    void vscode.window.showInformationMessage(`DFS: ${path.basename(folder)} is no longer synced. Its files here and in DFS are kept.`);
  }

  /** The persisted mappings. */
  mappings(): SyncMapping[] {
    return this.state.get<SyncMapping[]>(MAPPINGS_KEY, []);
  }

  dispose(): void {
    for (const folder of [...this.running.keys()]) {
      this.stop(folder);
    }
    this.statusChanged.dispose();
  }

  private start(mapping: SyncMapping): RunningMapping {
    const store: BaselineStore = {
      load: () => this.state.get<Record<string, BaselineEntry>>(baselineKey(mapping.folder), {}),
      save: (entries) => Promise.resolve(this.state.update(baselineKey(mapping.folder), entries)),
    };
    const syncer = new FolderSyncer(mapping, () => this.connection.client(), store, this.log);
    // One watcher sees saves from the editor and changes made by anything else (a
    // formatter, git, a build), deletes included: one path for every change.
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(mapping.folder), '**/*'));
    const touched = (uri: vscode.Uri): void => syncer.touched(uri.fsPath);
    watcher.onDidCreate(touched);
    watcher.onDidChange(touched);
    watcher.onDidDelete(touched);
    const entry: RunningMapping = { syncer, watcher, needsReconcile: false };
    syncer.on('changed', () => this.statusChanged.fire());
    syncer.on('stored', (name: string, deleted: boolean) => this.events.storedChanged(mapping.clientId, name, deleted));
    syncer.on('conflict', (conflict: SyncConflict) => this.events.conflict(syncer, conflict));
    syncer.on('failed', () => {
      // A save that could not be sent (the cluster unreachable, a file busy) goes up with
      // the next full sync: soon, or when the cluster answers again if it is down.
      entry.needsReconcile = true;
      if (!entry.retry) {
        entry.retry = setTimeout(() => {
          entry.retry = undefined;
          void this.reconcileInBackground(entry);
        }, RETRY_FAILED_SAVES_MS);
      }
    });
    this.running.set(mapping.folder, entry);
    this.statusChanged.fire();
    this.updateMenus();
    return entry;
  }

  private stop(folder: string): void {
    const entry = this.running.get(folder);
    if (entry) {
      clearTimeout(entry.retry);
      entry.watcher.dispose();
      entry.syncer.dispose();
      this.running.delete(folder);
      this.statusChanged.fire();
      this.updateMenus();
    }
  }

  /** The Explorer offers Sync Folder... on folders not synced and Stop Syncing Folder on those that are. */
  private updateMenus(): void {
    vscode.commands.executeCommand('setContext', 'dfs.syncedFolders', [...this.running.keys()]).then(undefined, (error: unknown) => this.log.error('setting dfs.syncedFolders failed', error));
  }

  private async reconcileInBackground(entry: RunningMapping): Promise<void> {
    entry.needsReconcile = false;
    try {
      await entry.syncer.reconcile();
    } catch (error) {
      entry.needsReconcile = true;
      this.log.error(`sync ${entry.syncer.mapping.folder} failed; it is tried again when the cluster answers`, error);
    }
  }

  private async pickFolder(): Promise<string | undefined> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    const other = { label: '$(folder-opened) Another folder of the workspace...', folder: undefined as string | undefined };
    const picked = await vscode.window.showQuickPick([...folders.map((folder) => ({ label: folder.name, detail: folder.uri.fsPath, folder: folder.uri.fsPath as string | undefined })), other], {
      title: 'DFS: Sync Folder',
      placeHolder: 'Which folder should be kept in step with DFS? (A folder inside one: right-click it in the Explorer.)',
    });
    if (!picked) {
      return undefined;
    }
    if (picked.folder) {
      return picked.folder;
    }
    const chosen = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, defaultUri: folders[0]?.uri, openLabel: 'Sync' });
    return chosen?.[0]?.fsPath;
  }
}

function isInside(parent: string, child: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}
