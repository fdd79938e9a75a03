/**
 * A test double of the `vscode` module: enough of the API for the DFS extension to
 * activate and run its commands under plain mocha. UI calls (messages, dialogs,
 * progress) are recorded and answered through `testing`; tasks with a
 * CustomExecution really run their pseudoterminal, so cluster processes are real.
 */
import { EventEmitter as NodeEventEmitter } from 'events';
import { readFile } from 'fs/promises';
import { promises as fsPromises, watch as watchFolder } from 'fs';
import * as path from 'path';

// ---------------------------------------------------------------- basics

export class Disposable {
  constructor(private readonly onDispose: () => unknown) {}

  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((item) => item.dispose()));
  }

  dispose(): void {
    this.onDispose();
  }
}

export type Event<T> = (listener: (value: T) => unknown, thisArg?: unknown, disposables?: Disposable[]) => Disposable;

export class EventEmitter<T> {
  private listeners = new Set<(value: T) => unknown>();

  readonly event: Event<T> = (listener, thisArg, disposables) => {
    const bound = (value: T): unknown => listener.call(thisArg, value);
    this.listeners.add(bound);
    const disposable = new Disposable(() => this.listeners.delete(bound));
    disposables?.push(disposable);
    return disposable;
  };

  fire(value: T): void {
    [...this.listeners].forEach((listener) => listener(value));
  }

  dispose(): void {
    this.listeners.clear();
  }
}

export class CancellationTokenSource {
  private readonly emitter = new EventEmitter<void>();
  private cancelled = false;
  readonly token: { readonly isCancellationRequested: boolean; onCancellationRequested: Event<void> };

  constructor() {
    const isCancelled = (): boolean => this.cancelled;
    this.token = {
      get isCancellationRequested(): boolean {
        return isCancelled();
      },
      onCancellationRequested: this.emitter.event,
    };
  }

  cancel(): void {
    if (!this.cancelled) {
      this.cancelled = true;
      this.emitter.fire();
    }
  }

  dispose(): void {
    this.emitter.dispose();
  }
}

interface UriParts {
  scheme: string;
  authority?: string;
  path?: string;
  query?: string;
  fragment?: string;
}

export class Uri {
  readonly scheme: string;
  readonly authority: string;
  readonly path: string;
  readonly query: string;
  readonly fragment: string;

  private constructor(parts: UriParts) {
    this.scheme = parts.scheme;
    this.authority = parts.authority ?? '';
    this.path = parts.path ?? '';
    this.query = parts.query ?? '';
    this.fragment = parts.fragment ?? '';
  }

  static file(fsPath: string): Uri {
    return new Uri({ scheme: 'file', path: path.resolve(fsPath) });
  }

  static from(parts: UriParts): Uri {
    return new Uri(parts);
  }

  static parse(text: string): Uri {
    const match = /^([a-zA-Z][\w+.-]*):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/.exec(text);
    if (!match) {
      throw new Error(`not a URI: ${text}`);
    }
    return new Uri({ scheme: match[1], authority: match[2] ?? '', path: decodeURIComponent(match[3]), query: match[4] ?? '', fragment: match[5] ?? '' });
  }

  static joinPath(base: Uri, ...segments: string[]): Uri {
    return base.with({ path: path.posix.join(base.path, ...segments) });
  }

  get fsPath(): string {
    return this.path;
  }

  with(change: Partial<UriParts>): Uri {
    return new Uri({ scheme: this.scheme, authority: this.authority, path: this.path, query: this.query, fragment: this.fragment, ...change });
  }

  toString(): string {
    const encodedPath = this.path
      .split('/')
      .map((segment) => encodeURIComponent(segment))
      .join('/');
    const authority = this.scheme === 'file' || this.authority ? `//${this.authority}` : '';
    return `${this.scheme}:${authority}${encodedPath}${this.query ? `?${this.query}` : ''}${this.fragment ? `#${this.fragment}` : ''}`;
  }

  toJSON(): unknown {
    return { scheme: this.scheme, path: this.path };
  }
}

export class RelativePattern {
  readonly baseUri: Uri;
  constructor(
    base: Uri | string | { uri: Uri },
    readonly pattern: string,
  ) {
    this.baseUri = typeof base === 'string' ? Uri.file(base) : base instanceof Uri ? base : base.uri;
  }
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class ThemeIcon {
  static readonly File = new ThemeIcon('file');
  static readonly Folder = new ThemeIcon('folder');
  constructor(
    readonly id: string,
    readonly color?: ThemeColor,
  ) {}
}

export class MarkdownString {
  constructor(public value = '') {}
}

export enum TreeItemCollapsibleState {
  None = 0,
  Collapsed = 1,
  Expanded = 2,
}

export class TreeItem {
  id?: string;
  description?: string;
  tooltip?: string | MarkdownString;
  contextValue?: string;
  iconPath?: ThemeIcon | Uri;
  resourceUri?: Uri;
  command?: { command: string; title: string; arguments?: unknown[] };
  constructor(
    public label: string,
    public collapsibleState: TreeItemCollapsibleState = TreeItemCollapsibleState.None,
  ) {}
}

export enum QuickPickItemKind {
  Separator = -1,
  Default = 0,
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}

export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}

export enum FileType {
  Unknown = 0,
  File = 1,
  Directory = 2,
  SymbolicLink = 64,
}

export enum FilePermission {
  Readonly = 1,
}

export enum FileChangeType {
  Changed = 1,
  Created = 2,
  Deleted = 3,
}

export class FileSystemError extends Error {
  constructor(
    message?: string,
    readonly code = 'Unknown',
  ) {
    super(message);
    this.name = 'FileSystemError';
  }

  static FileNotFound(what?: string | Uri): FileSystemError {
    return new FileSystemError(`file not found: ${String(what)}`, 'FileNotFound');
  }

  static NoPermissions(what?: string | Uri): FileSystemError {
    return new FileSystemError(`no permissions: ${String(what)}`, 'NoPermissions');
  }

  static Unavailable(what?: string | Uri): FileSystemError {
    return new FileSystemError(`unavailable: ${String(what)}`, 'Unavailable');
  }

  static FileExists(what?: string | Uri): FileSystemError {
    return new FileSystemError(`file exists: ${String(what)}`, 'FileExists');
  }

  static FileIsADirectory(what?: string | Uri): FileSystemError {
    return new FileSystemError(`file is a directory: ${String(what)}`, 'FileIsADirectory');
  }
}

export enum ConfigurationTarget {
  Global = 1,
  Workspace = 2,
  WorkspaceFolder = 3,
}

// ---------------------------------------------------------------- data transfer (drag and drop)

export class DataTransferItem {
  constructor(
    readonly value: unknown,
    private readonly file?: { name: string; uri?: Uri; data(): Promise<Uint8Array> },
  ) {}

  async asString(): Promise<string> {
    return typeof this.value === 'string' ? this.value : JSON.stringify(this.value);
  }

  asFile(): { name: string; uri?: Uri; data(): Promise<Uint8Array> } | undefined {
    return this.file;
  }
}

export class DataTransfer {
  private readonly items = new Map<string, DataTransferItem>();

  get(mimeType: string): DataTransferItem | undefined {
    return this.items.get(mimeType.toLowerCase());
  }

  set(mimeType: string, value: DataTransferItem): void {
    this.items.set(mimeType.toLowerCase(), value);
  }

  forEach(callback: (item: DataTransferItem, mimeType: string, dataTransfer: DataTransfer) => void): void {
    this.items.forEach((item, mimeType) => callback(item, mimeType, this));
  }
}

// ---------------------------------------------------------------- tasks

export enum TaskScope {
  Global = 1,
  Workspace = 2,
}

export enum TaskRevealKind {
  Always = 1,
  Silent = 2,
  Never = 3,
}

export enum TaskPanelKind {
  Shared = 1,
  Dedicated = 2,
  New = 3,
}

export interface Pseudoterminal {
  onDidWrite: Event<string>;
  onDidClose?: Event<number | void>;
  open(initialDimensions: unknown): void;
  close(): void;
}

export class CustomExecution {
  constructor(readonly callback: (definition: Record<string, unknown>) => Promise<Pseudoterminal>) {}
}

export class Task {
  isBackground = false;
  presentationOptions: Record<string, unknown> = {};
  problemMatchers: string[] = [];
  constructor(
    readonly definition: Record<string, unknown> & { type: string },
    readonly scope: unknown,
    readonly name: string,
    readonly source: string,
    readonly execution?: CustomExecution,
  ) {}
}

export interface TaskExecution {
  task: Task;
  terminate(): void;
}

/** A task run through the double: its terminal output and whether it has ended. */
export interface RunTask {
  task: Task;
  output: string[];
  exitCode?: number;
  ended: Promise<number | void>;
}

// ---------------------------------------------------------------- the scripted UI

export type MessageKind = 'info' | 'warning' | 'error';

export interface ShownMessage {
  kind: MessageKind;
  message: string;
  modal: boolean;
  detail?: string;
  items: string[];
  answer?: string;
}

export interface ProgressRun {
  title?: string;
  cancellable: boolean;
  reports: { message?: string; increment?: number }[];
  cancel(): void;
  done: boolean;
}

interface TreeViewRecord {
  provider: { getChildren(element?: unknown): unknown; getTreeItem(element: unknown): unknown; onDidChangeTreeData?: Event<unknown> };
  dragAndDropController?: { handleDrop(target: unknown, dataTransfer: DataTransfer, token: unknown): Promise<void>; dropMimeTypes: readonly string[] };
  refreshes: number;
  /** What the extension shows above the tree (TreeView.message). */
  message?: string;
  canSelectMany: boolean;
  /** The rows the user selected (TreeView.selection); tests set it before running a command from a key. */
  selection: unknown[];
  visible: boolean;
  /** Shows or hides the view, the way switching the side bar does (onDidChangeVisibility fires). */
  setVisible(visible: boolean): void;
}

/** A diff editor opened through `vscode.diff`, with what each side read. */
export interface OpenedDiff {
  left: Uri;
  right: Uri;
  title?: string;
  leftContent: Buffer;
  rightContent: Buffer;
}

export interface FakeTextDocument {
  uri: Uri;
  isDirty: boolean;
  getText(): string;
  save(): Promise<boolean>;
}

/** Everything a test reads or scripts. Not part of VS Code's API; the extension never touches it. */
class Testing extends NodeEventEmitter {
  configuration = new Map<string, unknown>();
  messages: ShownMessage[] = [];
  /** Picks the button for a message; undefined dismisses it (Escape). */
  answer: (message: ShownMessage) => string | undefined = () => undefined;
  saveDialog: (options: unknown) => Uri | undefined = () => undefined;
  /** Answers an input box; undefined dismisses it (Escape). */
  inputBox: (options: { title?: string; password?: boolean }) => string | undefined = () => undefined;
  /** VS Code's secret storage, in memory. */
  readonly secrets = new Map<string, string>();
  /** ExtensionContext.workspaceState, in memory: kept across activations until reset(), as VS Code keeps it across reloads. */
  readonly workspaceState = new Map<string, unknown>();
  readonly secretsChanged = new EventEmitter<{ key: string }>();
  openDialog: (options: unknown) => Uri[] | undefined = () => undefined;
  /** Picks from a quick pick; undefined dismisses it (Escape). */
  quickPick: (items: { label: string }[], options: unknown) => { label: string } | undefined = () => undefined;
  progress: ProgressRun[] = [];
  onProgressReport: ((run: ProgressRun, report: { message?: string; increment?: number }) => void) | undefined;
  contexts = new Map<string, unknown>();
  output: string[] = [];
  clipboard = '';
  opened: { uri: Uri; content: Buffer }[] = [];
  diffs: OpenedDiff[] = [];
  /** File system watchers the extension made, open ones only. */
  watchers: FileSystemWatcher[] = [];
  executedCommands: { command: string; args: unknown[] }[] = [];
  treeViews = new Map<string, TreeViewRecord>();
  fileSystems = new Map<string, { provider: Record<string, (...args: any[]) => any>; options: { isReadonly?: boolean; isCaseSensitive?: boolean } }>();
  taskProviders = new Map<string, { provideTasks(): Task[]; resolveTask(task: Task): Task | undefined }>();
  tasks: RunTask[] = [];
  statusBarItems: StatusBarItem[] = [];
  textDocuments: FakeTextDocument[] = [];
  activeTextEditor: { document: FakeTextDocument } | undefined;
  workspaceFolders: { uri: Uri; name: string; index: number }[] | undefined;
  readonly commands = new Map<string, (...args: any[]) => unknown>();
  readonly configurationChanged = new EventEmitter<{ affectsConfiguration(section: string): boolean }>();

  /** Changes settings the way the Settings editor does, firing onDidChangeConfiguration. */
  setConfiguration(values: Record<string, unknown>): void {
    for (const [key, value] of Object.entries(values)) {
      this.configuration.set(key, value);
    }
    const keys = Object.keys(values);
    this.configurationChanged.fire({ affectsConfiguration: (section) => keys.some((key) => key === section || key.startsWith(`${section}.`)) });
  }

  /** Resolves with the first message, already shown or still to come, that matches. */
  waitForMessage(matches: (message: ShownMessage) => boolean, from = 0): Promise<ShownMessage> {
    const existing = this.messages.slice(from).find(matches);
    if (existing) {
      return Promise.resolve(existing);
    }
    return new Promise((resolve) => {
      const listener = (message: ShownMessage): void => {
        if (matches(message)) {
          this.off('message', listener);
          resolve(message);
        }
      };
      this.on('message', listener);
    });
  }

  /** Resolves once `setContext` gives `key` the value `value`. */
  waitForContext(key: string, value: unknown): Promise<void> {
    if (this.contexts.get(key) === value) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const listener = (changed: string, now: unknown): void => {
        if (changed === key && now === value) {
          this.off('context', listener);
          resolve();
        }
      };
      this.on('context', listener);
    });
  }

  /** Resolves with the status bar text once it satisfies `matches`. */
  waitForStatusBar(matches: (text: string) => boolean): Promise<string> {
    const now = this.statusBarItems.find((item) => matches(item.text));
    if (now) {
      return Promise.resolve(now.text);
    }
    return new Promise((resolve) => {
      const listener = (text: string): void => {
        if (matches(text)) {
          this.off('statusBar', listener);
          resolve(text);
        }
      };
      this.on('statusBar', listener);
    });
  }

  reset(): void {
    this.removeAllListeners();
    this.configuration.clear();
    this.messages = [];
    this.answer = () => undefined;
    this.saveDialog = () => undefined;
    this.inputBox = () => undefined;
    this.secrets.clear();
    this.workspaceState.clear();
    this.openDialog = () => undefined;
    this.quickPick = () => undefined;
    this.progress = [];
    this.onProgressReport = undefined;
    this.contexts.clear();
    this.output = [];
    this.clipboard = '';
    this.opened = [];
    this.diffs = [];
    this.watchers.forEach((watcher) => watcher.dispose());
    this.watchers = [];
    this.executedCommands = [];
    this.treeViews.clear();
    this.fileSystems.clear();
    this.taskProviders.clear();
    this.tasks = [];
    this.statusBarItems = [];
    this.textDocuments = [];
    this.activeTextEditor = undefined;
    this.workspaceFolders = undefined;
    this.commands.clear();
  }
}

export const testing = new Testing();

// ---------------------------------------------------------------- window

class OutputChannel {
  constructor(readonly name: string) {}
  private write(level: string, message: string): void {
    testing.output.push(`[${level}] ${message}`);
  }
  info(message: string): void {
    this.write('info', message);
  }
  warn(message: string): void {
    this.write('warning', message);
  }
  error(message: string | Error): void {
    this.write('error', String(message));
  }
  debug(message: string): void {
    this.write('debug', message);
  }
  trace(message: string): void {
    this.write('trace', message);
  }
  append(text: string): void {
    testing.output.push(text);
  }
  appendLine(line: string): void {
    testing.output.push(line);
  }
  clear(): void {}
  show(): void {
    testing.emit('logShown');
  }
  hide(): void {}
  dispose(): void {}
}

export class StatusBarItem {
  private currentText = '';
  tooltip: string | undefined;
  command: string | undefined;
  name: string | undefined;
  backgroundColor: ThemeColor | undefined;
  visible = false;

  constructor(
    readonly id: string,
    readonly alignment: StatusBarAlignment,
    readonly priority: number,
  ) {}

  get text(): string {
    return this.currentText;
  }

  set text(value: string) {
    this.currentText = value;
    testing.emit('statusBar', value);
  }

  show(): void {
    this.visible = true;
  }

  hide(): void {
    this.visible = false;
  }

  dispose(): void {
    testing.statusBarItems = testing.statusBarItems.filter((item) => item !== this);
  }
}

function showMessage(kind: MessageKind, message: string, rest: unknown[]): Promise<string | undefined> {
  const options = rest.length > 0 && typeof rest[0] === 'object' && rest[0] !== null && !('title' in (rest[0] as object)) ? (rest.shift() as { modal?: boolean; detail?: string }) : {};
  const items = rest.map((item) => (typeof item === 'string' ? item : (item as { title: string }).title));
  const shown: ShownMessage = { kind, message, modal: options.modal === true, detail: options.detail, items };
  shown.answer = testing.answer(shown);
  if (shown.answer !== undefined && !items.includes(shown.answer)) {
    throw new Error(`the test answered "${shown.answer}" to "${message}", which offers only ${JSON.stringify(items)}`);
  }
  testing.messages.push(shown);
  testing.emit('message', shown);
  return Promise.resolve(shown.answer);
}

export const window = {
  get activeTextEditor() {
    return testing.activeTextEditor;
  },
  createOutputChannel(name: string): OutputChannel {
    return new OutputChannel(name);
  },
  createStatusBarItem(id: string, alignment: StatusBarAlignment, priority: number): StatusBarItem {
    const item = new StatusBarItem(id, alignment, priority);
    testing.statusBarItems.push(item);
    return item;
  },
  createTreeView(id: string, options: { treeDataProvider: TreeViewRecord['provider']; dragAndDropController?: TreeViewRecord['dragAndDropController']; canSelectMany?: boolean }) {
    const record: TreeViewRecord = {
      provider: options.treeDataProvider,
      dragAndDropController: options.dragAndDropController,
      refreshes: 0,
      canSelectMany: options.canSelectMany === true,
      selection: [],
      visible: true,
      setVisible: () => undefined,
    };
    const visibility = new EventEmitter<{ visible: boolean }>();
    record.setVisible = (visible) => {
      record.visible = visible;
      visibility.fire({ visible });
    };
    const subscription = options.treeDataProvider.onDidChangeTreeData?.(() => {
      record.refreshes++;
      testing.emit('treeRefresh', id);
    });
    testing.treeViews.set(id, record);
    return {
      get selection(): unknown[] {
        return record.selection;
      },
      get visible(): boolean {
        return record.visible;
      },
      onDidChangeVisibility: visibility.event,
      get message(): string | undefined {
        return record.message;
      },
      set message(text: string | undefined) {
        record.message = text;
      },
      dispose: () => {
        subscription?.dispose();
        testing.treeViews.delete(id);
      },
    };
  },
  showInformationMessage: (message: string, ...rest: unknown[]) => showMessage('info', message, rest),
  showWarningMessage: (message: string, ...rest: unknown[]) => showMessage('warning', message, rest),
  showErrorMessage: (message: string, ...rest: unknown[]) => showMessage('error', message, rest),
  setStatusBarMessage(text: string): Disposable {
    testing.emit('statusBarMessage', text);
    return new Disposable(() => undefined);
  },
  async showSaveDialog(options: unknown): Promise<Uri | undefined> {
    return testing.saveDialog(options);
  },
  async showInputBox(options: { title?: string; password?: boolean; validateInput?: (value: string) => string | undefined }): Promise<string | undefined> {
    const answer = testing.inputBox(options);
    if (answer !== undefined && options.validateInput?.(answer)) {
      throw new Error(`the test typed "${answer}", which the input box refuses: ${options.validateInput(answer)}`);
    }
    return answer;
  },
  async showQuickPick<T extends { label: string }>(items: T[], options: unknown): Promise<T | undefined> {
    return testing.quickPick(items, options) as T | undefined;
  },
  async showOpenDialog(options: unknown): Promise<Uri[] | undefined> {
    return testing.openDialog(options);
  },
  async withProgress<T>(options: { title?: string; cancellable?: boolean }, task: (progress: { report(value: { message?: string; increment?: number }): void }, token: CancellationTokenSource['token']) => Promise<T>): Promise<T> {
    const tokenSource = new CancellationTokenSource();
    const run: ProgressRun = { title: options.title, cancellable: options.cancellable === true, reports: [], cancel: () => tokenSource.cancel(), done: false };
    testing.progress.push(run);
    try {
      return await task(
        {
          report(value) {
            run.reports.push(value);
            testing.onProgressReport?.(run, value);
          },
        },
        tokenSource.token,
      );
    } finally {
      run.done = true;
    }
  },
};

// ---------------------------------------------------------------- workspace

/**
 * A watcher over real files, classified the way VS Code reports them (created, changed,
 * deleted) by looking at the path. Built from one non-recursive fs.watch per folder
 * (inotify on folders reports every entry by name, renames over a file included, which
 * Node 20's recursive watch on Linux misses), adding folders as they appear. Only "**"
 * patterns under a base folder are supported.
 */
export class FileSystemWatcher {
  private readonly created = new EventEmitter<Uri>();
  private readonly changed = new EventEmitter<Uri>();
  private readonly deleted = new EventEmitter<Uri>();
  readonly onDidCreate = this.created.event;
  readonly onDidChange = this.changed.event;
  readonly onDidDelete = this.deleted.event;
  private readonly folders = new Map<string, ReturnType<typeof watchFolder>>();
  private readonly known = new Set<string>();
  private closed = false;

  constructor(pattern: RelativePattern) {
    if (!pattern.pattern.startsWith('**')) {
      throw new Error(`the test double watches only "**" patterns, not ${pattern.pattern}`);
    }
    this.watchTree(pattern.baseUri.fsPath);
    testing.watchers.push(this);
  }

  dispose(): void {
    this.closed = true;
    this.folders.forEach((watcher) => watcher.close());
    this.folders.clear();
    testing.watchers = testing.watchers.filter((watcher) => watcher !== this);
  }

  private watchTree(folder: string): void {
    if (this.closed || this.folders.has(folder)) {
      return;
    }
    let watcher;
    try {
      watcher = watchFolder(folder, (_event, file) => {
        if (file !== null) {
          this.seen(path.join(folder, file.toString()));
        }
      });
    } catch {
      return; // gone already
    }
    watcher.on('error', () => undefined);
    this.folders.set(folder, watcher);
    // Folders and files present now: known, so a later event on them is a change.
    void fsPromises.readdir(folder, { withFileTypes: true }).then(
      (entries) => {
        for (const entry of entries) {
          const full = path.join(folder, entry.name);
          this.known.add(full);
          if (entry.isDirectory()) {
            this.watchTree(full);
          }
        }
      },
      () => undefined,
    );
  }

  private seen(full: string): void {
    void fsPromises.stat(full).then(
      (stat) => {
        if (this.closed) {
          return;
        }
        if (stat.isDirectory()) {
          this.watchTree(full);
        }
        const isNew = !this.known.has(full);
        this.known.add(full);
        (isNew ? this.created : this.changed).fire(Uri.file(full));
      },
      () => {
        if (this.closed) {
          return;
        }
        this.known.delete(full);
        const watcher = this.folders.get(full);
        watcher?.close();
        this.folders.delete(full);
        this.deleted.fire(Uri.file(full));
      },
    );
  }
}

export const workspace = {
  createFileSystemWatcher(pattern: RelativePattern): FileSystemWatcher {
    return new FileSystemWatcher(pattern);
  },
  get workspaceFolders() {
    return testing.workspaceFolders;
  },
  get textDocuments() {
    return testing.textDocuments;
  },
  getConfiguration(section: string) {
    return {
      get<T>(key: string, fallback?: T): T | undefined {
        const value = testing.configuration.get(`${section}.${key}`);
        return (value === undefined ? fallback : value) as T | undefined;
      },
    };
  },
  onDidChangeConfiguration: ((listener, thisArg, disposables) => testing.configurationChanged.event(listener, thisArg, disposables)) as Event<{ affectsConfiguration(section: string): boolean }>,
  registerFileSystemProvider(scheme: string, provider: Record<string, (...args: any[]) => any>, options: { isReadonly?: boolean; isCaseSensitive?: boolean } = {}): Disposable {
    testing.fileSystems.set(scheme, { provider, options });
    return new Disposable(() => testing.fileSystems.delete(scheme));
  },
};

// ---------------------------------------------------------------- commands

export const commands = {
  registerCommand(id: string, handler: (...args: any[]) => unknown): Disposable {
    if (testing.commands.has(id)) {
      throw new Error(`command ${id} is already registered`);
    }
    testing.commands.set(id, handler);
    return new Disposable(() => testing.commands.delete(id));
  },
  async executeCommand<T>(id: string, ...args: unknown[]): Promise<T> {
    testing.executedCommands.push({ command: id, args });
    const handler = testing.commands.get(id);
    if (handler) {
      return (await handler(...args)) as T;
    }
    switch (id) {
      case 'setContext':
        testing.contexts.set(args[0] as string, args[1]);
        testing.emit('context', args[0], args[1]);
        return undefined as T;
      case 'vscode.open': {
        const uri = args[0] as Uri;
        testing.opened.push({ uri, content: await readThrough(uri) });
        return undefined as T;
      }
      case 'vscode.diff': {
        const [left, right, title] = args as [Uri, Uri, string | undefined];
        testing.diffs.push({ left, right, title, leftContent: await readThrough(left), rightContent: await readThrough(right) });
        testing.emit('diff', testing.diffs.at(-1));
        return undefined as T;
      }
      case 'workbench.action.openSettings':
        return undefined as T;
      default:
        throw new Error(`command ${id} not found`);
    }
  },
};

/** Like VS Code: an editor reads a file: URI from disk, any other scheme through its registered file system provider. */
async function readThrough(uri: Uri): Promise<Buffer> {
  if (uri.scheme === 'file') {
    return readFile(uri.fsPath);
  }
  const fileSystem = testing.fileSystems.get(uri.scheme);
  if (!fileSystem) {
    throw new Error(`no file system provider for ${uri.scheme}:`);
  }
  return Buffer.from(await fileSystem.provider.readFile(uri));
}

// ---------------------------------------------------------------- env

export const env = {
  clipboard: {
    async writeText(text: string): Promise<void> {
      testing.clipboard = text;
    },
    async readText(): Promise<string> {
      return testing.clipboard;
    },
  },
};

// ---------------------------------------------------------------- tasks

const taskEnded = new EventEmitter<{ execution: TaskExecution }>();

export const tasks = {
  registerTaskProvider(type: string, provider: { provideTasks(): Task[]; resolveTask(task: Task): Task | undefined }): Disposable {
    testing.taskProviders.set(type, provider);
    return new Disposable(() => testing.taskProviders.delete(type));
  },
  /** Runs a CustomExecution for real: the pseudoterminal opens and its output is kept. */
  async executeTask(task: Task): Promise<TaskExecution> {
    if (!(task.execution instanceof CustomExecution)) {
      throw new Error('the test double runs only CustomExecution tasks');
    }
    const terminal = await task.execution.callback(task.definition);
    let resolveEnded!: (code: number | void) => void;
    const run: RunTask = { task, output: [], ended: new Promise((resolve) => (resolveEnded = resolve)) };
    const execution: TaskExecution = { task, terminate: () => terminal.close() };
    terminal.onDidWrite((text) => run.output.push(text));
    terminal.onDidClose?.((code) => {
      run.exitCode = code ?? undefined;
      resolveEnded(code);
      taskEnded.fire({ execution });
    });
    testing.tasks.push(run);
    terminal.open(undefined);
    return execution;
  },
  onDidEndTask: taskEnded.event,
};

// ---------------------------------------------------------------- extension context

export interface ExtensionContextDouble {
  subscriptions: { dispose(): unknown }[];
  extensionPath: string;
  extensionUri: Uri;
  globalStorageUri: Uri;
  extension: { id: string };
  workspaceState: {
    get<T>(key: string, fallback?: T): T | undefined;
    update(key: string, value: unknown): Promise<void>;
    keys(): readonly string[];
  };
  secrets: {
    get(key: string): Promise<string | undefined>;
    store(key: string, value: string): Promise<void>;
    delete(key: string): Promise<void>;
    onDidChange: Event<{ key: string }>;
  };
}

/**
 * `workspaceState` may be handed in, so a test can activate again over what an earlier
 * activation stored; by default it is the double's own, kept until reset() as VS Code
 * keeps it across reloads.
 */
export function createExtensionContext(extensionPath: string, globalStoragePath: string, workspaceState: Map<string, unknown> = testing.workspaceState): ExtensionContextDouble {
  return {
    workspaceState: {
      get: <T>(key: string, fallback?: T) => (workspaceState.has(key) ? (structuredClone(workspaceState.get(key)) as T) : fallback),
      update: async (key, value) => {
        if (value === undefined) {
          workspaceState.delete(key);
        } else {
          workspaceState.set(key, structuredClone(value));
        }
      },
      keys: () => [...workspaceState.keys()],
    },
    subscriptions: [],
    extensionPath,
    extensionUri: Uri.file(extensionPath),
    globalStorageUri: Uri.file(globalStoragePath),
    extension: { id: 'dfs-team.dfs' },
    secrets: {
      get: async (key) => testing.secrets.get(key),
      store: async (key, value) => {
        testing.secrets.set(key, value);
        testing.secretsChanged.fire({ key });
      },
      delete: async (key) => {
        testing.secrets.delete(key);
        testing.secretsChanged.fire({ key });
      },
      onDidChange: ((listener, thisArg, disposables) => testing.secretsChanged.event(listener, thisArg, disposables)) as Event<{ key: string }>,
    },
  };
}

// ---------------------------------------------------------------- VS Code's file service, around a provider

/** What an editor keeps of the file it read: the time and size of the stat made just before reading. */
export interface EditorModel {
  uri: Uri;
  content: Buffer;
  mtime: number;
  size: number;
}

/** Thrown where VS Code's file service refuses a save because the file is newer (FILE_MODIFIED_SINCE). */
export class FileModifiedSince extends Error {
  readonly code = 'FILE_MODIFIED_SINCE';
}

function providerOf(uri: Uri): Record<string, (...args: any[]) => any> {
  const fileSystem = testing.fileSystems.get(uri.scheme);
  if (!fileSystem) {
    throw new Error(`no file system provider for ${uri.scheme}:`);
  }
  return fileSystem.provider;
}

/** Opens a file the way a text editor does (FileService.readFile): stat, then read. */
export async function readAsEditor(uri: Uri): Promise<EditorModel> {
  const provider = providerOf(uri);
  const stat = (await provider.stat(uri)) as { mtime: number; size: number };
  const content = Buffer.from(await provider.readFile(uri));
  return { uri, content, mtime: stat.mtime, size: stat.size };
}

/**
 * Saves an editor's content the way VS Code does (FileService.writeFile and its
 * validateWriteFile): stat; unless told to ignore it (Overwrite, Accept Your Changes),
 * refuse when the stored file's time is later and its size differs from what the editor
 * read; then write. `between` runs after the stat and before the write (a race).
 */
export async function saveAsEditor(model: EditorModel, content: Buffer, options: { ignoreModifiedSince?: boolean; between?: () => Promise<unknown> } = {}): Promise<void> {
  const provider = providerOf(model.uri);
  let stat: { mtime: number; size: number } | undefined;
  try {
    stat = (await provider.stat(model.uri)) as { mtime: number; size: number };
  } catch {
    stat = undefined;
  }
  if (stat && !options.ignoreModifiedSince && model.mtime < stat.mtime && model.size !== stat.size) {
    throw new FileModifiedSince(`the content of ${model.uri.path} is newer (time ${stat.mtime} > ${model.mtime}, size ${stat.size} not ${model.size})`);
  }
  await options.between?.();
  await provider.writeFile(model.uri, content, { create: true, overwrite: true });
  const after = (await provider.stat(model.uri)) as { mtime: number; size: number };
  Object.assign(model, { content, mtime: after.mtime, size: after.size });
}
