import * as vscode from 'vscode';
import type { ClusterViewNode, ServerHealth } from '../model/cluster-health';

const ICONS: Record<ServerHealth, { id: string; color?: string }> = {
  up: { id: 'pass', color: 'testing.iconPassed' },
  behind: { id: 'warning', color: 'list.warningForeground' },
  down: { id: 'error', color: 'list.errorForeground' },
  unknown: { id: 'question' },
};

/**
 * The Cluster view: one row per server, from the cluster monitor's latest status. It
 * redraws when what it would show changes (a server up or down, files behind, a process
 * of this window started or gone), not on every status check.
 */
export class ClusterTreeProvider implements vscode.TreeDataProvider<ClusterViewNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ClusterViewNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private shown: string | undefined;

  constructor(private readonly nodes: () => ClusterViewNode[]) {}

  /** Called after every status check and process change; fires only when a row would differ. */
  update(): void {
    const next = JSON.stringify(this.nodes());
    if (next !== this.shown) {
      this.shown = next;
      this.changed.fire(undefined);
    }
  }

  getTreeItem(node: ClusterViewNode): vscode.TreeItem {
    const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
    item.id = node.id;
    item.tooltip = node.tooltip;
    if (node.kind === 'note') {
      item.iconPath = new vscode.ThemeIcon('info');
      return item;
    }
    item.description = node.description;
    item.contextValue = node.contextValue;
    const icon = ICONS[node.health];
    item.iconPath = new vscode.ThemeIcon(icon.id, icon.color ? new vscode.ThemeColor(icon.color) : undefined);
    return item;
  }

  getChildren(node?: ClusterViewNode): ClusterViewNode[] {
    if (node) {
      return [];
    }
    const nodes = this.nodes();
    this.shown = JSON.stringify(nodes);
    return nodes;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
