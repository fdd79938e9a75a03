import * as path from 'path';
import * as vscode from 'vscode';
import { sharedConnections } from '../server/client/client-connections';
import { ChangeFeed } from './cluster/change-feed';
import { ClusterMonitor } from './cluster/cluster-monitor';
import { DfsConnection } from './cluster/connection';
import type { NodeExit, NodeProcess } from './cluster/node-process';
import { ProcessRegistry } from './cluster/process-registry';
import { ClusterState, readOnlyMessage } from './model/cluster-state';
import { DFS_SCHEME } from './model/dfs-uri';
import { describeError } from './model/logger';
import { DEFAULT_CONNECTION } from './model/cluster-choice';
import { readSettings } from './model/settings';
import type { DfsNode, FileNode } from './model/tree-model';
import type { ClusterViewNode } from './model/cluster-health';
import { ClusterCommands } from './vscode/cluster-commands';
import { ClusterSwitcher } from './vscode/cluster-switcher';
import { ClusterTreeProvider } from './vscode/cluster-tree-provider';
import { CompareCommands } from './vscode/compare-commands';
import { readConnectionChoice } from './vscode/configuration';
import { CLUSTER_SECRET, clientKeyFor } from './vscode/credential-kinds';
import { DfsDragAndDropController } from './vscode/drag-and-drop';
import { FileCommands } from './vscode/file-commands';
import { DfsFileSystemProvider } from './vscode/file-system-provider';
import { FileTreeProvider } from './vscode/file-tree-provider';
import { FolderSync } from './vscode/folder-sync';
import { OutputLog } from './vscode/output-log';
import { StoredCredential } from './vscode/stored-credential';
import { ClusterStatusBar } from './vscode/status-bar';
import { SyncConflictChoices } from './vscode/sync-conflicts';
import { SyncStatusBar } from './vscode/sync-status-bar';
import { DFS_TASK_TYPE, DfsTaskProvider } from './vscode/task-provider';
import { TreeActions } from './vscode/tree-actions';
import { UploadCommand } from './vscode/upload-command';
import { VersionCommands } from './vscode/version-commands';

/** Often enough that a replica going down shows within seconds; one small request each time. */
const STATUS_POLL_MS = 10_000;
/** Files changed elsewhere show in open editors and the tree within about this long (one CHANGES per watched client). */
const CHANGE_POLL_MS = 1_000;
/** While no primary answers nothing can change: ask again this much later. */
const CHANGE_RETRY_MS = 5_000;

let stopStartedServers: (() => Promise<void>) | undefined;

/** Wires the pieces together. Nothing here waits on the network, so activation stays instant. */
export function activate(context: vscode.ExtensionContext): void {
  const log = new OutputLog();
  context.subscriptions.push(log);
  const connection = new DfsConnection(initialSettings(context, log));
  const monitor = new ClusterMonitor(() => ({
    address: connection.address,
    addresses: connection.addresses,
    status: () => connection.client().status(),
    replicasAnswering: () => connection.replicas().reach(),
  }));
  const registry = new ProcessRegistry();
  const runtime = {
    execPath: process.execPath,
    scriptPath: path.join(context.extensionPath, 'dist', 'dfs.js'),
    // Servers started from here require the stored secret, so this window's client can talk to them.
    get env(): NodeJS.ProcessEnv {
      return connection.secret ? { DFS_SECRET: connection.secret.toString('utf8') } : {};
    },
  };
  stopStartedServers = () => registry.stopAll();

  const feed = new ChangeFeed(
    () => {
      const client = connection.client();
      return { changes: (clientId, since) => client.changes(since, clientId), files: (clientId) => client.files(clientId) };
    },
    { intervalMs: CHANGE_POLL_MS, retryMs: CHANGE_RETRY_MS },
  );
  const tree = new FileTreeProvider(connection, monitor, log, feed);
  const credentialChanged = (): void => {
    tree.refresh();
    inBackground(monitor.refreshAfterChange(), log, 'status check after a credential change');
  };
  const secret = new StoredCredential(CLUSTER_SECRET, context.secrets, log, (value) => {
    connection.secret = value;
    credentialChanged();
  });
  const clientKey = new StoredCredential(clientKeyFor(connection.settings.cluster), context.secrets, log, (value) => {
    connection.key = value;
    credentialChanged();
  });
  const fileSystem = new DfsFileSystemProvider(
    connection,
    feed,
    {
      isDirty: (uri) => vscode.workspace.textDocuments.some((document) => document.isDirty && document.uri.toString() === uri.toString()),
      stored: () => tree.refresh(),
    },
    log,
  );
  const feedListener = feed.listen({
    changed: (changes) => {
      const shown = changes.slice(0, 5).map((change) => `${change.clientId}/${change.name} ${change.kind}`);
      log.info(`${changes.length === 1 ? '1 file' : `${changes.length} files`} changed: ${shown.join(', ')}${changes.length > shown.length ? `, and ${changes.length - shown.length} more` : ''}`);
      tree.refresh();
    },
    failed: (clientId, error) => log.warn(`watching the files of ${clientId} for changes failed (${describeError(error)}); trying again every ${CHANGE_RETRY_MS / 1000} s`),
    recovered: (clientId) => log.info(`watching the files of ${clientId} for changes again`),
  });
  const views = {
    refreshTree: () => tree.refresh(),
    filesChanged: (clientId: string, names: readonly string[], deleted: boolean) =>
      fileSystem.notify(clientId, names, deleted ? vscode.FileChangeType.Deleted : vscode.FileChangeType.Changed),
  };
  const statusBar = new ClusterStatusBar();
  const tasks = new DfsTaskProvider(() => connection.settings, runtime, registry, log);
  const cluster = new ClusterCommands(connection, monitor, registry, tasks, runtime, views, log);
  const uploads = new UploadCommand(connection, monitor, views, log, () => cluster.replicaFixes());
  const clusterTree = new ClusterTreeProvider(() => cluster.nodes());
  const clusterView = vscode.window.createTreeView<ClusterViewNode>('dfs.cluster', { treeDataProvider: clusterTree });
  const showConnection = (): void => {
    const named = connection.settings.cluster;
    statusBar.showCluster(hasClusters(context) ? (named ?? DEFAULT_CONNECTION) : undefined);
    clusterView.description = named;
    inBackground(vscode.commands.executeCommand('setContext', 'dfs.hasClusters', hasClusters(context)), log, 'setting dfs.hasClusters');
  };
  const settingsChanged = (): void => {
    applySettings(context, connection, log);
    inBackground(clientKey.use(clientKeyFor(connection.settings.cluster)), log, "loading the cluster's client key");
    showConnection();
    tree.refresh();
    clusterTree.update();
    inBackground(monitor.refreshAfterChange(), log, 'status check after a settings change');
  };
  const switcher = new ClusterSwitcher(context, settingsChanged, log);
  const files = new FileCommands(connection, views, log);
  const dropTarget = new DfsDragAndDropController({
    upload: (uris, prefix) => uploads.upload(uris, prefix),
    get ownClientId() {
      return connection.clientId;
    },
  });
  const treeView = vscode.window.createTreeView<DfsNode>('dfs.files', { treeDataProvider: tree, dragAndDropController: dropTarget, showCollapseAll: true, canSelectMany: true });
  tree.setVisible(treeView.visible);
  const versions = new VersionCommands(connection, views, log);
  const compare = new CompareCommands(connection, log);
  const treeActions = new TreeActions(connection, tree, files, views, log, () => treeView.selection);

  const reportFailure = async (what: string, error: unknown): Promise<undefined> => {
    log.error(`${what} failed`, error);
    // A file system error already says it comes from DFS.
    const described = describeError(error);
    if ((await vscode.window.showErrorMessage(described.startsWith('DFS: ') ? described : `DFS: ${described}`, 'Show Log')) === 'Show Log') {
      log.show();
    }
    return undefined;
  };
  const command = (id: string, handler: (...args: any[]) => unknown): vscode.Disposable =>
    vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        return await handler(...args);
      } catch (error) {
        return reportFailure(id, error);
      }
    });
  const conflictChoices = new SyncConflictChoices(log);
  const folderSync = new FolderSync(
    context.workspaceState,
    connection,
    {
      storedChanged: (clientId, name, deleted) => {
        views.filesChanged(clientId, [name], deleted);
        tree.refresh();
      },
      conflict: (syncer, conflict) => inBackground(conflictChoices.offer(syncer, conflict).catch((error: unknown) => reportFailure(`settling the sync conflict of ${conflict.storedName}`, error)), log, 'a sync conflict'),
    },
    log,
  );
  const syncStatusBar = new SyncStatusBar(folderSync, conflictChoices);

  context.subscriptions.push(
    secret,
    clientKey,
    tree,
    statusBar,
    treeView,
    clusterTree,
    clusterView,
    vscode.tasks.registerTaskProvider(DFS_TASK_TYPE, tasks),
    treeView.onDidChangeVisibility((event) => tree.setVisible(event.visible)),
    fileSystem,
    feedListener,
    feed,
    // Writable: a save is an upload on a precondition (see the provider); kept versions (?generation=N) stat read-only.
    vscode.workspace.registerFileSystemProvider(DFS_SCHEME, fileSystem, { isReadonly: false, isCaseSensitive: true }),
    command('dfs.startCluster', () => cluster.start()),
    command('dfs.stopCluster', () => cluster.stop()),
    command('dfs.showStatus', () => cluster.showStatus()),
    command('dfs.upload', (clicked?: unknown, selected?: unknown) => uploads.fromCommand(clicked, selected)),
    command('dfs.uploadPick', () => uploads.pickAndUpload()),
    command('dfs.switchCluster', () => switcher.pick()),
    command('dfs.restartServer', (node?: ClusterViewNode) => cluster.restartServer(node)),
    command('dfs.stopServer', (node?: ClusterViewNode) => cluster.stopServer(node)),
    command('dfs.refresh', async () => {
      log.info('refresh');
      tree.refresh();
      await monitor.refresh();
    }),
    command('dfs.showLog', () => log.show()),
    command('dfs.setSecret', () => secret.prompt()),
    command('dfs.forgetSecret', () => secret.forget()),
    command('dfs.setClientKey', () => clientKey.prompt()),
    command('dfs.forgetClientKey', () => clientKey.forget()),
    command('dfs.openSettings', () => vscode.commands.executeCommand('workbench.action.openSettings', `@ext:${context.extension.id}`)),
    command('dfs.openFile', (node: FileNode) => files.open(node)),
    command('dfs.downloadFile', (clicked?: unknown, selected?: unknown) => treeActions.download(clicked, selected)),
    command('dfs.copyChecksum', (node: FileNode) => files.copyChecksum(node)),
    command('dfs.deleteFile', (clicked?: unknown, selected?: unknown) => treeActions.delete(clicked, selected)),
    command('dfs.showVersions', (target?: unknown) => versions.showVersions(target)),
    command('dfs.compareWithLocal', (target?: unknown) => compare.compareWithLocal(target)),
    command('dfs.compareWithDfs', (target?: unknown) => compare.compareWithDfs(target)),
    command('dfs.copyFile', (node?: unknown) => treeActions.copy(node)),
    command('dfs.renameFile', (node?: unknown) => treeActions.rename(node)),
    command('dfs.copyPath', (clicked?: unknown, selected?: unknown) => treeActions.copyPath(clicked, selected)),
    command('dfs.filter', () => treeActions.filter()),
    command('dfs.clearFilter', () => treeActions.clearFilter()),
    folderSync,
    syncStatusBar,
    command('dfs.syncFolder', (clicked?: vscode.Uri) => folderSync.syncFolder(clicked)),
    command('dfs.syncNow', () => folderSync.syncNow()),
    command('dfs.stopSyncFolder', (clicked?: vscode.Uri) => folderSync.stopSyncing(clicked)),
    command('dfs.showSyncStatus', () => syncStatusBar.showQuickPick()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('dfs')) {
        settingsChanged();
      }
    }),
  );

  let shownContent: string | undefined;
  let readOnlyNotice: string | undefined;
  // The read-only notice and the filter share the one line above the tree.
  const showTreeMessage = (): void => {
    treeView.message = [readOnlyNotice, treeActions.message].filter((line) => line !== undefined).join(' ') || undefined;
  };
  treeActions.onFilterChanged = showTreeMessage;
  // A read served from the replicas may learn of it before the next poll does.
  connection.onReadOnly = () => {
    if (monitor.state.kind !== 'readOnly') {
      inBackground(monitor.refresh(), log, 'status check after a read from the replicas');
    }
  };
  const showState = (state: ClusterState): void => {
    statusBar.show(state);
    readOnlyNotice = state.kind === 'readOnly' ? readOnlyMessage(state) : undefined;
    showTreeMessage();
    if (state.kind === 'readOnly') {
      log.warn(readOnlyMessage(state));
    }
    // A refusal for want of the secret is no missing cluster: it gets its own welcome text.
    const contextState = state.kind === 'offline' && state.code === 'AUTH' ? 'locked' : state.kind;
    inBackground(vscode.commands.executeCommand('setContext', 'dfs.clusterState', contextState), log, 'setting dfs.clusterState');
    // Redraw when what the tree shows changed (uploads from elsewhere, copies caught up or
    // lost on any replica), not on every poll: node ids are stable, so a redraw keeps folders open.
    const content =
      state.kind === 'online'
        ? `online:${state.status.files}:${state.status.bytes}:${state.status.replicas.map((replica) => `${replica.id}=${replica.reachable ? 'up' : 'down'}/${replica.filesBehind}`).join(',')}`
        : state.kind;
    if (content !== shownContent) {
      shownContent = content;
      tree.refresh();
    }
  };
  monitor.on('changed', showState);
  monitor.on('checked', () => clusterTree.update());
  registry.on('changed', () => clusterTree.update());
  monitor.on('changed', (state: ClusterState) => {
    if (state.kind === 'online') {
      inBackground(folderSync.clusterOnline(), log, 'syncing folders after the cluster came back');
    }
  });
  registry.on('changed', () => inBackground(vscode.commands.executeCommand('setContext', 'dfs.clusterRunningHere', registry.running.length > 0), log, 'setting dfs.clusterRunningHere'));
  registry.on('crashed', (crashed: NodeProcess, exit: NodeExit) => inBackground(cluster.reportCrash(crashed, exit), log, 'reporting a stopped server'));
  monitor.poll(STATUS_POLL_MS, (error) => log.error('status check failed', error));
  context.subscriptions.push({ dispose: () => monitor.stopPolling() });
  showState(monitor.state);
  showConnection();
  // The first status check waits for the credentials, so it does not report an auth failure that is not real.
  inBackground(
    Promise.all([
      secret.load().then(undefined, (error: unknown) => log.error('reading the cluster secret failed', error)),
      clientKey.load().then(undefined, (error: unknown) => log.error('reading the client key failed', error)),
    ]).then(() => {
      log.info(`DFS extension active: primary ${connection.address}, client id ${connection.clientId}, authenticating with ${connection.credentialLabel}`);
      inBackground(folderSync.resume(), log, 'resuming synced folders');
      return monitor.refresh();
    }),
    log,
    'first status check',
  );
}

/** Servers started from this window stop with it, rather than linger without a terminal. */
export async function deactivate(): Promise<void> {
  // The window's one connection to each server goes with it (requests still on it fail).
  sharedConnections.close();
  await stopStartedServers?.();
  stopStartedServers = undefined;
}

function initialSettings(context: vscode.ExtensionContext, log: OutputLog): ReturnType<typeof readSettings> {
  try {
    const choice = readConnectionChoice(context);
    if (choice.note) {
      log.warn(choice.note);
    }
    return choice.settings;
  } catch (error) {
    log.error('invalid DFS settings; using the defaults until they are fixed', error);
    inBackground(vscode.window.showErrorMessage(`DFS: ${describeError(error)}. Using the defaults until it is fixed.`), log, 'showing a settings error');
    return readSettings(() => undefined, context.globalStorageUri.fsPath);
  }
}

function applySettings(context: vscode.ExtensionContext, connection: DfsConnection, log: OutputLog): void {
  try {
    const choice = readConnectionChoice(context);
    if (choice.note) {
      log.warn(choice.note);
    }
    connection.update(choice.settings);
    const settings = connection.settings;
    log.info(`settings changed: ${settings.cluster === undefined ? '' : `cluster "${settings.cluster}", `}primary ${connection.address}, client id ${connection.clientId}, ${settings.replicas} replicas from port ${settings.basePort}, data in ${settings.dataDir}, write quorum ${settings.writeQuorum}`);
  } catch (error) {
    log.error('invalid DFS settings; keeping the previous ones', error);
    inBackground(vscode.window.showErrorMessage(`DFS: ${describeError(error)}. The previous settings stay in effect.`), log, 'showing a settings error');
  }
}

/** Whether dfs.clusters names any cluster (an invalid value counts as none until it is fixed). */
function hasClusters(context: vscode.ExtensionContext): boolean {
  try {
    return readConnectionChoice(context).clusters.length > 0;
  } catch {
    return false;
  }
}

/** For work nobody waits on: a failure still reaches the log instead of vanishing. */
function inBackground(work: PromiseLike<unknown>, log: OutputLog, what: string): void {
  void Promise.resolve(work).then(undefined, (error: unknown) => log.error(`${what} failed`, error));
}
