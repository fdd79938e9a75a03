import * as vscode from 'vscode';
import { ExtensionSettings, readSettings } from '../model/settings';

/** The `dfs.*` settings now; called again on every change, so nothing needs a reload. */
export function readConfiguration(context: vscode.ExtensionContext): ExtensionSettings {
  const configuration = vscode.workspace.getConfiguration('dfs');
  return readSettings((key) => configuration.get(key), context.globalStorageUri.fsPath);
}
