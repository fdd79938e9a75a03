import * as vscode from 'vscode';
import { ConnectionChoice, readClusters, resolveConnection } from '../model/cluster-choice';
import { ExtensionSettings, readSettings } from '../model/settings';

/** The workspace state key of the named cluster this workspace's window connects to. */
const CURRENT_CLUSTER = 'dfs.currentCluster';

/** The `dfs.*` settings now, with the cluster chosen for this workspace put in; called again on every change, so nothing needs a reload. */
export function readConnectionChoice(context: vscode.ExtensionContext): ConnectionChoice & { base: ExtensionSettings } {
  const configuration = vscode.workspace.getConfiguration('dfs');
  const base = readSettings((key) => configuration.get(key), context.globalStorageUri.fsPath);
  return { ...resolveConnection(base, readClusters(configuration.get('clusters')), context.workspaceState.get<string>(CURRENT_CLUSTER)), base };
}

export function readConfiguration(context: vscode.ExtensionContext): ExtensionSettings {
  return readConnectionChoice(context).settings;
}

/** Remembers the choice per workspace; undefined goes back to dfs.host/dfs.port/dfs.servers. */
export function rememberCluster(context: vscode.ExtensionContext, name: string | undefined): Thenable<void> {
  return context.workspaceState.update(CURRENT_CLUSTER, name);
}
