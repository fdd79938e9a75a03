import * as vscode from 'vscode';
import { describeError } from '../model/logger';
import type { ChangeFeed } from '../cluster/change-feed';
import type { ClusterMonitor } from '../cluster/cluster-monitor';
import type { DfsConnection } from '../cluster/connection';
import type { Logger } from '../model/logger';
import { DFS_SCHEME, dfsPath } from '../model/dfs-uri';
import { DfsNode, FileNode, FolderNode, buildClientNodes, buildFileTree, expectedCopies, filterRecords } from '../model/tree-model';

/**
 * Clients at the top, each one's files below. Listings are fetched when a client is
 * expanded and kept until the next refresh, so expanding folders costs no round trip.
 */
export class FileTreeProvider implements vscode.TreeDataProvider<DfsNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<DfsNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly fileTrees = new Map<string, Promise<(FolderNode | FileNode)[]>>();
  private filterText = '';
  /** While the view is visible, the change feed polls each client whose files it shows. */
  private readonly watches = new Map<string, { dispose(): void }>();
  private visible = true;

  constructor(
    private readonly connection: DfsConnection,
    private readonly monitor: ClusterMonitor,
    private readonly log: Logger,
    private readonly feed?: ChangeFeed,
  ) {}

  /** A hidden view is not kept up to date; shown again, it redraws from fresh listings. */
  setVisible(visible: boolean): void {
    if (visible === this.visible) {
      return;
    }
    this.visible = visible;
    if (visible) {
      this.refresh();
    } else {
      this.watches.forEach((watch) => watch.dispose());
      this.watches.clear();
    }
  }

  refresh(): void {
    this.fileTrees.clear();
    this.changed.fire(undefined);
  }

  /** The filter the tree is narrowed by; empty shows every file. */
  get filter(): string {
    return this.filterText;
  }

  setFilter(text: string): void {
    this.filterText = text.trim();
    this.refresh();
  }

  getTreeItem(node: DfsNode): vscode.TreeItem {
    switch (node.kind) {
      case 'client': {
        const item = new vscode.TreeItem(node.label, node.own ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed);
        item.id = node.id;
        item.description = node.description;
        item.tooltip = node.tooltip;
        item.contextValue = node.contextValue;
        item.iconPath = new vscode.ThemeIcon(node.own ? 'account' : 'person');
        return item;
      }
      case 'folder': {
        // A filtered tree opens its folders, so the matches show at once; its own ids keep
        // VS Code from applying (or overwriting) the unfiltered tree's open and closed folders.
        const item = new vscode.TreeItem(node.label, this.filterText ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed);
        item.id = this.filterText ? `${node.id}?filter=${this.filterText}` : node.id;
        item.description = node.description;
        item.contextValue = node.contextValue;
        item.iconPath = vscode.ThemeIcon.Folder;
        return item;
      }
      case 'file': {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
        item.id = node.id;
        item.description = node.description;
        item.tooltip = node.tooltip;
        item.contextValue = node.contextValue;
        item.resourceUri = vscode.Uri.from({ scheme: DFS_SCHEME, path: dfsPath(node.clientId, node.record.name) });
        item.iconPath = node.underReplicated ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground')) : vscode.ThemeIcon.File;
        item.command = { command: 'dfs.openFile', title: 'Open', arguments: [node] };
        return item;
      }
    }
  }

  async getChildren(node?: DfsNode): Promise<DfsNode[]> {
    if (!node) {
      return this.clients();
    }
    if (node.kind === 'client') {
      return this.filesOf(node.clientId);
    }
    return node.kind === 'folder' ? node.children : [];
  }

  dispose(): void {
    this.watches.forEach((watch) => watch.dispose());
    this.watches.clear();
    this.changed.dispose();
  }

  /** Offline returns nothing, which makes VS Code show the welcome view with Start Cluster. */
  private async clients(): Promise<DfsNode[]> {
    const state = await this.monitor.refresh();
    if (state.kind !== 'online' && state.kind !== 'readOnly') {
      return [];
    }
    try {
      // Read-only (no primary answers): the replicas' listings, newest generation of each name.
      return buildClientNodes(this.connection.clientId, await this.connection.reader().clients());
    } catch (error) {
      this.log.error(`listing clients at ${this.connection.address} failed`, error);
      this.reportListingFailure(`the clients at ${this.connection.address}`, error);
      await this.monitor.refresh();
      return [];
    }
  }

  private filesOf(clientId: string): Promise<(FolderNode | FileNode)[]> {
    let tree = this.fileTrees.get(clientId);
    if (this.feed && this.visible && !this.watches.has(clientId)) {
      this.watches.set(clientId, this.feed.watch(clientId));
    }
    if (!tree) {
      tree = this.loadFiles(clientId);
      this.fileTrees.set(clientId, tree);
    }
    return tree;
  }

  private async loadFiles(clientId: string): Promise<(FolderNode | FileNode)[]> {
    try {
      const files = await this.connection.reader().files(clientId);
      const state = this.monitor.state;
      const replicaCount = state.kind === 'online' ? state.status.replicas.length : this.connection.settings.replicas;
      return buildFileTree(clientId, filterRecords(files, this.filterText), expectedCopies(replicaCount), Date.now());
    } catch (error) {
      this.fileTrees.delete(clientId);
      this.log.error(`listing the files of ${clientId} failed`, error);
      this.reportListingFailure(`the files of ${clientId}`, error);
      return [];
    }
  }

  private lastFailureShownMs = 0;

  /** An empty tree must not pass for "no files": say it failed, at most every half minute. */
  private reportListingFailure(what: string, error: unknown): void {
    if (Date.now() - this.lastFailureShownMs < 30_000) {
      return;
    }
    this.lastFailureShownMs = Date.now();
    void vscode.window.showErrorMessage(`DFS: could not list ${what}: ${describeError(error)}. Try Refresh.`, 'Show Log').then(
      (choice) => (choice === 'Show Log' ? vscode.commands.executeCommand('dfs.showLog') : undefined),
      () => undefined,
    );
  }
}
