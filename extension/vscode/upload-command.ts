import { promises as fs } from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { ClusterMonitor } from '../cluster/cluster-monitor';
import type { DfsConnection } from '../cluster/connection';
import { OverwriteAnswer, OverwriteDecider, planUploads } from '../../server/client/upload-plan';
import { counted, formatBytes } from '../model/format';
import { encodeText, encodingOfSaved } from '../upload/buffer-encoding';
import { BatchResult, FileOutcome, UploadSource, runUploadBatch, summarizeBatch } from '../upload/batch-runner';
import { IncrementCounter } from '../upload/progress';
import { inVsCodeWords } from '../model/cluster-health';
import type { ReplicaFixes } from './cluster-commands';
import type { OutputLog } from './output-log';

export interface UploadViews {
  refreshTree(): void;
  /** Stored files this window replaced, so editors showing them reload. */
  filesChanged(clientId: string, names: readonly string[], deleted: boolean): void;
}

const OVERWRITE = 'Overwrite';
const SKIP = 'Skip';
const OVERWRITE_ALL = 'Overwrite All';
const SKIP_ALL = 'Skip All';
const SAVE_AND_UPLOAD = 'Save and Upload';
const UPLOAD_BUFFER = 'Upload Buffer';

/**
 * Upload to DFS, from wherever it is invoked: the Explorer (one or many files and
 * folders), an editor (its file or unsaved buffer), the tree (a file picker) or a drop.
 */
/** Above either, a batch is confirmed first. */
const LARGE_BATCH_FILES = 1_000;
const LARGE_BATCH_BYTES = 1024 * 1024 * 1024;

export class UploadCommand {
  constructor(
    private readonly connection: DfsConnection,
    private readonly monitor: ClusterMonitor,
    private readonly views: UploadViews,
    private readonly log: OutputLog,
    /** What to offer when too few replicas answered (Restart Replica, Open Settings). */
    private readonly replicaFixes?: () => ReplicaFixes,
  ) {}

  /** VS Code passes (clicked, allSelected) from the Explorer, (resource, context) from an editor menu, nothing from the palette. */
  async fromCommand(clicked?: unknown, selected?: unknown): Promise<BatchResult | undefined> {
    if (Array.isArray(selected) && selected.every((item) => item instanceof vscode.Uri) && selected.length > 0) {
      return this.upload(selected as vscode.Uri[]);
    }
    if (clicked instanceof vscode.Uri) {
      return this.upload([clicked]);
    }
    const editor = vscode.window.activeTextEditor;
    if (editor) {
      return this.upload([editor.document.uri]);
    }
    return this.pickAndUpload();
  }

  async pickAndUpload(): Promise<BatchResult | undefined> {
    // Windows and Linux dialogs pick files or folders, never both: a dialog asked for
    // both shows folders only, so ask which first.
    let kind: 'files' | 'folders' | 'both' = 'both';
    if (process.platform !== 'darwin') {
      const choice = await vscode.window.showQuickPick(
        [
          { label: 'Files...', picks: 'files' as const },
          { label: 'Folders...', picks: 'folders' as const },
        ],
        { title: 'Upload to DFS', placeHolder: 'Upload files or whole folders?' },
      );
      if (!choice) {
        return undefined;
      }
      kind = choice.picks;
    }
    const picked = await vscode.window.showOpenDialog({
      canSelectFiles: kind !== 'folders',
      canSelectFolders: kind !== 'files',
      canSelectMany: true,
      openLabel: 'Upload to DFS',
    });
    return picked && picked.length > 0 ? this.upload(picked) : undefined;
  }

  /** `prefix` puts the files under a folder of the stored names (a drop onto a folder in the tree). */
  async upload(uris: readonly vscode.Uri[], prefix = ''): Promise<BatchResult | undefined> {
    const filePaths = uris.filter((uri) => uri.scheme === 'file').map((uri) => uri.fsPath);
    const bufferSources: UploadSource[] = [];
    const unsupported: FileOutcome[] = [];
    for (const uri of uris) {
      if (uri.scheme === 'untitled') {
        const document = vscode.workspace.textDocuments.find((candidate) => candidate.uri.toString() === uri.toString());
        if (document) {
          bufferSources.push({ kind: 'buffer', origin: uri.toString(), name: joinName(prefix, path.posix.basename(uri.path)), content: encodeText(document.getText(), 'utf8') });
          continue;
        }
      }
      if (uri.scheme !== 'file') {
        unsupported.push({ origin: uri.toString(), status: 'failed', code: 'BAD_FILE_NAME', reason: `only local files can be uploaded, not ${uri.scheme}: resources` });
      }
    }

    let plan = await planUploads(filePaths, prefix);
    const dirty = vscode.workspace.textDocuments.filter((document) => document.isDirty && document.uri.scheme === 'file' && plan.uploads.some((upload) => samePath(upload.localPath, document.uri.fsPath)));
    let buffers = new Map<string, Buffer>();
    if (dirty.length > 0) {
      const what = dirty.length === 1 ? `"${path.basename(dirty[0].uri.fsPath)}" has` : `${dirty.length} files have`;
      const choice = await vscode.window.showWarningMessage(
        `${what} unsaved changes.`,
        { modal: true, detail: 'Save them and upload the saved files, or upload what the editor shows without saving?' },
        SAVE_AND_UPLOAD,
        UPLOAD_BUFFER,
      );
      if (choice === undefined) {
        this.log.info('upload cancelled at the unsaved-changes question');
        return undefined;
      }
      if (choice === SAVE_AND_UPLOAD) {
        for (const document of dirty) {
          if (!(await document.save())) {
            await vscode.window.showErrorMessage(`DFS: could not save ${document.uri.fsPath}; nothing was uploaded.`);
            return undefined;
          }
        }
        plan = await planUploads(filePaths, prefix);
      } else {
        const encoded = await Promise.all(dirty.map(async (document) => ({ document, bytes: await bytesLikeSaved(document) })));
        const unknown = encoded.filter((entry) => !entry.bytes).map((entry) => path.basename(entry.document.uri.fsPath));
        if (unknown.length > 0) {
          this.log.warn(`Upload Buffer refused: ${unknown.join(', ')} saved in an encoding other than UTF-8 or UTF-16`);
          await vscode.window.showErrorMessage(
            `DFS: nothing was uploaded: ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} saved in an encoding other than UTF-8 or UTF-16, and VS Code does not tell extensions which. Choose "Save and Upload" to send the saved bytes.`,
          );
          return undefined;
        }
        buffers = new Map(encoded.map((entry) => [path.resolve(entry.document.uri.fsPath), entry.bytes!]));
      }
    }
    const sources: UploadSource[] = [
      ...plan.uploads.map((upload): UploadSource => {
        const buffer = buffers.get(path.resolve(upload.localPath));
        return buffer ? { kind: 'buffer', origin: upload.localPath, name: upload.name, content: buffer } : { kind: 'file', ...upload };
      }),
      ...bufferSources,
    ];
    if (sources.length === 0 && plan.skipped.length === 0 && unsupported.length === 0) {
      await vscode.window.showInformationMessage('DFS: there is nothing to upload in what was selected.');
      return undefined;
    }
    // A right-click on a workspace root also walks .git and node_modules: say how much
    // that is before sending tens of thousands of files.
    const totalBytes = plan.uploads.reduce((sum, upload) => sum + upload.size, 0);
    if (sources.length > LARGE_BATCH_FILES || totalBytes > LARGE_BATCH_BYTES) {
      const confirmed = await vscode.window.showWarningMessage(
        `Upload ${counted(sources.length, 'file')} (${formatBytes(totalBytes)}) to DFS?`,
        { modal: true, detail: 'The selection includes folders with many files (such as .git or node_modules). Select fewer folders to send less.' },
        'Upload',
      );
      if (confirmed !== 'Upload') {
        this.log.info(`upload of ${counted(sources.length, 'file')} not confirmed`);
        return undefined;
      }
    }
    const state = await this.monitor.refresh();
    if (state.kind === 'offline' || state.kind === 'notPrimary' || state.kind === 'readOnly') {
      // Failing every file one by one would bury the one thing to fix.
      const locked = state.kind === 'offline' && state.code === 'AUTH';
      const reason =
        state.kind === 'offline'
          ? locked
            ? `the cluster at ${state.address} refused this window (${state.reason})`
            : `no cluster answers at ${state.address} (${state.reason})`
          : state.kind === 'readOnly'
            ? `no primary answers at ${state.address} (${state.reason}); the cluster is read-only until a primary is back: start one (DFS: Start Cluster in the window that runs the cluster) or check dfs.servers`
            : `${state.address} is a ${state.status.role}, not a primary`;
      this.log.error(`upload not started: ${reason}`);
      const actions = locked ? ['Set Client Key', 'Set Cluster Secret', 'Show Log'] : ['Start Cluster', 'Open Settings', 'Show Log'];
      const choice = await vscode.window.showErrorMessage(`DFS: nothing was uploaded: ${reason}.`, ...actions);
      if (choice === 'Set Client Key') {
        await vscode.commands.executeCommand('dfs.setClientKey');
      } else if (choice === 'Set Cluster Secret') {
        await vscode.commands.executeCommand('dfs.setSecret');
      } else if (choice === 'Start Cluster') {
        await vscode.commands.executeCommand('dfs.startCluster');
      } else if (choice === 'Open Settings') {
        await vscode.commands.executeCommand('dfs.openSettings');
      } else if (choice === 'Show Log') {
        this.log.show();
      }
      return undefined;
    }
    return this.runBatch(sources, plan.skipped, unsupported);
  }

  private async runBatch(sources: UploadSource[], skipped: { localPath: string; reason: string }[], unsupported: FileOutcome[]): Promise<BatchResult> {
    const client = this.connection.client();
    const totalBytes = sources.reduce((sum, source) => sum + (source.kind === 'file' ? source.size : source.content.length), 0);
    this.log.info(`upload to ${this.connection.address} as ${client.clientId}: ${counted(sources.length, 'file')}, ${formatBytes(totalBytes)}`);
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'DFS: uploading', cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        const cancelListener = token.onCancellationRequested(() => {
          this.log.info('upload cancelled by the user; closing the connection so the server keeps nothing');
          abort.abort();
        });
        const increments = new IncrementCounter();
        let lastMessage = '';
        try {
          return await runUploadBatch({
            client,
            sources,
            unplannable: skipped,
            decider: new OverwriteDecider(),
            askOverwrite: (name) => this.askOverwrite(name),
            signal: abort.signal,
            onProgress: (state, current) => {
              const message = `${current ? `${current}: ` : ''}${formatBytes(state.doneBytes)} of ${formatBytes(state.totalBytes)} (${state.percent}%)`;
              // Chunks arrive every 256 KiB; only tell VS Code when the text would change.
              if (message !== lastMessage) {
                lastMessage = message;
                progress.report({ message, increment: increments.next(state.percent) });
              }
            },
            onOutcome: (outcome) => this.logOutcome(outcome),
          });
        } finally {
          cancelListener.dispose();
        }
      },
    );
    result.outcomes.unshift(...unsupported);
    unsupported.forEach((outcome) => this.logOutcome(outcome));
    this.views.refreshTree();
    this.views.filesChanged(
      client.clientId,
      result.outcomes.filter((outcome) => (outcome.status === 'uploaded' || outcome.status === 'incomplete') && outcome.name).map((outcome) => outcome.name!),
      false,
    );
    const checked = this.monitor.refresh().then(
      () => undefined,
      (error: unknown) => this.log.error('status check after upload failed', error),
    );
    let fixes: ReplicaFixes | undefined;
    if (result.outcomes.some((outcome) => outcome.status === 'failed' && outcome.code === 'QUORUM')) {
      // Below the write quorum the fix is a replica to bring back: which are down now, not at the next poll.
      await checked;
      fixes = this.replicaFixes?.();
    }
    await this.report(result, fixes);
    return result;
  }

  private async askOverwrite(name: string): Promise<OverwriteAnswer | undefined> {
    const choice = await vscode.window.showWarningMessage(
      `"${name}" is already stored in DFS.`,
      { modal: true, detail: 'Replace the stored file with this one?' },
      OVERWRITE,
      SKIP,
      OVERWRITE_ALL,
      SKIP_ALL,
    );
    switch (choice) {
      case OVERWRITE:
        return 'overwrite';
      case SKIP:
        return 'skip';
      case OVERWRITE_ALL:
        return 'overwriteAll';
      case SKIP_ALL:
        return 'skipAll';
      default:
        return 'cancel';
    }
  }

  private logOutcome(outcome: FileOutcome): void {
    const what = outcome.name ? `${outcome.name} (from ${outcome.origin})` : outcome.origin;
    switch (outcome.status) {
      case 'uploaded':
        this.log.info(`uploaded ${what}: ${outcome.receipt?.size} bytes, ${outcome.receipt?.copies} copies, sha256 ${outcome.receipt?.sha256}`);
        break;
      case 'incomplete':
        this.log.warn(`stored ${what} with fewer copies than the write quorum requires: ${outcome.reason}`);
        break;
      case 'skipped':
        this.log.info(`skipped ${what}: ${outcome.reason}`);
        break;
      case 'cancelled':
        this.log.warn(`cancelled ${what}: ${outcome.reason}`);
        break;
      case 'failed':
        this.log.error(`upload of ${what} failed [${outcome.code}]: ${outcome.reason}`);
        break;
      case 'unknown':
        this.log.warn(`upload of ${what}: outcome unknown [${outcome.code}]: ${outcome.reason}`);
        break;
    }
  }

  private async report(result: BatchResult, fixes?: ReplicaFixes): Promise<void> {
    const summary = summarizeBatch(result);
    if (summary.failed > 0 || summary.unknown > 0) {
      const text = fixes ? `${inVsCodeWords(summary.text)}${fixes.advice ? ` ${fixes.advice}` : ''}` : summary.text;
      const choice = await vscode.window.showErrorMessage(text, ...(fixes?.actions ?? []), 'Show Log');
      if (await fixes?.run(choice)) {
        return;
      }
      if (choice === 'Show Log') {
        this.log.show();
      }
    } else if (result.cancelled) {
      await vscode.window.showWarningMessage(`${summary.text} Nothing partial was kept on the servers.`);
    } else {
      await vscode.window.showInformationMessage(summary.text);
    }
  }
}

/**
 * An editor's text in the encoding its saved file uses (a byte-order mark is kept), not
 * re-encoded as UTF-8; undefined when that encoding cannot be told (see encodingOfSaved).
 */
async function bytesLikeSaved(document: vscode.TextDocument): Promise<Buffer | undefined> {
  const saved = await fs.readFile(document.uri.fsPath).catch(() => undefined);
  const encoding = encodingOfSaved(saved);
  return encoding && encodeText(document.getText(), encoding);
}

function joinName(prefix: string, name: string): string {
  return prefix ? `${prefix.replace(/\/+$/, '')}/${name}` : name;
}

function samePath(a: string, b: string): boolean {
  return path.resolve(a) === path.resolve(b);
}
