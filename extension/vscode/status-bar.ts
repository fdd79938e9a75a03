import * as vscode from 'vscode';
import { ClusterState, statusBarView } from '../model/cluster-state';

/**
 * `DFS 3/3` or `DFS offline` in the status bar; a click shows the full status. With
 * named clusters (dfs.clusters) it also names the one in use, and a click offers to
 * switch (Show Cluster Status is the quick pick's first entry).
 */
export class ClusterStatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private state: ClusterState = { kind: 'unknown' };
  private cluster: string | undefined;

  constructor() {
    this.item = vscode.window.createStatusBarItem('dfs.status', vscode.StatusBarAlignment.Left, 50);
    this.item.name = 'DFS Cluster';
    this.draw();
    this.item.show();
  }

  show(state: ClusterState): void {
    this.state = state;
    this.draw();
  }

  /** The named connection in use, when dfs.clusters has any; undefined hides the name and the switch. */
  showCluster(name: string | undefined): void {
    this.cluster = name;
    this.draw();
  }

  get text(): string {
    return this.item.text;
  }

  dispose(): void {
    this.item.dispose();
  }

  private draw(): void {
    const view = statusBarView(this.state);
    this.item.text = this.cluster === undefined ? view.text : `${view.text} · ${this.cluster}`;
    this.item.tooltip = this.cluster === undefined ? view.tooltip : `${view.tooltip}\nCluster: ${this.cluster}. Click to switch clusters or show the status.`;
    this.item.command = this.cluster === undefined ? 'dfs.showStatus' : 'dfs.switchCluster';
    this.item.backgroundColor = view.warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  }
}
