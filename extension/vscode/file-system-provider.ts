import * as vscode from 'vscode';
import type { ChangeFeed, FileChange } from '../cluster/change-feed';
import type { DfsConnection } from '../cluster/connection';
import { downloadBytes } from '../cluster/stored-bytes';
import { DFS_SCHEME, dfsPath, parseDfsPath, parseVersionQuery, versionQuery } from '../model/dfs-uri';
import { fileSystemErrorOf, unreadableCopyAdvice } from '../model/file-system-errors';
import type { Logger } from '../model/logger';
import { SeenVersion, conflictPrompt, decideSave, notSavedMessage, resolveConflict } from '../model/save-conflict';
import { openDiff } from './diff-editor';
import { FileRecord, Precondition, UploadReceipt, VersionInfo, currentGenerationOf, toDfsError } from '../../server/protocol';

/** A time no stat is later than: with it, a save never counts as one VS Code already warned about. */
const UNKNOWN_TIME = Number.MAX_SAFE_INTEGER;
/** A stat() older than this is not the one VS Code made for the save that follows. */
const STAT_BEFORE_WRITE_MS = 10_000;

export interface FileSystemHooks {
  /** True while an editor holds unsaved changes of `uri`: a read then is not what the editor shows. */
  isDirty(uri: vscode.Uri): boolean;
  /** A change this window made: the tree redraws. */
  stored(clientId: string): void;
}

/**
 * `dfs:/<client>/<name>` in an editor: read, saved back in place, created, deleted.
 * Every save is an upload on a precondition the primary checks at its commit point,
 * so a version stored by someone else after the editor opened the file is never
 * replaced without the user choosing to (see model/save-conflict.ts).
 * `dfs:/<client>/<name>?generation=N` is a kept version, read-only.
 */
export class DfsFileSystemProvider implements vscode.FileSystemProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.changed.event;
  /** The version each editor's content came from, by `client/name`. */
  private readonly opened = new Map<string, SeenVersion>();
  /** What the last stat() of each name said, and when. */
  private readonly statted = new Map<string, { seen: SeenVersion | 'absent'; atMs: number }>();
  /** Generations the user compared their buffer with (Compare): the next save may replace exactly that one. */
  private readonly compared = new Map<string, number>();
  /** Folders made here that hold no file yet: DFS keeps folders only through their files. */
  private readonly newFolders = new Set<string>();
  private readonly feedListener: { dispose(): void };

  constructor(
    private readonly connection: DfsConnection,
    private readonly feed: ChangeFeed,
    private readonly hooks: FileSystemHooks,
    private readonly log: Logger,
  ) {
    this.feedListener = feed.listen({
      baseline: (clientId, known) => this.compareWithFeed(clientId, known),
      changed: (changes) => this.feedChanged(changes),
    });
  }

  /** Tells open editors that stored files changed (a new version uploaded, or deleted) from this window. */
  notify(clientId: string, names: readonly string[], type: vscode.FileChangeType): void {
    if (names.length > 0) {
      this.changed.fire(names.map((name) => ({ type, uri: uriOf(clientId, name) })));
    }
  }

  /** Editors and the Explorer watch what they show: the change feed polls that client while they do. */
  watch(uri: vscode.Uri): vscode.Disposable {
    const { clientId } = parseDfsPath(uri.path);
    const handle = this.feed.watch(clientId);
    return new vscode.Disposable(() => handle.dispose());
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    const { clientId, name } = parseDfsPath(uri.path);
    if (name === '') {
      return directory();
    }
    const generation = parseVersionQuery(uri.query);
    if (generation !== undefined) {
      return this.statVersion(uri, clientId, name, generation);
    }
    // One small request for the file itself; the listing only to tell a folder from nothing.
    const current = (await this.versionsOf(uri, clientId, name)).find((version) => version.current);
    if (current) {
      const seen = { generation: current.generation, mtimeMs: current.mtimeMs, size: current.size };
      const key = keyOf(clientId, name);
      this.statted.set(key, { seen, atMs: Date.now() });
      if (this.opened.get(key)?.generation === seen.generation) {
        // After a save VS Code stats the file and keeps that time and size: so does this.
        this.opened.set(key, seen);
      }
      return { type: vscode.FileType.File, ctime: current.mtimeMs, mtime: current.mtimeMs, size: current.size };
    }
    this.statted.set(keyOf(clientId, name), { seen: 'absent', atMs: Date.now() });
    if (this.newFolders.has(keyOf(clientId, name)) || (await this.listing(uri, clientId)).some((record) => record.name.startsWith(`${name}/`))) {
      return directory();
    }
    throw vscode.FileSystemError.FileNotFound(uri);
  }

  async readDirectory(uri: vscode.Uri): Promise<[string, vscode.FileType][]> {
    const { clientId, name } = parseDfsPath(uri.path);
    const prefix = name === '' ? '' : `${name}/`;
    const entries = new Map<string, vscode.FileType>();
    const names = [...(await this.listing(uri, clientId)).map((record) => record.name)];
    const folders = [...this.newFolders].filter((key) => key.startsWith(`${clientId}/`)).map((key) => `${key.slice(clientId.length + 1)}/`);
    for (const stored of [...names, ...folders]) {
      if (!stored.startsWith(prefix)) {
        continue;
      }
      const rest = stored.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (rest.length > 0) {
        entries.set(slash === -1 ? rest : rest.slice(0, slash), slash === -1 ? vscode.FileType.File : vscode.FileType.Directory);
      }
    }
    return [...entries];
  }

  async readFile(uri: vscode.Uri): Promise<Uint8Array> {
    const { clientId, name } = parseDfsPath(uri.path);
    const generation = parseVersionQuery(uri.query);
    try {
      // A kept version comes from the primary (DOWNLOAD_VERSION): the replicas serve current versions only.
      const source = generation === undefined ? this.connection.reader() : this.connection.client();
      const { bytes, result } = await downloadBytes(source, name, { clientId, generation });
      this.log.info(`opened ${clientId}/${name} generation ${result.generation} (${result.size} bytes, sha256 ${result.sha256})`);
      if (generation === undefined && !this.hooks.isDirty(uri)) {
        // What the editor now shows. VS Code keeps the time and size of the stat it made
        // just before reading, and compares them at save.
        const key = keyOf(clientId, name);
        const stat = this.statted.get(key)?.seen;
        this.opened.set(key, stat && stat !== 'absent' ? { ...stat, generation: result.generation } : { generation: result.generation, mtimeMs: UNKNOWN_TIME, size: result.size });
        this.compared.delete(key);
      }
      return bytes;
    } catch (error) {
      this.log.error(`opening ${clientId}/${name} failed`, error);
      const advice = unreadableCopyAdvice(error);
      throw advice ? new vscode.FileSystemError(`${fileSystemErrorOf(error).message}. ${advice}`) : this.fileSystemError(uri, error);
    }
  }

  /** Folders exist through the files in them: a new one is kept in this window until a file is saved in it. */
  createDirectory(uri: vscode.Uri): void {
    refuseIfVersion(uri);
    const { clientId, name } = parseDfsPath(uri.path);
    if (name !== '') {
      this.newFolders.add(keyOf(clientId, name));
      this.changed.fire([{ type: vscode.FileChangeType.Created, uri }]);
    }
  }

  async writeFile(uri: vscode.Uri, content: Uint8Array, options: { readonly create: boolean; readonly overwrite: boolean }): Promise<void> {
    refuseIfVersion(uri);
    const { clientId, name } = parseDfsPath(uri.path);
    if (name === '') {
      throw vscode.FileSystemError.FileIsADirectory(uri);
    }
    const key = keyOf(clientId, name);
    const label = `${clientId}/${name}`;
    const stat = this.statted.get(key);
    const decision = decideSave({
      opened: this.opened.get(key),
      statted: stat && Date.now() - stat.atMs < STAT_BEFORE_WRITE_MS ? stat.seen : undefined,
      compared: this.compared.get(key),
      create: options.create,
      overwrite: options.overwrite,
    });
    if (decision.kind === 'refuse') {
      throw decision.reason === 'exists'
        ? vscode.FileSystemError.FileExists(`DFS: ${label} already exists; choose another name or overwrite it`)
        : vscode.FileSystemError.FileNotFound(uri);
    }
    const bytes = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
    let precondition = decision.precondition;
    for (;;) {
      try {
        const receipt = await this.upload(clientId, name, bytes, precondition);
        this.saved(uri, clientId, name, receipt);
        return;
      } catch (error) {
        const current = currentGenerationOf(error);
        if (current === undefined) {
          this.log.error(`saving ${label} failed`, error);
          throw this.fileSystemError(uri, error);
        }
        this.log.warn(`saving ${label}: ${toDfsError(error).message}`);
        const opened = this.opened.get(key)?.generation;
        const prompt = conflictPrompt(label, current, opened);
        const choice = await vscode.window.showWarningMessage(prompt.message, { modal: true, detail: prompt.detail }, ...prompt.choices);
        const resolution = resolveConflict(choice, current);
        this.log.info(`save conflict on ${label} (opened generation ${opened ?? 'none'}, stored ${current ?? 'none'}): ${choice ?? 'Cancel'}`);
        if (resolution.kind === 'upload') {
          precondition = resolution.precondition;
          continue;
        }
        if (resolution.kind === 'compare') {
          this.compared.set(key, resolution.generation);
          await openDiff({ uri: uri.with({ query: versionQuery(resolution.generation) }), label: `${name} (stored, generation ${resolution.generation})` }, { uri, label: `${name} (yours)` });
        }
        throw new vscode.FileSystemError(`DFS: ${notSavedMessage(label, resolution, current)}`);
      }
    }
  }

  async delete(uri: vscode.Uri, options: { readonly recursive: boolean }): Promise<void> {
    refuseIfVersion(uri);
    const { clientId, name } = parseDfsPath(uri.path);
    if (name === '') {
      throw vscode.FileSystemError.NoPermissions(`DFS: deleting every file of client ${clientId} at once is not offered; delete its folders or files`);
    }
    const key = keyOf(clientId, name);
    const file = this.freshStat(clientId, name);
    const inFolder = file ? [] : (await this.listing(uri, clientId)).filter((record) => record.name.startsWith(`${name}/`));
    if (!file && inFolder.length === 0) {
      if (this.newFolders.delete(key)) {
        this.changed.fire([{ type: vscode.FileChangeType.Deleted, uri }]);
        return;
      }
      // Nothing stat() saw: delete what the primary holds now, if anything.
      const current = (await this.versionsOf(uri, clientId, name)).find((version) => version.current);
      if (!current) {
        throw vscode.FileSystemError.FileNotFound(uri);
      }
      await this.deleteOne(uri, clientId, name, current.generation);
      return;
    }
    if (file) {
      await this.deleteOne(uri, clientId, name, file.generation);
      return;
    }
    if (!options.recursive) {
      throw new vscode.FileSystemError(`DFS: ${clientId}/${name} is a folder of ${inFolder.length} files; delete it with its contents`);
    }
    for (const record of inFolder) {
      await this.deleteOne(uriOf(clientId, record.name), clientId, record.name, record.generation);
    }
    this.newFolders.delete(key);
  }

  /**
   * RENAME on the primary, atomic on every copy; a folder is renamed file by file. Only
   * the version stat() showed is moved, and an existing destination is replaced only
   * when VS Code asked to overwrite it, and only the version it showed.
   */
  async rename(oldUri: vscode.Uri, newUri: vscode.Uri, options: { readonly overwrite: boolean }): Promise<void> {
    refuseIfVersion(oldUri);
    refuseIfVersion(newUri);
    const from = parseDfsPath(oldUri.path);
    const to = parseDfsPath(newUri.path);
    if (from.clientId !== to.clientId) {
      throw vscode.FileSystemError.NoPermissions(`DFS: a file moves within one client's files only (${from.clientId} to ${to.clientId}); download it and upload it as the other client`);
    }
    if (from.name === '' || to.name === '') {
      throw vscode.FileSystemError.NoPermissions(`DFS: a client's own folder (${from.clientId}) cannot be renamed`);
    }
    const { clientId } = from;
    const source = this.freshStat(clientId, from.name);
    if (source) {
      await this.renameOne(oldUri, newUri, clientId, from.name, to.name, source.generation, options.overwrite);
      return;
    }
    const inFolder = (await this.listing(oldUri, clientId)).filter((record) => record.name.startsWith(`${from.name}/`));
    if (inFolder.length === 0) {
      const current = (await this.versionsOf(oldUri, clientId, from.name)).find((version) => version.current);
      if (!current) {
        throw vscode.FileSystemError.FileNotFound(oldUri);
      }
      await this.renameOne(oldUri, newUri, clientId, from.name, to.name, current.generation, options.overwrite);
      return;
    }
    for (const record of inFolder) {
      const target = `${to.name}${record.name.slice(from.name.length)}`;
      await this.renameOne(uriOf(clientId, record.name), uriOf(clientId, target), clientId, record.name, target, record.generation, options.overwrite);
    }
  }

  dispose(): void {
    this.feedListener.dispose();
    this.changed.dispose();
  }

  private async upload(clientId: string, name: string, bytes: Buffer, precondition: Precondition): Promise<UploadReceipt> {
    return this.connection.client(clientId).upload(name, [bytes], bytes.length, { precondition });
  }

  private saved(uri: vscode.Uri, clientId: string, name: string, receipt: UploadReceipt): void {
    const key = keyOf(clientId, name);
    this.log.info(`saved ${clientId}/${name}: generation ${receipt.generation}, ${receipt.size} bytes, ${receipt.copies} copies`);
    // The stat VS Code makes after the write reads the new version; until then it is what the editor holds.
    this.opened.set(key, { generation: receipt.generation, mtimeMs: UNKNOWN_TIME, size: receipt.size });
    this.statted.delete(key);
    this.compared.delete(key);
    for (let slash = name.lastIndexOf('/'); slash !== -1; slash = name.lastIndexOf('/', slash - 1)) {
      this.newFolders.delete(keyOf(clientId, name.slice(0, slash)));
    }
    this.changed.fire([{ type: vscode.FileChangeType.Changed, uri }]);
    this.hooks.stored(clientId);
  }

  /** What the last stat() of a name saw, if it is recent enough to be VS Code's check before this operation and found a file. */
  private freshStat(clientId: string, name: string): SeenVersion | undefined {
    const stat = this.statted.get(keyOf(clientId, name));
    return stat && stat.seen !== 'absent' && Date.now() - stat.atMs < STAT_BEFORE_WRITE_MS ? stat.seen : undefined;
  }

  private async renameOne(oldUri: vscode.Uri, newUri: vscode.Uri, clientId: string, from: string, to: string, generation: number, overwrite: boolean): Promise<void> {
    const label = `${clientId}/${from}`;
    const replace = overwrite ? this.freshStat(clientId, to)?.generation : undefined;
    let receipt;
    try {
      receipt = await this.connection.client(clientId).rename(from, to, { clientId, ifGeneration: generation, replace: replace ?? false });
    } catch (error) {
      const failure = toDfsError(error);
      this.log.error(`renaming ${label} to ${to} failed`, error);
      const current = currentGenerationOf(error);
      if (failure.code === 'EXISTS') {
        throw vscode.FileSystemError.FileExists(`DFS: ${clientId}/${to} exists${overwrite ? ' and changed since it was shown' : ''}; nothing was renamed. Choose another name, or look at it again.`);
      }
      if (current === null || failure.code === 'NOT_FOUND') {
        throw vscode.FileSystemError.FileNotFound(oldUri);
      }
      if (current !== undefined) {
        throw new vscode.FileSystemError(`DFS: ${label} was not renamed: it changed on DFS (now generation ${current}) since it was shown. Look at it again first.`);
      }
      throw this.fileSystemError(oldUri, error);
    }
    this.log.info(`renamed ${label} (generation ${generation}) to ${to}: generation ${receipt.generation}`);
    const opened = this.opened.get(keyOf(clientId, from));
    this.forget(clientId, from);
    this.forget(clientId, to);
    if (opened) {
      this.opened.set(keyOf(clientId, to), { generation: receipt.generation, mtimeMs: UNKNOWN_TIME, size: receipt.size });
    }
    this.changed.fire([
      { type: vscode.FileChangeType.Deleted, uri: oldUri },
      { type: vscode.FileChangeType.Created, uri: newUri },
    ]);
    this.hooks.stored(clientId);
  }

  private forget(clientId: string, name: string): void {
    const key = keyOf(clientId, name);
    this.opened.delete(key);
    this.statted.delete(key);
    this.compared.delete(key);
  }

  /** Deletes exactly the generation stat() or the listing showed: a version stored since is not deleted blind. */
  private async deleteOne(uri: vscode.Uri, clientId: string, name: string, generation: number): Promise<void> {
    const label = `${clientId}/${name}`;
    try {
      const receipt = await this.connection.client().delete(name, { clientId, ifGeneration: generation });
      this.log.info(`deleted ${label} (generation ${generation}; the delete is generation ${receipt.generation})`);
    } catch (error) {
      const current = currentGenerationOf(error);
      this.log.error(`deleting ${label} failed`, error);
      if (current === null) {
        throw vscode.FileSystemError.FileNotFound(uri);
      }
      if (current !== undefined) {
        throw new vscode.FileSystemError(`DFS: ${label} was not deleted: it changed on DFS (now generation ${current}) since it was shown. Look at it again before deleting.`);
      }
      throw this.fileSystemError(uri, error);
    }
    this.forget(clientId, name);
    this.changed.fire([{ type: vscode.FileChangeType.Deleted, uri }]);
    this.hooks.stored(clientId);
  }

  /** The feed's first answer for a client: editors opened before it learn what changed meanwhile. */
  private compareWithFeed(clientId: string, known: ReadonlyMap<string, number>): void {
    const events: vscode.FileChangeEvent[] = [];
    for (const [key, seen] of this.opened) {
      const name = key.slice(clientId.length + 1);
      if (!key.startsWith(`${clientId}/`)) {
        continue;
      }
      const now = known.get(name);
      if (now !== seen.generation) {
        events.push({ type: now === undefined ? vscode.FileChangeType.Deleted : vscode.FileChangeType.Changed, uri: uriOf(clientId, name) });
      }
    }
    if (events.length > 0) {
      this.changed.fire(events);
    }
  }

  private feedChanged(changes: readonly FileChange[]): void {
    const events: vscode.FileChangeEvent[] = [];
    for (const change of changes) {
      const seen = this.opened.get(keyOf(change.clientId, change.name));
      if (change.kind !== 'deleted' && seen?.generation === change.generation) {
        continue; // this window's own save
      }
      const type = change.kind === 'deleted' ? vscode.FileChangeType.Deleted : change.kind === 'created' ? vscode.FileChangeType.Created : vscode.FileChangeType.Changed;
      events.push({ type, uri: uriOf(change.clientId, change.name) });
    }
    if (events.length > 0) {
      this.changed.fire(events);
    }
  }

  /** A kept version, `?generation=N`: read-only whatever the rest of the file system allows. */
  private async statVersion(uri: vscode.Uri, clientId: string, name: string, generation: number): Promise<vscode.FileStat> {
    let versions;
    try {
      versions = await this.connection.client().versions(name, clientId);
    } catch (error) {
      throw this.fileSystemError(uri, error);
    }
    const version = versions.find((candidate) => candidate.generation === generation);
    if (!version) {
      throw vscode.FileSystemError.FileNotFound(uri);
    }
    return { type: vscode.FileType.File, ctime: version.mtimeMs, mtime: version.mtimeMs, size: version.size, permissions: vscode.FilePermission.Readonly };
  }

  /** The kept versions of a name; none when it is not stored (a folder, or nothing). */
  private async versionsOf(uri: vscode.Uri, clientId: string, name: string): Promise<VersionInfo[]> {
    try {
      return await this.connection.reader().versions(name, clientId);
    } catch (error) {
      if (toDfsError(error).code === 'NOT_FOUND') {
        return [];
      }
      throw this.fileSystemError(uri, error);
    }
  }

  private async listing(uri: vscode.Uri, clientId: string): Promise<FileRecord[]> {
    try {
      return await this.connection.reader().files(clientId);
    } catch (error) {
      throw this.fileSystemError(uri, error);
    }
  }

  private fileSystemError(uri: vscode.Uri, error: unknown): vscode.FileSystemError {
    const { kind, message } = fileSystemErrorOf(error);
    switch (kind) {
      case 'FileNotFound':
        return vscode.FileSystemError.FileNotFound(uri);
      case 'FileExists':
        return vscode.FileSystemError.FileExists(message);
      case 'NoPermissions':
        return vscode.FileSystemError.NoPermissions(message);
      case 'Unavailable':
        return vscode.FileSystemError.Unavailable(message);
      default:
        return new vscode.FileSystemError(message);
    }
  }
}

/** A kept version (`?generation=N`) is never written, deleted or renamed, whatever the file system allows for current files. */
export function refuseIfVersion(uri: vscode.Uri): void {
  const generation = parseVersionQuery(uri.query);
  if (generation !== undefined) {
    throw vscode.FileSystemError.NoPermissions(
      `${uri.path} generation ${generation} is a kept older version and cannot be changed; to make it current again, use Restore in "DFS: Show Versions"`,
    );
  }
}

function directory(): vscode.FileStat {
  return { type: vscode.FileType.Directory, ctime: 0, mtime: 0, size: 0 };
}

function keyOf(clientId: string, name: string): string {
  return `${clientId}/${name}`;
}

function uriOf(clientId: string, name: string): vscode.Uri {
  return vscode.Uri.from({ scheme: DFS_SCHEME, path: dfsPath(clientId, name) });
}
