import * as vscode from 'vscode';
import { DEFAULT_CONNECTION, describeServers } from '../model/cluster-choice';
import type { Logger } from '../model/logger';
import { readConnectionChoice, rememberCluster } from './configuration';

interface ClusterPick extends vscode.QuickPickItem {
  /** The dfs.clusters name; undefined for the dfs.* settings; 'status' for Show Cluster Status. */
  cluster?: string;
  status?: boolean;
}

/**
 * DFS: Switch Cluster, from the status bar and the DFS views' title: a quick pick of
 * the dfs.* connection and each entry of dfs.clusters. The choice is kept per
 * workspace; `apply` then re-reads the settings with it.
 */
export class ClusterSwitcher {
  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly apply: () => void,
    private readonly log: Logger,
  ) {}

  async pick(): Promise<void> {
    const choice = readConnectionChoice(this.context);
    if (choice.clusters.length === 0) {
      const answer = await vscode.window.showInformationMessage(
        'DFS: dfs.clusters names no cluster, so this window uses dfs.host / dfs.port (dfs.servers). Add named connections to dfs.clusters to switch between clusters.',
        'Open Settings',
      );
      if (answer === 'Open Settings') {
        await vscode.commands.executeCommand('dfs.openSettings');
      }
      return;
    }
    const current = choice.current?.name;
    const mark = (name: string | undefined): string => (name === current ? ' (current)' : '');
    const items: ClusterPick[] = [
      { label: '$(pulse) Show Cluster Status', status: true },
      { label: '', kind: vscode.QuickPickItemKind.Separator },
      { label: DEFAULT_CONNECTION, description: `${describeServers(choice.base.servers)}${mark(undefined)}`, detail: 'dfs.host / dfs.port / dfs.servers: also the cluster Start Cluster runs' },
      ...choice.clusters.map((cluster) => ({
        label: cluster.name,
        cluster: cluster.name,
        description: `${describeServers(cluster.servers)}${mark(cluster.name)}`,
        detail: [cluster.clientId ? `client ${cluster.clientId}` : undefined, cluster.tlsCaFile ? 'TLS' : undefined].filter(Boolean).join(' · ') || undefined,
      })),
    ];
    const picked = await vscode.window.showQuickPick(items, { title: 'DFS: Switch Cluster', placeHolder: `This window uses ${current ?? DEFAULT_CONNECTION}. Which cluster should it use?` });
    if (!picked) {
      return;
    }
    if (picked.status) {
      await vscode.commands.executeCommand('dfs.showStatus');
      return;
    }
    if (picked.cluster === current) {
      return;
    }
    await rememberCluster(this.context, picked.cluster);
    this.log.info(`switched to ${picked.cluster === undefined ? `${DEFAULT_CONNECTION} (dfs.host / dfs.port / dfs.servers)` : `the cluster "${picked.cluster}"`}`);
    this.apply();
  }
}
