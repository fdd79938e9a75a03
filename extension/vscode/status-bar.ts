import * as vscode from 'vscode';
import { ClusterState, statusBarView } from '../model/cluster-state';

/** `DFS 3/3` or `DFS offline` in the status bar; a click shows the full status. */
export class ClusterStatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;

  constructor() {
    this.item = vscode.window.createStatusBarItem('dfs.status', vscode.StatusBarAlignment.Left, 50);
    this.item.name = 'DFS Cluster';
    this.item.command = 'dfs.showStatus';
    this.show({ kind: 'unknown' });
    this.item.show();
  }

  show(state: ClusterState): void {
    const view = statusBarView(state);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  }

  get text(): string {
    return this.item.text;
  }

  dispose(): void {
    this.item.dispose();
  }
}
