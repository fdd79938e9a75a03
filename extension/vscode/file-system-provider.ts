import { Writable } from 'stream';
import * as vscode from 'vscode';
import type { DfsConnection } from '../cluster/connection';
import { DFS_SCHEME, dfsPath, parseDfsPath, parseVersionQuery } from '../model/dfs-uri';
import type { Logger } from '../model/logger';
import { FileRecord, toDfsError } from '../../server/protocol';

/**
 * `dfs:/<client>/<name>` opens a stored file in an editor. Registered read-only: a
 * stored file changes only by uploading a new version, which keeps every copy in step.
 */
export class DfsFileSystemProvider implements vscode.FileSystemProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.changed.event;

  constructor(
    private readonly connection: DfsConnection,
    private readonly log: Logger,
  ) {}

  /** Tells open editors that stored files changed (a new version uploaded, or deleted) from this window. */
  notify(clientId: string, names: readonly string[], type: vscode.FileChangeType): void {
    if (names.length > 0) {
      this.changed.fire(names.map((name) => ({ type, uri: vscode.Uri.from({ scheme: DFS_SCHEME, path: dfsPath(clientId, name) }) })));
    }
  }

  watch(): vscode.Disposable {
    // Stored files change only through uploads from somewhere; there is nothing to subscribe to.
    return new vscode.Disposable(() => undefined);
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    const { clientId, name } = parseDfsPath(uri.path);
    if (name === '') {
      return { type: vscode.FileType.Directory, ctime: 0, mtime: 0, size: 0, permissions: vscode.FilePermission.Readonly };
    }
    const generation = parseVersionQuery(uri.query);
    if (generation !== undefined) {
      return this.statVersion(uri, clientId, name, generation);
    }
    const files = await this.listing(uri, clientId);
    const file = files.find((record) => record.name === name);
    if (file) {
      return { type: vscode.FileType.File, ctime: file.mtimeMs, mtime: file.mtimeMs, size: file.size, permissions: vscode.FilePermission.Readonly };
    }
    if (files.some((record) => record.name.startsWith(`${name}/`))) {
      return { type: vscode.FileType.Directory, ctime: 0, mtime: 0, size: 0, permissions: vscode.FilePermission.Readonly };
    }
    throw vscode.FileSystemError.FileNotFound(uri);
  }

  async readDirectory(uri: vscode.Uri): Promise<[string, vscode.FileType][]> {
    const { clientId, name } = parseDfsPath(uri.path);
    const prefix = name === '' ? '' : `${name}/`;
    const entries = new Map<string, vscode.FileType>();
    for (const record of await this.listing(uri, clientId)) {
      if (!record.name.startsWith(prefix)) {
        continue;
      }
      const rest = record.name.slice(prefix.length);
      const slash = rest.indexOf('/');
      entries.set(slash === -1 ? rest : rest.slice(0, slash), slash === -1 ? vscode.FileType.File : vscode.FileType.Directory);
    }
    return [...entries];
  }

  async readFile(uri: vscode.Uri): Promise<Uint8Array> {
    const { clientId, name } = parseDfsPath(uri.path);
    const generation = parseVersionQuery(uri.query);
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    try {
      // A kept version comes from the primary (DOWNLOAD_VERSION): the replicas serve current versions only.
      const { size, sha256 } = generation === undefined ? await this.connection.reader().download(name, sink, { clientId }) : await this.connection.client().download(name, sink, { clientId, generation });
      this.log.info(`opened ${clientId}/${name}${generation === undefined ? '' : ` generation ${generation}`} (${size} bytes, sha256 ${sha256})`);
      return Buffer.concat(chunks);
    } catch (error) {
      this.log.error(`opening ${clientId}/${name} failed`, error);
      throw this.fileSystemError(uri, error);
    }
  }

  createDirectory(uri: vscode.Uri): never {
    refuseIfVersion(uri);
    throw this.readOnly(uri);
  }

  writeFile(uri: vscode.Uri): never {
    refuseIfVersion(uri);
    throw this.readOnly(uri);
  }

  delete(uri: vscode.Uri): never {
    refuseIfVersion(uri);
    throw this.readOnly(uri);
  }

  rename(uri: vscode.Uri): never {
    refuseIfVersion(uri);
    throw this.readOnly(uri);
  }

  dispose(): void {
    this.changed.dispose();
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

  private async listing(uri: vscode.Uri, clientId: string): Promise<FileRecord[]> {
    try {
      return await this.connection.reader().files(clientId);
    } catch (error) {
      throw this.fileSystemError(uri, error);
    }
  }

  private fileSystemError(uri: vscode.Uri, error: unknown): vscode.FileSystemError {
    const failure = toDfsError(error);
    if (failure.code === 'NOT_FOUND') {
      return vscode.FileSystemError.FileNotFound(uri);
    }
    if (failure.code === 'UNREACHABLE' || failure.code === 'TIMEOUT') {
      return vscode.FileSystemError.Unavailable(`DFS: ${failure.message}`);
    }
    return new vscode.FileSystemError(`DFS: ${failure.message}`);
  }

  private readOnly(uri: vscode.Uri): vscode.FileSystemError {
    return vscode.FileSystemError.NoPermissions(`${uri.path}: DFS files are read-only here; upload a new version with "DFS: Upload to DFS"`);
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
