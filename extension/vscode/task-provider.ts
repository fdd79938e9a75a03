import * as vscode from 'vscode';
import { DfsTaskDefinition, NodeLaunch, clusterLaunches, launchFor } from '../cluster/node-launch';
import { NodeProcess, RuntimeCommand } from '../cluster/node-process';
import type { ProcessRegistry } from '../cluster/process-registry';
import type { Logger } from '../model/logger';
import type { ExtensionSettings } from '../model/settings';
import { ProcessTerminal } from './process-terminal';

export const DFS_TASK_TYPE = 'dfs';

/**
 * Offers one background task per server of the configured local cluster, and runs
 * `dfs` tasks written in tasks.json. Each runs VS Code's own runtime as Node, so no
 * separate Node install is needed.
 */
export class DfsTaskProvider implements vscode.TaskProvider {
  constructor(
    private readonly settings: () => ExtensionSettings,
    private readonly runtime: RuntimeCommand,
    private readonly registry: ProcessRegistry,
    private readonly log: Logger & { append(line: string): void },
  ) {}

  provideTasks(): vscode.Task[] {
    return clusterLaunches(this.settings()).map((launch) => this.taskFor(launch));
  }

  resolveTask(task: vscode.Task): vscode.Task | undefined {
    const definition = task.definition as DfsTaskDefinition;
    if (definition.type !== DFS_TASK_TYPE || (definition.role !== 'primary' && definition.role !== 'replica')) {
      return undefined;
    }
    return this.taskFor(launchFor(definition, this.settings()), definition, task.scope);
  }

  taskFor(launch: NodeLaunch, definition: DfsTaskDefinition = { type: DFS_TASK_TYPE, role: launch.role, port: launch.port }, scope?: vscode.Task['scope']): vscode.Task {
    const task = new vscode.Task(
      definition,
      scope ?? vscode.workspace.workspaceFolders?.[0] ?? vscode.TaskScope.Workspace,
      `${launch.label} (port ${launch.port})`,
      DFS_TASK_TYPE,
      // Settings are read when the task runs, not when it was listed, so a task picked from an old list still starts the configured server.
      new vscode.CustomExecution(async (resolved) => new ProcessTerminal(new NodeProcess(launchFor(resolved as DfsTaskDefinition, this.settings()), this.runtime), this.registry, this.log)),
    );
    task.isBackground = true;
    task.presentationOptions = { reveal: vscode.TaskRevealKind.Silent, panel: vscode.TaskPanelKind.Dedicated, clear: true, echo: false };
    return task;
  }
}
