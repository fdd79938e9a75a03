import { promises as fs } from 'fs';
import * as vscode from 'vscode';
import type { ClusterMonitor } from '../cluster/cluster-monitor';
import type { DfsConnection } from '../cluster/connection';
import { NodeLaunch, clusterLaunches, launchFor, parseLaunchKey } from '../cluster/node-launch';
import { NodeExit, NodeProcess, RuntimeCommand } from '../cluster/node-process';
import type { ProcessRegistry } from '../cluster/process-registry';
import { serverNodesNow } from '../cluster/server-nodes';
import { ClusterViewNode, ServerNode, downReplicaAdvice, downReplicas, restartLabel } from '../model/cluster-health';
import { ClusterState, statusReport } from '../model/cluster-state';
import { counted } from '../model/format';
import { describeError } from '../model/logger';
import type { OutputLog } from './output-log';
import type { DfsTaskProvider } from './task-provider';

/** Long enough for a cold start on a loaded machine; a server that binds prints its line in milliseconds. */
const READY_TIMEOUT_MS = 30_000;

export interface ClusterViews {
  refreshTree(): void;
}

/** What to offer when replicas are down: the advice, the buttons, and what each button does. */
export interface ReplicaFixes {
  advice: string;
  actions: string[];
  /** Runs the action chosen; false when it is not one of these. */
  run(choice: string | undefined): Promise<boolean>;
}

/** Start Cluster, Stop Cluster, Show Cluster Status, and Restart / Stop of one server from the Cluster view. */
export class ClusterCommands {
  constructor(
    private readonly connection: DfsConnection,
    private readonly monitor: ClusterMonitor,
    private readonly registry: ProcessRegistry,
    private readonly tasks: DfsTaskProvider,
    private readonly runtime: RuntimeCommand,
    private readonly views: ClusterViews,
    private readonly log: OutputLog,
  ) {}

  private starting: Promise<void> | undefined;

  /** A second Start Cluster while one runs joins it instead of launching the same servers twice. */
  start(): Promise<void> {
    this.starting ??= this.startOnce().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    const settings = this.connection.settings;
    if (settings.cluster !== undefined) {
      // Start Cluster runs the dfs.* settings' cluster; starting it while connected elsewhere would start servers nobody here talks to.
      const choice = await vscode.window.showWarningMessage(
        `DFS: this window is connected to the cluster "${settings.cluster}" (dfs.clusters). Start Cluster starts the cluster of the dfs.host / dfs.port settings on this machine: switch to Default first, or start "${settings.cluster}"'s servers where they run.`,
        'Switch Cluster',
      );
      if (choice === 'Switch Cluster') {
        await vscode.commands.executeCommand('dfs.switchCluster');
      }
      return;
    }
    const wanted = clusterLaunches(settings);
    // Servers this window started with other settings still use the same data folders:
    // starting the new set beside them would put two servers on one folder.
    const outdated = this.registry.running.filter((running) => !wanted.some((launch) => launch.key === running.launch.key && sameArgs(launch.args, running.launch.args)));
    if (outdated.length > 0) {
      const choice = await vscode.window.showWarningMessage(
        `DFS: the settings changed since this window started its cluster (${outdated.map((process) => process.launch.label).join(', ')} still run with the old ones). Stop Cluster first, then start it again.`,
        'Stop Cluster',
      );
      if (choice === 'Stop Cluster') {
        await this.stop();
      }
      return;
    }
    const state = await this.monitor.refresh();
    if (state.kind !== 'online' && this.connection.key && !this.connection.secret) {
      // Servers started without a secret cannot check keys: this window's key would be refused by its own cluster.
      this.log.warn('Start Cluster: not started: a client key is set but no cluster secret, so the servers could not check the key');
      const choice = await vscode.window.showWarningMessage(
        'DFS: Start Cluster needs the cluster secret: the servers it starts check client keys against it. Set the cluster secret (keys issued from it keep working), or forget the client key to start a cluster without authentication.',
        'Set Cluster Secret',
        'Forget Client Key',
      );
      if (choice === 'Set Cluster Secret') {
        await vscode.commands.executeCommand('dfs.setSecret');
      } else if (choice === 'Forget Client Key') {
        await vscode.commands.executeCommand('dfs.forgetClientKey');
      }
      return;
    }
    const missing = wanted.filter((launch) => !this.registry.get(launch.key)?.running);
    if (missing.length === 0 && state.kind !== 'online') {
      const reason = state.kind === 'offline' ? state.reason : state.kind;
      this.log.warn(`Start Cluster: this window's servers run but do not answer: ${reason}`);
      const choice = await vscode.window.showErrorMessage(
        `DFS: the servers this window started are running but do not answer (${reason}). If the cluster secret changed, stop the cluster and start it again.`,
        'Stop Cluster',
        'Show Log',
      );
      if (choice === 'Stop Cluster') {
        await this.stop();
      } else if (choice === 'Show Log') {
        this.log.show();
      }
      return;
    }
    // A cluster this window started and that lost a server gets that server back; any other answering cluster is used as it is.
    const restartingOwn = state.kind === 'online' && this.registry.running.length > 0 && missing.length > 0;
    if (state.kind === 'online' && !restartingOwn) {
      this.log.info(`Start Cluster: a cluster already answers at ${state.address}; using it`);
      this.views.refreshTree();
      await vscode.window.showInformationMessage(`DFS: a cluster already answers at ${state.address}; using it instead of starting another.`);
      return;
    }
    if (state.kind === 'notPrimary') {
      await vscode.window.showErrorMessage(`DFS: ${state.address} is a DFS ${state.status.role}, not a primary. Change dfs.port, or stop that server.`, 'Open Settings').then(
        (choice) => (choice ? vscode.commands.executeCommand('dfs.openSettings') : undefined),
      );
      return;
    }
    this.log.info(`Start Cluster: primary ${settings.host}:${settings.port}, ${settings.replicas} replicas from port ${settings.basePort}, data in ${settings.dataDir}, write quorum ${settings.writeQuorum}`);
    try {
      await fs.mkdir(settings.dataDir, { recursive: true });
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'DFS: starting the cluster' }, async (progress) => {
        const replicas = missing.filter((launch) => launch.role === 'replica');
        const primary = missing.filter((launch) => launch.role === 'primary');
        progress.report({ message: `${counted(replicas.length, 'replica')}…` });
        // allSettled, so every process that did start is known and can be stopped if another failed.
        const results = await Promise.allSettled(replicas.map((launch) => this.launch(launch)));
        const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
        if (failure) {
          throw failure.reason;
        }
        progress.report({ message: 'primary…' });
        for (const launch of primary) {
          await this.launch(launch);
        }
      });
    } catch (error) {
      this.log.error('Start Cluster failed', error);
      // A half-started cluster would only confuse: stop whatever this attempt started, ready or not.
      await Promise.all(missing.map((launch) => this.registry.get(launch.key)?.stop()));
      await this.monitor.refresh();
      const choice = await vscode.window.showErrorMessage(`DFS: the cluster did not start. ${describeError(error)}`, 'Show Log', 'Open Settings');
      if (choice === 'Show Log') {
        this.log.show();
      } else if (choice === 'Open Settings') {
        await vscode.commands.executeCommand('dfs.openSettings');
      }
      return;
    }
    const after = await this.monitor.refresh();
    this.views.refreshTree();
    if (after.kind !== 'online') {
      const reason = after.kind === 'offline' ? after.reason : after.kind;
      this.log.error(`Start Cluster: the servers started but the primary does not answer: ${reason}`);
      if ((await vscode.window.showErrorMessage(`DFS: the servers started, but the primary at ${this.connection.address} does not answer (${reason}).`, 'Show Log')) === 'Show Log') {
        this.log.show();
      }
      return;
    }
    this.log.info(`Start Cluster: ready at ${this.connection.address}`);
    await vscode.window.showInformationMessage(
      restartingOwn
        ? `DFS: restarted ${missing.map((launch) => launch.label).join(', ')}.`
        : `DFS: cluster started, primary at ${this.connection.address} with ${counted(settings.replicas, 'replica')}.`,
    );
  }

  async stop(): Promise<void> {
    const running = this.registry.running;
    if (running.length === 0) {
      const state = await this.monitor.refresh();
      await vscode.window.showInformationMessage(
        state.kind === 'online'
          ? `DFS: the cluster at ${state.address} was not started from this window; stop it where it runs.`
          : 'DFS: no cluster started from this window is running.',
      );
      return;
    }
    this.log.info(`Stop Cluster: stopping ${running.map((process) => process.launch.label).join(', ')}`);
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'DFS: stopping the cluster' }, () => this.registry.stopAll());
    await this.monitor.refresh();
    this.views.refreshTree();
    this.log.info('Stop Cluster: stopped');
    await vscode.window.showInformationMessage('DFS: cluster stopped.');
  }

  async showStatus(): Promise<void> {
    const state = await this.monitor.refresh();
    const report = statusReport(state);
    this.log.info([report.headline, ...report.details].join('\n  '));
    const locked = state.kind === 'offline' && state.code === 'AUTH';
    const fixes = state.kind === 'online' ? this.replicaFixes(state) : undefined;
    const actions = locked
      ? ['Set Client Key', 'Set Cluster Secret', 'Show Log']
      : state.kind === 'offline' || state.kind === 'readOnly'
        ? ['Start Cluster', 'Open Settings', 'Show Log']
        : fixes && fixes.actions.length > 0
          ? [...fixes.actions, 'Show Log']
          : ['Show Log'];
    const detail = [...report.details, ...(fixes?.advice ? [fixes.advice] : [])].join('\n');
    const choice = await vscode.window.showInformationMessage(report.headline, { modal: true, detail }, ...actions);
    if (await fixes?.run(choice)) {
      return;
    }
    if (choice === 'Start Cluster') {
      await this.start();
    } else if (choice === 'Open Settings') {
      await vscode.commands.executeCommand('dfs.openSettings');
    } else if (choice === 'Set Client Key') {
      await vscode.commands.executeCommand('dfs.setClientKey');
    } else if (choice === 'Set Cluster Secret') {
      await vscode.commands.executeCommand('dfs.setSecret');
    } else if (choice === 'Show Log') {
      this.log.show();
    }
  }

  /**
   * For down replicas: Restart for those this window started, Open Settings (the write
   * quorum), and advice in VS Code's words. No actions when every replica is up.
   */
  replicaFixes(state: ClusterState = this.monitor.state): ReplicaFixes {
    const down = downReplicas(this.nodes(state));
    const restart = restartLabel(down);
    const anyDown = down.restartable.length + down.elsewhere.length > 0;
    return {
      advice: downReplicaAdvice(down),
      actions: anyDown ? [...(restart ? [restart] : []), 'Open Settings'] : [],
      run: async (choice) => {
        if (restart && choice === restart) {
          await this.restart(down.restartable);
          return true;
        }
        if (anyDown && choice === 'Open Settings') {
          await vscode.commands.executeCommand('dfs.openSettings');
          return true;
        }
        return false;
      },
    };
  }

  /** The Cluster view's rows for this state. */
  nodes(state: ClusterState = this.monitor.state): ClusterViewNode[] {
    return serverNodesNow(state, this.connection.settings, this.registry);
  }

  /** Restart from the Cluster view: a server this window started, running or exited. */
  async restartServer(node?: ClusterViewNode): Promise<void> {
    if (node?.kind !== 'server' || !node.launchKey) {
      await vscode.window.showInformationMessage(`DFS: ${node?.label ?? 'that server'} was not started from this window; restart it where it runs.`);
      return;
    }
    await this.restart([node]);
  }

  /** Stop from the Cluster view: one server this window started; the others keep running. */
  async stopServer(node?: ClusterViewNode): Promise<void> {
    const running = node?.kind === 'server' && node.launchKey ? this.registry.get(node.launchKey) : undefined;
    if (!running?.running) {
      await vscode.window.showInformationMessage(`DFS: ${node?.label ?? 'that server'} is not running from this window, so there is nothing to stop here.`);
      return;
    }
    this.log.info(`Stop: stopping DFS ${running.launch.label}`);
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `DFS: stopping ${running.launch.label}` }, () => running.stop());
    await this.monitor.refresh();
    this.views.refreshTree();
    this.log.info(`Stop: DFS ${running.launch.label} stopped`);
  }

  private async restart(nodes: readonly ServerNode[]): Promise<void> {
    const settings = this.connection.settings;
    const launches = nodes.flatMap((node) => (node.launchKey ? [launchFor({ type: 'dfs', ...parseLaunchKey(node.launchKey) }, settings)] : []));
    const labels = launches.map((launch) => launch.label).join(', ');
    this.log.info(`Restart: ${labels}`);
    try {
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `DFS: restarting ${labels}` }, async () => {
        await Promise.all(launches.map((launch) => this.registry.get(launch.key)?.stop()));
        // Replicas first, as Start Cluster does: a primary checks its replicas as it starts.
        await Promise.all(launches.filter((launch) => launch.role === 'replica').map((launch) => this.launch(launch)));
        for (const launch of launches.filter((candidate) => candidate.role === 'primary')) {
          await this.launch(launch);
        }
      });
    } catch (error) {
      this.log.error(`Restart of ${labels} failed`, error);
      await this.monitor.refresh();
      const choice = await vscode.window.showErrorMessage(`DFS: could not restart ${labels}. ${describeError(error)}`, 'Show Log', 'Open Settings');
      if (choice === 'Show Log') {
        this.log.show();
      } else if (choice === 'Open Settings') {
        await vscode.commands.executeCommand('dfs.openSettings');
      }
      return;
    }
    await this.monitor.refresh();
    this.views.refreshTree();
    this.log.info(`Restart: ${labels} listening again; the primary catches ${launches.length === 1 ? 'it' : 'them'} up`);
  }

  /** A server that stops on its own: say which and why, since the cluster may now refuse writes. */
  async reportCrash(process: NodeProcess, exit: NodeExit): Promise<void> {
    const reason = exit.lastError ? `: ${exit.lastError}` : '';
    this.log.error(`DFS ${process.launch.label} exited unexpectedly (${exit.signal ?? `code ${exit.code}`})${reason}`);
    await this.monitor.refresh();
    this.views.refreshTree();
    const choice = await vscode.window.showWarningMessage(`DFS ${process.launch.label} stopped unexpectedly${reason}`, 'Show Log', 'Start Cluster');
    if (choice === 'Show Log') {
      this.log.show();
    } else if (choice === 'Start Cluster') {
      await this.start();
    }
  }

  /**
   * Runs one server as a task, so it shows in the terminal panel. Where tasks cannot
   * run (a window with no folder open) the process runs directly, its output going
   * to the log only.
   */
  private async launch(launch: NodeLaunch): Promise<NodeProcess> {
    try {
      await vscode.tasks.executeTask(this.tasks.taskFor(launch));
    } catch (error) {
      this.log.warn(`cannot run DFS ${launch.label} as a task (${describeError(error)}); starting it directly`);
      const process = new NodeProcess(launch, this.runtime);
      process.on('line', (line: string) => this.log.append(`[${launch.label}] ${line}`));
      this.registry.add(process);
      process.start();
    }
    const process = await this.registry.whenReady(launch.key, READY_TIMEOUT_MS);
    this.log.info(`DFS ${launch.label} listening on port ${launch.port} (pid ${process.pid})`);
    return process;
  }
}

function sameArgs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((arg, index) => arg === b[index]);
}
