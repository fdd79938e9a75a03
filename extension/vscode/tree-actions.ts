import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DfsConnection } from '../cluster/connection';
import { counted, formatBytes } from '../model/format';
import { describeError } from '../model/logger';
import { checkNewName, copyName } from '../model/name-input';
import { RenameStep, checkRenameTarget, renameSteps } from '../model/rename-plan';
import { PlannedFile, SelectionPlan, describeSelection, planSelection, selectedNodes } from '../model/selection-plan';
import { DfsNode, FileNode, filterMessage } from '../model/tree-model';
import { currentGenerationOf, toDfsError } from '../../server/protocol';
import type { FileCommands, FileViews } from './file-commands';
import type { OutputLog } from './output-log';
import { isDfsNode } from './stored-target';

/** The part of the tree the actions change: its filter. */
export interface FilterableTree {
  readonly filter: string;
  setFilter(text: string): void;
}

/** Names listed in a confirmation before "and N more". */
const NAMES_LISTED = 10;

export interface DownloadReport {
  folder: string;
  downloaded: string[];
  skipped: string[];
  failed: { name: string; reason: string }[];
  cancelled: boolean;
}

export interface RenameReport {
  renamed: RenameStep[];
  /** The rename that failed and stopped the rest. */
  failed: { step: RenameStep; reason: string } | undefined;
}

export interface DeleteReport {
  deleted: string[];
  notDeleted: { name: string; reason: string }[];
}

/**
 * What the tree does to a selection: download or delete several files and folders at
 * once, copy a file under a new name, copy paths, and narrow the tree with a filter.
 * A single file keeps the single-file commands (a save dialog, a confirmation naming it).
 */
export class TreeActions {
  constructor(
    private readonly connection: DfsConnection,
    private readonly tree: FilterableTree,
    private readonly files: FileCommands,
    private readonly views: FileViews,
    private readonly log: OutputLog,
    /** The tree's selection, for a command run from a key (VS Code passes no node then). */
    private readonly selection: () => readonly DfsNode[],
  ) {}

  async download(clicked?: unknown, selected?: unknown): Promise<DownloadReport | string | undefined> {
    const target = await this.target(clicked, selected);
    if (target.kind !== 'plan') {
      return target.kind === 'file' ? this.files.download(target.node) : undefined;
    }
    const plan = target.plan;
    if (plan.collisions.length > 0) {
      const clash = plan.collisions[0];
      await vscode.window.showErrorMessage(`DFS: nothing was downloaded: ${clash.names.join(' and ')} would both be saved as ${clash.relativePath}. Download them separately, or select their folders instead.`);
      return undefined;
    }
    const start = vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(os.homedir());
    const picked = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, openLabel: 'Download Here', title: `Download ${describeSelection(plan)} from DFS into`, defaultUri: start });
    const folder = picked?.[0]?.fsPath;
    if (!folder) {
      return undefined;
    }
    const existing = (await Promise.all(plan.files.map(async (file) => ((await exists(localPathOf(folder, file))) ? file : undefined)))).filter((file): file is PlannedFile => file !== undefined);
    let replaceExisting = false;
    if (existing.length > 0) {
      const choice = await vscode.window.showWarningMessage(
        `${existing.length === 1 ? `${existing[0].relativePath} already exists` : `${existing.length} of the ${plan.files.length} files already exist`} in ${folder}.`,
        { modal: true, detail: `${listNames(existing.map((file) => file.relativePath))}\nReplace them with the stored files, or skip them?` },
        'Replace',
        'Skip Existing',
      );
      if (!choice) {
        return undefined;
      }
      replaceExisting = choice === 'Replace';
    }
    const report: DownloadReport = { folder, downloaded: [], skipped: [], failed: [], cancelled: false };
    this.log.info(`download ${describeSelection(plan)} to ${folder}`);
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `DFS: downloading ${describeSelection(plan)}`, cancellable: true }, async (progress, token) => {
      const abort = new AbortController();
      const listener = token.onCancellationRequested(() => abort.abort());
      let doneBytes = 0;
      let reported = 0;
      const report100 = (bytes: number): void => {
        const percent = plan.bytes > 0 ? Math.floor((bytes / plan.bytes) * 100) : 100;
        if (percent > reported) {
          progress.report({ increment: percent - reported, message: `${formatBytes(bytes)} of ${formatBytes(plan.bytes)}` });
          reported = percent;
        }
      };
      try {
        for (const file of plan.files) {
          if (abort.signal.aborted) {
            report.cancelled = true;
            break;
          }
          const destination = localPathOf(folder, file);
          if (!replaceExisting && existing.includes(file)) {
            report.skipped.push(file.relativePath);
            doneBytes += file.size;
            continue;
          }
          progress.report({ message: file.relativePath });
          try {
            await fs.mkdir(path.dirname(destination), { recursive: true });
            // Into a temporary file beside the destination, renamed there once complete and verified.
            await this.connection.client().downloadToFile(file.name, destination, { clientId: file.clientId, signal: abort.signal, onProgress: (done) => report100(doneBytes + done) });
            report.downloaded.push(file.relativePath);
            this.log.info(`downloaded ${file.clientId}/${file.name} to ${destination}`);
          } catch (error) {
            if (toDfsError(error).code === 'CANCELLED') {
              report.cancelled = true;
              this.log.info(`download cancelled during ${file.clientId}/${file.name}; nothing partial was kept`);
              break;
            }
            this.log.error(`download of ${file.clientId}/${file.name} failed`, error);
            report.failed.push({ name: `${file.clientId}/${file.name}`, reason: describeError(error) });
          }
          doneBytes += file.size;
          report100(doneBytes);
        }
      } finally {
        listener.dispose();
      }
    });
    const done = `${counted(report.downloaded.length, 'file')} downloaded to ${folder}`;
    const skipped = report.skipped.length > 0 ? `, ${report.skipped.length} skipped (already there)` : '';
    if (report.failed.length > 0) {
      await this.showFailure(`DFS: ${done}${skipped}; ${report.failed.length} failed. First failure: ${report.failed[0].name}: ${report.failed[0].reason}`);
    } else if (report.cancelled) {
      await vscode.window.showWarningMessage(`DFS: download cancelled: ${done}${skipped}, each complete and verified; nothing partial was kept.`);
    } else {
      await vscode.window.showInformationMessage(`DFS: ${done}${skipped} (checksums verified).`);
    }
    return report;
  }

  async delete(clicked?: unknown, selected?: unknown): Promise<DeleteReport | boolean | undefined> {
    const target = await this.target(clicked, selected);
    if (target.kind !== 'plan') {
      return target.kind === 'file' ? this.files.delete(target.node) : undefined;
    }
    const plan = target.plan;
    const choice = await vscode.window.showWarningMessage(
      `Delete ${counted(plan.files.length, 'file')} from DFS?`,
      {
        modal: true,
        detail: `${listNames(plan.files.map((file) => `${file.clientId}/${file.name}`))}\nEvery copy of each, on the primary and on each replica, is removed (${formatBytes(plan.bytes)} in all). This cannot be undone.`,
      },
      'Delete',
    );
    if (choice !== 'Delete') {
      return undefined;
    }
    const report: DeleteReport = { deleted: [], notDeleted: [] };
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `DFS: deleting ${counted(plan.files.length, 'file')}` }, async (progress) => {
      for (const file of plan.files) {
        const label = `${file.clientId}/${file.name}`;
        try {
          // Only the version the tree showed: one stored since then is not deleted blind.
          await this.connection.client().delete(file.name, { clientId: file.clientId, ifGeneration: file.generation });
          report.deleted.push(label);
          this.log.info(`deleted ${label} (generation ${file.generation})`);
        } catch (error) {
          const current = currentGenerationOf(error);
          const reason = current === null ? 'it is already gone' : current !== undefined ? `it changed since the tree showed it (now generation ${current})` : describeError(error);
          this.log.error(`delete of ${label} failed: ${reason}`);
          report.notDeleted.push({ name: label, reason });
        }
        progress.report({ increment: 100 / plan.files.length });
      }
    });
    this.views.refreshTree();
    for (const clientId of new Set(plan.files.map((file) => file.clientId))) {
      this.views.filesChanged(clientId, plan.files.filter((file) => file.clientId === clientId && report.deleted.includes(`${clientId}/${file.name}`)).map((file) => file.name), true);
    }
    if (report.notDeleted.length > 0) {
      const first = report.notDeleted[0];
      await this.showFailure(`DFS: ${counted(report.deleted.length, 'file')} deleted; ${report.notDeleted.length} not: ${first.name}: ${first.reason}. The tree is refreshed; look again before deleting.`);
    } else {
      await vscode.window.showInformationMessage(`DFS: deleted ${counted(report.deleted.length, 'file')}.`);
    }
    return report;
  }

  /** Copy (into the user's own files) under a new name: downloaded, then uploaded only if that name is still free. */
  async copy(node?: unknown): Promise<string | undefined> {
    if (!isDfsNode(node) || node.kind !== 'file') {
      return undefined;
    }
    const client = this.connection.client();
    const stored = new Set((await this.connection.reader().files(client.clientId)).map((record) => record.name));
    const source = `${node.clientId}/${node.record.name}`;
    const own = node.clientId === client.clientId;
    const typed = await vscode.window.showInputBox({
      title: `Copy ${source}`,
      prompt: `New name${own ? '' : ` in your files (client ${client.clientId})`}; "/" makes folders`,
      value: own || stored.has(node.record.name) ? copyName(node.record.name, stored) : node.record.name,
      validateInput: (value) => checkNewName(value, own ? node.record.name : '', stored),
    });
    if (typed === undefined) {
      return undefined;
    }
    const target = typed.trim();
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-copy-'));
    try {
      const receipt = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `DFS: copying ${source} to ${target}`, cancellable: true }, async (_progress, token) => {
        const abort = new AbortController();
        const listener = token.onCancellationRequested(() => abort.abort());
        try {
          const local = path.join(work, 'content');
          await client.downloadToFile(node.record.name, local, { clientId: node.clientId, signal: abort.signal });
          // If absent: a name stored meanwhile by someone else is never replaced by a copy.
          return await client.uploadFile(local, target, { signal: abort.signal, precondition: { kind: 'absent' } });
        } finally {
          listener.dispose();
        }
      });
      this.log.info(`copied ${source} to ${client.clientId}/${target} (generation ${receipt.generation}, ${receipt.size} bytes)`);
      this.views.refreshTree();
      await vscode.window.showInformationMessage(`DFS: copied ${source} to ${client.clientId}/${target} (${formatBytes(receipt.size)}).`);
      return target;
    } catch (error) {
      const failure = toDfsError(error);
      if (failure.code === 'CANCELLED') {
        this.log.info(`copy of ${source} cancelled; nothing was stored`);
        await vscode.window.showWarningMessage(`DFS: copy of ${source} cancelled; nothing was stored.`);
        return undefined;
      }
      this.log.error(`copy of ${source} to ${target} failed`, error);
      const taken = currentGenerationOf(error) !== undefined;
      await this.showFailure(taken ? `DFS: nothing was copied: "${target}" was stored by someone else meanwhile. Copy again with another name.` : `DFS: copy of ${source} failed: ${describeError(error)}`);
      this.views.refreshTree();
      return undefined;
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  }

  /**
   * Rename or Move...: a file is renamed on every copy at once (RENAME, only while it
   * is still the version the tree showed, never over a stored name). A folder is not
   * one stored object: its files are renamed one by one, the user is told so first, and
   * the first failure stops it, saying which files moved and which did not.
   */
  async rename(clicked?: unknown): Promise<RenameReport | undefined> {
    const [node] = this.nodes(clicked, undefined);
    if (!node || node.kind === 'client') {
      return undefined;
    }
    const stored = new Set((await this.connection.reader().files(node.clientId)).map((record) => record.name));
    const current = node.kind === 'file' ? node.record.name : node.path;
    const base = path.posix.basename(current);
    const typed = await vscode.window.showInputBox({
      title: `Rename or Move ${node.clientId}/${current}${node.kind === 'folder' ? '/' : ''}`,
      prompt: node.kind === 'file' ? 'New name; "/" moves it into folders' : 'New folder path; every file below it moves there',
      value: current,
      valueSelection: [current.length - base.length, current.length - path.posix.extname(base).length],
      validateInput: (value) => checkRenameTarget(value, node, stored),
    });
    if (typed === undefined) {
      return undefined;
    }
    const steps = renameSteps(node, typed);
    const target = typed.trim().replace(/\/+$/, '');
    if (node.kind === 'folder') {
      const choice = await vscode.window.showWarningMessage(
        `Move ${counted(steps.length, 'file')} from ${node.clientId}/${node.path}/ to ${target}/?`,
        { modal: true, detail: 'A folder is not stored as one object: its files are renamed one by one, each atomically on every copy. If one fails, the renaming stops there and the files not yet renamed stay where they are.' },
        'Move',
      );
      if (choice !== 'Move') {
        return undefined;
      }
    }
    const report: RenameReport = { renamed: [], failed: undefined };
    const client = this.connection.client();
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `DFS: renaming ${node.clientId}/${current}` }, async (progress) => {
      for (const step of steps) {
        try {
          const receipt = await client.rename(step.from, step.to, { clientId: node.clientId, ifGeneration: step.generation });
          report.renamed.push(step);
          this.log.info(`renamed ${node.clientId}/${step.from} (generation ${step.generation}) to ${step.to} (generation ${receipt.generation}, ${counted(receipt.copies, 'copy', 'copies')})`);
        } catch (error) {
          const current = currentGenerationOf(error);
          const failure = toDfsError(error);
          const reason =
            current === null || failure.code === 'NOT_FOUND'
              ? `${step.from} is gone`
              : current !== undefined
                ? `${step.from} changed since the tree showed it (now generation ${current})`
                : failure.code === 'EXISTS'
                  ? `${step.to} was stored meanwhile`
                  : describeError(error);
          this.log.error(`rename of ${node.clientId}/${step.from} to ${step.to} failed: ${reason}`);
          report.failed = { step, reason };
          break;
        }
        progress.report({ increment: 100 / steps.length });
      }
    });
    this.views.refreshTree();
    this.views.filesChanged(node.clientId, report.renamed.map((step) => step.from), true);
    if (report.failed) {
      const left = steps.length - report.renamed.length;
      await this.showFailure(
        `DFS: ${report.failed.step.from} was not renamed: ${report.failed.reason}.${node.kind === 'folder' ? ` ${counted(report.renamed.length, 'file')} moved to ${target}/, ${counted(left, 'file')} stayed in ${node.path}/ (renaming stopped there).` : ''} The tree is refreshed; look again and retry.`,
      );
    } else {
      vscode.window.setStatusBarMessage(`DFS: ${node.kind === 'folder' ? `${counted(steps.length, 'file')} moved to ${target}/` : `renamed to ${target}`}`, 5_000);
    }
    return report;
  }

  /** `client/name` of every selected file and folder, one a line. */
  async copyPath(clicked?: unknown, selected?: unknown): Promise<string> {
    const paths = this.nodes(clicked, selected).map((node) => (node.kind === 'client' ? node.clientId : node.kind === 'folder' ? `${node.clientId}/${node.path}/` : `${node.clientId}/${node.record.name}`));
    const text = paths.join('\n');
    await vscode.env.clipboard.writeText(text);
    vscode.window.setStatusBarMessage(`DFS: ${paths.length === 1 ? paths[0] : counted(paths.length, 'path')} copied`, 3_000);
    return text;
  }

  /** Filter...: narrows the tree to the files whose path matches; an empty answer clears it. */
  async filter(): Promise<string | undefined> {
    const typed = await vscode.window.showInputBox({
      title: 'Filter Stored Files',
      prompt: 'Show only files whose path contains every word typed (ignoring case; * and ? are wildcards). Empty shows every file.',
      value: this.tree.filter,
      placeHolder: 'for example: report .pdf',
    });
    if (typed === undefined) {
      return undefined;
    }
    await this.applyFilter(typed);
    return typed.trim();
  }

  async clearFilter(): Promise<void> {
    await this.applyFilter('');
  }

  /** What the view says above its files for the filter, or undefined without one. */
  get message(): string | undefined {
    return this.tree.filter ? filterMessage(this.tree.filter) : undefined;
  }

  onFilterChanged: () => void = () => undefined;

  private async applyFilter(text: string): Promise<void> {
    this.tree.setFilter(text);
    this.log.info(text.trim() ? `tree filtered by "${text.trim()}"` : 'tree filter cleared');
    await vscode.commands.executeCommand('setContext', 'dfs.filterActive', this.tree.filter !== '');
    this.onFilterChanged();
  }

  /** One file keeps the single-file command; several rows or a folder are planned; nothing stored in them is said so. */
  private async target(clicked: unknown, selected: unknown): Promise<{ kind: 'file'; node: FileNode } | { kind: 'plan'; plan: SelectionPlan } | { kind: 'none' }> {
    const nodes = this.nodes(clicked, selected);
    if (nodes.length === 1 && nodes[0].kind === 'file') {
      return { kind: 'file', node: nodes[0] };
    }
    const plan = planSelection(nodes);
    if (plan.files.length === 0) {
      await vscode.window.showInformationMessage('DFS: there are no stored files in what was selected.');
      return { kind: 'none' };
    }
    return { kind: 'plan', plan };
  }

  private nodes(clicked: unknown, selected: unknown): DfsNode[] {
    const selection = Array.isArray(selected) ? selected.filter(isDfsNode) : undefined;
    return selectedNodes(isDfsNode(clicked) ? clicked : undefined, selection, this.selection());
  }

  private async showFailure(message: string): Promise<void> {
    if ((await vscode.window.showErrorMessage(message, 'Show Log')) === 'Show Log') {
      this.log.show();
    }
  }
}

function localPathOf(folder: string, file: PlannedFile): string {
  return path.join(folder, ...file.relativePath.split('/'));
}

async function exists(fsPath: string): Promise<boolean> {
  return (await fs.lstat(fsPath).catch(() => undefined)) !== undefined;
}

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, NAMES_LISTED).join('\n');
  return names.length > NAMES_LISTED ? `${shown}\nand ${names.length - NAMES_LISTED} more` : shown;
}
