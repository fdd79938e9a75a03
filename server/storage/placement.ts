import { promises as fsPromises, type promises as fs } from 'fs';
import { DfsError } from '../protocol';
import { ContainmentError } from './contained-fs';
import type { DamageMarks } from './damage';
import { DiskLayout, parentOf } from './disk-layout';
import type { NameState } from './name-state';
import type { UnconfirmedPlacement } from './placement-flusher';

/** Bytes ready to be renamed into place: a staged write, or a rename's link to the source's file. */
export interface PlaceableBytes {
  /** Relative to the node's root. */
  readonly file: string;
  /** The file was renamed away: nothing is left to remove. */
  markPlaced(): void;
  /** A small file's handle, open and never synced (its record carries the bytes): placement syncs it, now or later. */
  takeHandle?(): fs.FileHandle | undefined;
}

/** What a version's bytes need to be placed: the staged file holding them. */
export interface Supply {
  generation: number;
  staged: PlaceableBytes;
}

/**
 * Makes the files follow a change of one name's state, once the catalog has recorded
 * it: the outgoing current version is linked into `.dfs/versions` before anything
 * replaces it, the new current one is renamed into place (from the supplied staged
 * bytes, or from the older versions), and versions no longer held are removed. Each
 * folder touched is synced once; nothing goes through a symbolic link.
 *
 * A small file whose catalog record carries its bytes is renamed into place unsynced,
 * and neither it nor the folder it went into is synced before place() returns: the
 * record is its durable copy until the flusher has synced both. An older version
 * linked into history on the way is synced in its folder before that rename, so the
 * bytes it held (no longer in any record) are never left with no durable name.
 */
export class Placement {
  constructor(
    private readonly layout: DiskLayout,
    private readonly damage: DamageMarks,
    /** Bytes of a version now sit at `file` (relative): remember where, so a restart need not hash them. */
    private readonly placed: (clientId: string, name: string, generation: number, file: string) => void,
    /** The catalog still keeps this version's bytes (its record carried them, no placement confirmed yet). */
    private readonly keepsBytes: (clientId: string, name: string, generation: number) => boolean,
    /** Takes a placement whose syncs are left for later; may wait when too many are pending. */
    private readonly defer: (placement: UnconfirmedPlacement) => Promise<void>,
    private readonly durable: boolean,
  ) {}

  async place(clientId: string, name: string, before: NameState | undefined, after: NameState | undefined, supply?: Supply): Promise<void> {
    // Told only once the folders are synced: a confirmed placement lets the catalog
    // forget the bytes it kept for it (a staged name, or bytes carried inline).
    const placedAt: [number, string][] = [];
    // A small file's unsynced handle: synced later (deferred) when its record keeps its
    // bytes, else now, before its rename, like any staged bytes.
    const handle = supply?.staged.takeHandle?.();
    const deferring = handle !== undefined && this.durable && this.keepsBytes(clientId, name, supply!.generation);
    if (handle && !deferring) {
      await this.syncBeforeRename(handle, name);
    }
    let deferred: UnconfirmedPlacement | undefined;
    try {
      await this.placeWith(clientId, name, before, after, supply, deferring ? handle : undefined, placedAt, (placement) => (deferred = placement));
    } catch (error) {
      // Left to catch-up (the record stands and the failure marks the bytes damaged).
      deferred = undefined;
      throw error;
    } finally {
      // The flusher owns the handle only once it takes the placement: a failed one, or
      // one that put the bytes nowhere, closes it here.
      if (deferring && !deferred) {
        await handle!.close().catch(() => undefined);
      }
    }
    for (const [generation, file] of placedAt) {
      this.placed(clientId, name, generation, file);
    }
    if (deferred) {
      this.damage.clear(clientId, name, deferred.generation);
      await this.defer(deferred);
    }
  }

  /** Syncs (when durable) and closes a small file's handle whose bytes no record keeps. */
  private async syncBeforeRename(handle: fs.FileHandle, name: string): Promise<void> {
    try {
      if (this.durable) {
        await handle.sync();
      }
    } catch (error) {
      throw new DfsError('STORAGE', `cannot flush the bytes of ${name} to disk: ${(error as Error).message}`);
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  private async placeWith(
    clientId: string,
    name: string,
    before: NameState | undefined,
    after: NameState | undefined,
    supply: Supply | undefined,
    /** Set: the supplied bytes' rename is made durable later, through this handle. */
    unsynced: fs.FileHandle | undefined,
    placedAt: [number, string][],
    deferTo: (placement: UnconfirmedPlacement) => void,
  ): Promise<void> {
    const files = this.layout.fs;
    const live = this.layout.live(clientId, name);
    const versionsFolder = this.layout.versionsFolder(clientId);
    const outgoing = before?.versions[0];
    const incoming = after?.versions[0];
    const historyAfter = after?.versions.slice(1) ?? [];
    const historyBefore = before?.versions.slice(1) ?? [];
    const inHistoryAfter = (generation: number): boolean => historyAfter.some((version) => version.generation === generation);
    const inHistoryBefore = (generation: number): boolean => historyBefore.some((version) => version.generation === generation);
    const touched = new Set<string>();
    /** Folders this change only removed entries from: another change may remove them too. */
    const emptied = new Set<string>();
    const size = (generation: number): number => after?.versions.find((version) => version.generation === generation)?.size ?? 0;
    let liveHolds = outgoing && !this.damage.has(clientId, name, outgoing.generation) ? outgoing.generation : undefined;

    if (outgoing && outgoing.generation !== incoming?.generation && inHistoryAfter(outgoing.generation) && liveHolds === outgoing.generation) {
      await this.layout.ensureFolder(versionsFolder);
      await files.link(live, this.layout.version(clientId, outgoing.generation)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') {
          this.damage.mark(clientId, name, outgoing.generation, `could not be kept as an older version: ${error.message}`);
        }
      });
      touched.add(versionsFolder);
    }

    if (incoming) {
      if (supply?.generation === incoming.generation) {
        if (unsynced && touched.has(versionsFolder)) {
          // The outgoing bytes' new name must be durable before the rename that takes
          // their old one, which is itself not synced until later.
          await this.layout.syncer.sync(versionsFolder);
          touched.delete(versionsFolder);
        }
        await this.moveIntoLive(supply.staged.file, live, name, clientId);
        supply.staged.markPlaced();
        liveHolds = incoming.generation;
        if (unsynced) {
          deferTo({ clientId, name, generation: incoming.generation, handle: unsynced, folder: parentOf(live), size: size(incoming.generation) });
        } else {
          placedAt.push([incoming.generation, live]);
          touched.add(parentOf(live));
        }
      } else if (incoming.generation !== outgoing?.generation) {
        if (inHistoryBefore(incoming.generation) && !this.damage.has(clientId, name, incoming.generation)) {
          await this.moveIntoLive(this.layout.version(clientId, incoming.generation), live, name, clientId);
          liveHolds = incoming.generation;
          touched.add(parentOf(live));
          touched.add(versionsFolder);
        } else if (!inHistoryBefore(incoming.generation)) {
          this.damage.mark(clientId, name, incoming.generation, 'not copied to this node yet');
        }
      }
    }

    if (outgoing && !(incoming && liveHolds === incoming.generation) && !(await this.isLink(live))) {
      // The live path holds bytes no current version owns (or damaged ones): remove them.
      const removed = await files.unlink(live).then(
        () => true,
        async (error: NodeJS.ErrnoException) => {
          // Gone already, or a folder of the same name took its place (a newer name under
          // it displaced this file while another did the same): either way it is removed.
          if (error.code === 'ENOENT' || ((error.code === 'EISDIR' || error.code === 'EPERM') && (await files.lstat(live).catch(() => undefined))?.isDirectory())) {
            return false;
          }
          throw error instanceof DfsError ? error : new DfsError('STORAGE', `cannot remove ${name}: ${error.message}`);
        },
      );
      if (removed) {
        emptied.add(await this.layout.pruneEmptyFolders(parentOf(live), clientId));
      }
    }

    if (supply && supply.generation !== incoming?.generation && inHistoryAfter(supply.generation)) {
      await this.layout.ensureFolder(versionsFolder);
      const target = this.layout.version(clientId, supply.generation);
      await this.renameInto(supply.staged.file, target, name);
      supply.staged.markPlaced();
      if (unsynced) {
        deferTo({ clientId, name, generation: supply.generation, handle: unsynced, folder: versionsFolder, size: size(supply.generation) });
      } else {
        placedAt.push([supply.generation, target]);
        touched.add(versionsFolder);
      }
    }

    for (const version of historyAfter) {
      if (!inHistoryBefore(version.generation) && version.generation !== outgoing?.generation && supply?.generation !== version.generation) {
        this.damage.mark(clientId, name, version.generation, 'not copied to this node yet');
      }
    }
    for (const version of before?.versions ?? []) {
      if (after?.versions.some((kept) => kept.generation === version.generation)) {
        continue;
      }
      this.damage.clear(clientId, name, version.generation);
      if (version !== outgoing) {
        await files.unlink(this.layout.version(clientId, version.generation)).catch(() => undefined);
        touched.add(versionsFolder);
      }
    }
    await Promise.all([
      ...[...touched].map((folder) => this.layout.syncer.sync(folder)),
      ...[...emptied].filter((folder) => !touched.has(folder)).map((folder) => this.layout.syncAfterRemoval(folder)),
    ]);
  }

  /**
   * Renames bytes into a live path, making its folder first. A delete of the last file
   * in that folder may prune it between the two steps (it holds the folder only
   * shared, as this commit does): then the folder is made again.
   */
  private async moveIntoLive(from: string, live: string, name: string, clientId: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await this.layout.ensureFolder(parentOf(live), clientId);
      try {
        await this.renameInto(from, live, name);
        return;
      } catch (error) {
        const source = await this.layout.fs.lstat(from).catch(() => undefined);
        if (attempt >= 4 || !(error instanceof DfsError && error.code === 'STORAGE' && /ENOENT|no such file/.test(error.message)) || !source) {
          throw error;
        }
        this.layout.forgetFolder(parentOf(live));
      }
    }
  }

  private async isLink(relative: string): Promise<boolean> {
    return (await this.layout.fs.lstat(relative).catch(() => undefined))?.isSymbolicLink() ?? false;
  }

  async renameInto(from: string, to: string, name: string): Promise<void> {
    const files = this.layout.fs;
    try {
      // One pass through both folders' verified handles: the check that `to` is no link,
      // then the rename.
      await files.at(from, (source) =>
        files.at(to, async (target) => {
          if ((await fsPromises.lstat(target).catch(() => undefined))?.isSymbolicLink()) {
            // Renaming over it would not follow it, but it is not ours to remove either.
            throw new ContainmentError(to, 'it is a symbolic link');
          }
          await fsPromises.rename(source, target);
        }),
      );
    } catch (error) {
      if (error instanceof DfsError) {
        throw error;
      }
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') {
        throw new DfsError('CONFLICT', `cannot store ${name}: a folder of that name exists on this node's disk`);
      }
      throw new DfsError('STORAGE', `cannot store ${name}: ${(error as Error).message}`);
    }
  }
}
