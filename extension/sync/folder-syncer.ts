import { EventEmitter } from 'events';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { DownloadOptions, DownloadResult, UploadOptions } from '../../server/client/dfs-client';
import { DfsError, DeleteReceipt, FileRecord, Precondition, UploadReceipt, currentGenerationOf } from '../../server/protocol';
import type { Logger } from '../model/logger';
import { DebounceQueue, REAL_TIMERS, Timers } from './debounce-queue';
import { hashFile, isDownloadInProgress, scanFolder } from './local-scan';
import { BaselineEntry, ConflictKind, LocalEntry, PlanSummary, StoredEntry, SyncAction, nameInMapping, planSync, storedName, summarizePlan } from './sync-plan';

/** A local folder kept in step with the stored files under a prefix. */
export interface SyncMapping {
  /** Absolute path of the local folder. */
  folder: string;
  /** The stored folder: names are `prefix/relative path`. */
  prefix: string;
  /** The client whose files these are, when the mapping was made. */
  clientId: string;
  /** Off by default: a delete on one side deletes on the other only when this is on. */
  propagateDeletes: boolean;
}

/** The part of DfsClient a syncer uses, so unit tests can hand in a client that fails on cue. */
export interface SyncClient {
  readonly clientId: string;
  files(): Promise<FileRecord[]>;
  uploadFile(localPath: string, name: string, options?: UploadOptions): Promise<UploadReceipt>;
  downloadToFile(name: string, destination: string, options?: DownloadOptions): Promise<DownloadResult>;
  delete(name: string, options?: { ifGeneration?: number }): Promise<DeleteReceipt>;
}

/** Where a mapping's last-synced state lives between sessions (the workspace state, in the extension). */
export interface BaselineStore {
  load(): Record<string, BaselineEntry>;
  save(entries: Record<string, BaselineEntry>): Promise<void>;
}

export interface SyncConflict {
  /** Relative to the mapped folder. */
  name: string;
  storedName: string;
  localPath: string;
  kind: ConflictKind;
  /** The stored generation the conflict was seen against; undefined when the stored file is gone. */
  storedGeneration?: number;
}

export interface SyncStatus {
  /** Files waiting for their debounce or being sent now. */
  pending: number;
  /** Files recorded as in step. */
  synced: number;
  conflicts: number;
}

export type ConflictChoice = 'overwrite' | 'keepStored';

/** Quiet time after a save before it is sent: editors save in bursts (format on save, save all). */
export const SAVE_DEBOUNCE_MS = 500;

/**
 * Keeps one mapping in step: a full three-way sync on demand (the first one, and at
 * start-up), and one file at a time after each local change, debounced. Every write to
 * the store carries a precondition on the generation last synced, so a file changed
 * elsewhere meanwhile becomes a conflict, never an overwrite. One operation at a time
 * per mapping, so a save and a download of one file never interleave.
 */
export class FolderSyncer extends EventEmitter {
  private readonly baseline: Map<string, BaselineEntry>;
  private readonly conflictsByName = new Map<string, SyncConflict>();
  private readonly queue: DebounceQueue;
  /** Names this syncer is writing locally right now: the watcher's events for them are its own. */
  private readonly ownWrites = new Set<string>();
  private chain: Promise<unknown> = Promise.resolve();
  private busy = 0;

  constructor(
    readonly mapping: SyncMapping,
    private readonly client: () => SyncClient,
    private readonly store: BaselineStore,
    private readonly log: Logger,
    options: { debounceMs?: number; timers?: Timers } = {},
  ) {
    super();
    this.baseline = new Map(Object.entries(store.load()));
    this.queue = new DebounceQueue(
      options.debounceMs ?? SAVE_DEBOUNCE_MS,
      (name) => this.exclusive(() => this.syncOne(name)),
      (name, error) => {
        this.log.error(`sync of ${this.describe(name)} failed`, error);
        this.emit('failed', name, error);
      },
      options.timers ?? REAL_TIMERS,
      () => this.changed(),
    );
  }

  get status(): SyncStatus {
    return { pending: this.queue.pending + this.busy, synced: this.baseline.size, conflicts: this.conflictsByName.size };
  }

  get conflicts(): SyncConflict[] {
    return [...this.conflictsByName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The version last synced of a name inside the folder. */
  synced(name: string): BaselineEntry | undefined {
    return this.baseline.get(name);
  }

  /** Resolves once no change waits for its debounce and nothing runs. */
  async idle(): Promise<void> {
    for (;;) {
      await this.queue.idle();
      await this.chain;
      if (this.queue.pending === 0 && this.busy === 0) {
        return;
      }
    }
  }

  dispose(): void {
    this.queue.close();
    this.removeAllListeners();
  }

  /** The name inside the mapping of an absolute path, when it is one this syncer looks after. */
  nameOf(absolutePath: string): string | undefined {
    const relative = path.relative(this.mapping.folder, absolutePath);
    if (!relative || relative.startsWith('..') || path.isAbsolute(relative)) {
      return undefined;
    }
    const name = relative.split(path.sep).join('/');
    return isDownloadInProgress(name) ? undefined : name;
  }

  /** A file was created, changed or deleted under the folder (the watcher's report): sync it after the debounce. */
  touched(absolutePath: string): void {
    const name = this.nameOf(absolutePath);
    if (name === undefined || this.ownWrites.has(name)) {
      return;
    }
    this.queue.trigger(name);
    // A folder deleted or moved away is reported once, for the folder: its synced files go with it.
    for (const synced of this.baseline.keys()) {
      if (synced.startsWith(`${name}/`) && !this.ownWrites.has(synced)) {
        this.queue.trigger(synced);
      }
    }
    this.changed();
  }

  /**
   * The full three-way comparison and everything it decides. `confirm` sees what would
   * be transferred and may refuse (then nothing is done); without it, nothing is asked.
   */
  reconcile(confirm?: (summary: PlanSummary, actions: readonly SyncAction[]) => Promise<boolean>): Promise<{ actions: SyncAction[]; done: boolean }> {
    return this.exclusive(async () => {
      const client = this.client();
      this.checkClient(client);
      const [scan, records] = await Promise.all([scanFolder(this.mapping.folder), client.files()]);
      for (const skipped of scan.skipped) {
        this.log.warn(`sync ${this.mapping.folder}: skipped ${skipped.localPath}: ${skipped.reason}`);
      }
      const stored = new Map<string, StoredEntry>();
      for (const record of records) {
        const name = nameInMapping(this.mapping.prefix, record.name);
        if (name !== undefined) {
          stored.set(name, { size: record.size, sha256: record.sha256, generation: record.generation });
        }
      }
      const actions = planSync({ local: scan.files, stored, baseline: this.baseline, propagateDeletes: this.mapping.propagateDeletes });
      const summary = summarizePlan(actions);
      if (confirm && !(await confirm(summary, actions))) {
        return { actions, done: false };
      }
      this.log.info(
        `sync ${this.mapping.folder} with ${this.describePrefix()}: ${scan.files.size} local, ${stored.size} stored; ${summary.uploads} to upload, ${summary.downloads} to download, ${summary.deletesStored + summary.deletesLocal} to delete, ${summary.conflicts} in conflict`,
      );
      // A conflict the comparison no longer finds was settled by what happened since (the same bytes on both sides now, say).
      for (const name of [...this.conflictsByName.keys()]) {
        if (!actions.some((action) => action.name === name && action.kind === 'conflict')) {
          this.conflictsByName.delete(name);
        }
      }
      for (const action of actions) {
        try {
          await this.apply(action, client, scan.files.get(action.name));
        } catch (error) {
          this.log.error(`sync of ${this.describe(action.name)} (${action.kind}) failed`, error);
        }
      }
      await this.persist();
      return { actions, done: true };
    });
  }

  /** Settles a conflict the way the user chose. */
  resolve(name: string, choice: ConflictChoice): Promise<void> {
    return this.exclusive(async () => {
      const conflict = this.conflictsByName.get(name);
      if (!conflict) {
        throw new DfsError('NOT_FOUND', `${this.describe(name)} is not in conflict any more`);
      }
      const client = this.client();
      this.checkClient(client);
      if (choice === 'overwrite') {
        // The user saw both and chose theirs: no precondition.
        const receipt = await client.uploadFile(conflict.localPath, conflict.storedName);
        this.record(name, receipt);
        this.log.info(`sync: ${this.describe(name)} overwrote the stored version (now generation ${receipt.generation})`);
      } else {
        try {
          const result = await this.downloadOver(client, name);
          this.log.info(`sync: ${this.describe(name)} replaced by the stored version (generation ${result.generation})`);
        } catch (error) {
          if (!(error instanceof DfsError) || error.code !== 'NOT_FOUND') {
            throw error;
          }
          // Keeping the stored state of a name deleted there is deleting it here.
          await this.removeLocal(name);
          this.log.info(`sync: ${this.describe(name)} removed here, as it was deleted from the store`);
        }
      }
      this.conflictsByName.delete(name);
      await this.persist();
      this.changed();
    });
  }

  private async syncOne(name: string): Promise<void> {
    if (this.conflictsByName.has(name)) {
      this.log.warn(`sync: ${this.describe(name)} changed again but is in conflict; resolve the conflict first (click the DFS sync item in the status bar)`);
      return;
    }
    const localPath = this.localPath(name);
    const local = await hashFile(localPath).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'EISDIR') {
        return undefined;
      }
      throw error;
    });
    const base = this.baseline.get(name);
    const client = this.client();
    this.checkClient(client);
    if (local) {
      if (base && base.sha256 === local.sha256 && base.size === local.size) {
        return; // saved without a change, or our own download seen by the watcher
      }
      await this.upload(client, name, local, base);
    } else if (base) {
      if (!this.mapping.propagateDeletes) {
        this.log.info(`sync: ${this.describe(name)} deleted here; the stored copy is kept (deletes are not propagated for this folder)`);
        return;
      }
      await this.deleteStored(client, name, base.generation);
    }
    await this.persist();
  }

  private async apply(action: SyncAction, client: SyncClient, local: LocalEntry | undefined): Promise<void> {
    switch (action.kind) {
      case 'upload':
        await this.upload(client, action.name, local!, action.ifGeneration === undefined ? undefined : this.baseline.get(action.name));
        return;
      case 'download': {
        const result = await this.downloadOver(client, action.name);
        this.log.info(`sync: downloaded ${this.describe(action.name)} (generation ${result.generation})`);
        return;
      }
      case 'deleteStored':
        await this.deleteStored(client, action.name, action.ifGeneration);
        return;
      case 'deleteLocal':
        await this.removeLocal(action.name);
        this.log.info(`sync: removed ${this.describe(action.name)} here, as it was deleted from the store`);
        return;
      case 'adopt':
        this.baseline.set(action.name, action.entry);
        return;
      case 'forget':
        this.baseline.delete(action.name);
        return;
      case 'conflict':
        this.addConflict(action.name, action.conflict, action.storedGeneration);
        return;
    }
  }

  private async upload(client: SyncClient, name: string, local: LocalEntry, base: BaselineEntry | undefined): Promise<void> {
    const precondition: Precondition = base ? { kind: 'generation', generation: base.generation } : { kind: 'absent' };
    this.busy++;
    this.changed();
    try {
      const receipt = await client.uploadFile(this.localPath(name), storedName(this.mapping.prefix, name), { precondition }).catch(async (error: unknown) => {
        const current = currentGenerationOf(error);
        // Deleted there while deletes are not propagated: the local file goes up again as a new one.
        if (current === null && base && !this.mapping.propagateDeletes) {
          return client.uploadFile(this.localPath(name), storedName(this.mapping.prefix, name), { precondition: { kind: 'absent' } });
        }
        throw error;
      });
      this.record(name, receipt);
      this.log.info(`sync: uploaded ${this.describe(name)} (${local.size} bytes, generation ${receipt.generation}, ${receipt.copies} copies)`);
    } catch (error) {
      const current = currentGenerationOf(error);
      if (current === undefined) {
        throw error;
      }
      this.addConflict(name, current === null ? 'deletedStored' : 'bothChanged', current ?? undefined);
    } finally {
      this.busy--;
      this.changed();
    }
  }

  private async deleteStored(client: SyncClient, name: string, ifGeneration: number): Promise<void> {
    try {
      await client.delete(storedName(this.mapping.prefix, name), { ifGeneration });
      this.baseline.delete(name);
      this.emit('stored', storedName(this.mapping.prefix, name), true);
      this.log.info(`sync: deleted ${this.describe(name)} from the store (it was deleted here)`);
    } catch (error) {
      const current = currentGenerationOf(error);
      if (current === undefined) {
        throw error;
      }
      if (current === null) {
        this.baseline.delete(name); // already gone there too
        return;
      }
      // A newer version is stored than the one deleted here: it is not deleted, it comes back.
      const result = await this.downloadOver(client, name);
      this.log.warn(`sync: ${this.describe(name)} was deleted here, but a newer version (generation ${result.generation}) is stored; it was downloaded again instead of deleted`);
    }
  }

  /** Downloads through a temporary file renamed into place (downloadToFile), and records what it got. */
  private async downloadOver(client: SyncClient, name: string): Promise<DownloadResult> {
    const destination = this.localPath(name);
    this.ownWrites.add(name);
    this.busy++;
    this.changed();
    try {
      await fs.mkdir(path.dirname(destination), { recursive: true });
      const result = await client.downloadToFile(storedName(this.mapping.prefix, name), destination);
      this.baseline.set(name, { size: result.size, sha256: result.sha256, generation: result.generation });
      return result;
    } finally {
      this.ownWrites.delete(name);
      this.busy--;
      this.changed();
    }
  }

  private async removeLocal(name: string): Promise<void> {
    this.ownWrites.add(name);
    try {
      await fs.rm(this.localPath(name), { force: true });
      this.baseline.delete(name);
    } finally {
      this.ownWrites.delete(name);
    }
  }

  private record(name: string, receipt: UploadReceipt): void {
    this.baseline.set(name, { size: receipt.size, sha256: receipt.sha256, generation: receipt.generation });
    this.emit('stored', storedName(this.mapping.prefix, name), false);
  }

  private addConflict(name: string, kind: ConflictKind, storedGeneration: number | undefined): void {
    const known = this.conflictsByName.get(name);
    if (known && known.kind === kind && known.storedGeneration === storedGeneration) {
      return; // seen again by a later full sync: already listed, already offered
    }
    const conflict: SyncConflict = { name, storedName: storedName(this.mapping.prefix, name), localPath: this.localPath(name), kind, storedGeneration };
    this.conflictsByName.set(name, conflict);
    this.log.warn(
      `sync: ${this.describe(name)} is in conflict: ${kind === 'bothChanged' ? `the stored file changed elsewhere (now generation ${storedGeneration})` : 'it was deleted from the store'} while it changed here; nothing was overwritten`,
    );
    this.emit('conflict', conflict);
    this.changed();
  }

  private checkClient(client: SyncClient): void {
    if (client.clientId !== this.mapping.clientId) {
      throw new DfsError(
        'BAD_CLIENT_ID',
        `${this.mapping.folder} is synced with client ${this.mapping.clientId}'s files, but this window now uses client ${client.clientId}; set dfs.clientId back, or stop syncing the folder and sync it again`,
      );
    }
  }

  private localPath(name: string): string {
    return path.join(this.mapping.folder, ...name.split('/'));
  }

  private describe(name: string): string {
    return storedName(this.mapping.prefix, name);
  }

  private describePrefix(): string {
    return this.mapping.prefix ? `${this.mapping.clientId}/${this.mapping.prefix}/` : `${this.mapping.clientId}/`;
  }

  private async persist(): Promise<void> {
    await this.store.save(Object.fromEntries(this.baseline));
    this.changed();
  }

  private changed(): void {
    this.emit('changed', this.status);
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work);
    this.chain = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }
}
