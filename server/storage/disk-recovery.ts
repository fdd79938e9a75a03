import { createHash, randomBytes } from 'crypto';
import { constants } from 'fs';
import { VersionRecord, validateClientId } from '../protocol';
import { versionKey } from './catalog';
import type { DamageMarks } from './damage';
import { DiskLayout, ORPHANS_DIR, TMP_DIR, VERSIONS_DIR, parentOf } from './disk-layout';
import { hashHandle } from './file-hash';
import type { JournalCatalog } from './journal-catalog';
import { NameState, liveOf } from './name-state';
import type { StoreOpening } from './store';

/**
 * What a node does with its disk at start, after a crash or anything else: the catalog
 * says what it holds, and the files are brought to agree. Leftovers of deleted names
 * go, files the catalog never recorded are moved aside (never destroyed), placements
 * the catalog recorded but a crash cut short are finished, every version's bytes are
 * checked (by fingerprint, hashing only what changed), and older versions no longer
 * held are removed. A symbolic link anywhere in the data folder is reported and left
 * alone: nothing goes through it.
 */
export class DiskRecovery {
  constructor(
    private readonly layout: DiskLayout,
    private readonly catalog: JournalCatalog,
    private readonly damage: DamageMarks,
    private readonly log: (line: string) => void,
    private readonly durable: boolean,
  ) {}

  async settle(staged: Map<string, string>, inline: Map<string, Buffer>, report: StoreOpening): Promise<void> {
    // Leftovers of deleted names go first: a file a newer folder displaced (or the
    // reverse) must be out of the way before that folder's placement is finished.
    report.orphans = await this.clearStrays();
    const pending = new Set((await this.layout.fs.readdir(TMP_DIR)).map((entry) => entry.name));
    for (const { clientId, name, state } of [...this.catalog.index.all()]) {
      for (const [index, version] of state.versions.entries()) {
        const target = index === 0 ? this.layout.live(clientId, name) : this.layout.version(clientId, version.generation);
        const key = versionKey(clientId, name, version.generation);
        const stagedName = staged.get(key);
        const bytes = inline.get(key);
        if (bytes) {
          try {
            if (await this.settleInline(clientId, name, state, index, target, bytes)) {
              report.redone++;
            }
          } catch (error) {
            this.log(`${clientId}/${name} generation ${version.generation}: its bytes, kept in the catalog, could not be put in place (${(error as Error).message})`);
          }
        } else if (stagedName && pending.has(stagedName)) {
          pending.delete(stagedName);
          try {
            await this.redo(clientId, name, state, index, `${TMP_DIR}/${stagedName}`);
            report.redone++;
          } catch (error) {
            // One file that cannot be placed must not keep the node from starting: its
            // bytes come from another node instead.
            this.log(`${clientId}/${name} generation ${version.generation}: the interrupted placement could not be finished (${(error as Error).message})`);
          }
        }
        await this.check(clientId, name, version, target, index === 0);
      }
    }
    await this.sweepVersions();
  }

  /**
   * A version whose bytes its record carries and whose placed file was never confirmed
   * durable: a crash may have left the file missing, short or never synced. A file that
   * holds the right bytes is synced (with its folder) before anything counts on it;
   * otherwise the bytes are written again from the record, synced, and renamed into
   * place. True when they had to be written again.
   */
  private async settleInline(clientId: string, name: string, state: NameState, index: number, target: string, bytes: Buffer): Promise<boolean> {
    const files = this.layout.fs;
    const version = state.versions[index];
    if ((await this.isFile(target)) && (await this.hash(target)) === version.sha256) {
      if (this.durable) {
        const handle = await files.openFile(target, constants.O_RDONLY);
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
        await this.layout.syncer.sync(parentOf(target));
      }
      return false;
    }
    if (sha256Of(bytes) !== version.sha256 || bytes.length !== version.size) {
      throw new Error('the bytes in the catalog do not match the record');
    }
    const staged = `${TMP_DIR}/inline-${version.generation}-${randomBytes(6).toString('hex')}`;
    const handle = await files.openFile(staged, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL);
    try {
      await handle.writeFile(bytes);
      if (this.durable) {
        await handle.sync();
      }
    } finally {
      await handle.close();
    }
    await this.redo(clientId, name, state, index, staged);
    this.log(`${clientId}/${name} generation ${version.generation}: its file was missing or incomplete after a crash; written again from the bytes its catalog record carries`);
    return true;
  }

  /** Puts staged bytes where a recorded version belongs, keeping the bytes they replace if those are history now. */
  private async redo(clientId: string, name: string, state: NameState, index: number, stagedFile: string): Promise<void> {
    const files = this.layout.fs;
    const version = state.versions[index];
    if (index > 0) {
      await this.layout.ensureFolder(this.layout.versionsFolder(clientId));
      await files.rename(stagedFile, this.layout.version(clientId, version.generation));
      await this.layout.syncer.sync(this.layout.versionsFolder(clientId));
      return;
    }
    const live = this.layout.live(clientId, name);
    const previous = state.versions[1];
    if (previous && !(await this.isFile(this.layout.version(clientId, previous.generation))) && (await this.isFile(live))) {
      if ((await this.hash(live)) === previous.sha256) {
        await this.layout.ensureFolder(this.layout.versionsFolder(clientId));
        await files.link(live, this.layout.version(clientId, previous.generation));
        await this.layout.syncer.sync(this.layout.versionsFolder(clientId));
      }
    }
    await this.layout.ensureFolder(parentOf(live), clientId);
    await files.rename(stagedFile, live);
    await this.layout.syncer.sync(parentOf(live));
  }

  /** Verifies a version's bytes: the fingerprint if it still matches, the checksum otherwise. */
  private async check(clientId: string, name: string, version: VersionRecord, file: string, isCurrent: boolean): Promise<void> {
    const files = this.layout.fs;
    const stat = await files.lstat(file).catch(() => undefined);
    if (stat?.isSymbolicLink()) {
      this.damage.mark(clientId, name, version.generation, 'a symbolic link stands where its bytes belong (left alone)');
      this.log(`${clientId}/${name}: ${file} is a symbolic link; it is left alone and the version is copied from another node`);
      return;
    }
    const print = this.catalog.fingerprint(clientId, name, version.generation);
    if (stat?.isFile() && print && print.ino === stat.ino && print.size === stat.size && print.mtimeMs === stat.mtimeMs) {
      return;
    }
    if (stat?.isFile() && (await this.hash(file)) === version.sha256) {
      this.catalog.note([{ clientId, name, generation: version.generation, fingerprint: { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs } }]);
      return;
    }
    // A promotion from the older versions that a crash cut short: the bytes are still there.
    const kept = this.layout.version(clientId, version.generation);
    if (isCurrent && (await this.isFile(kept)) && (await this.hash(kept)) === version.sha256) {
      await this.layout.ensureFolder(parentOf(file), clientId);
      await files.rename(kept, file);
      await Promise.all([this.layout.syncer.sync(parentOf(file)), this.layout.syncer.sync(parentOf(kept))]);
      return;
    }
    this.damage.mark(clientId, name, version.generation, stat ? 'its bytes do not match the catalog' : 'its file is missing');
    this.log(`${clientId}/${name} generation ${version.generation}: ${this.damage.reason(clientId, name, version.generation)}; it will be copied from another node`);
  }

  /**
   * Files under the client folders that are no current version: a deleted name's
   * leftover is removed; anything the catalog never heard of (a copy made by hand, a
   * restored backup's extra) is moved to `.dfs/orphans` rather than destroyed; empty
   * folders left behind are removed. Returns how many were moved aside.
   */
  private async clearStrays(): Promise<number> {
    const files = this.layout.fs;
    let orphans = 0;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const walk = async (folder: string, clientId: string, prefix: string): Promise<void> => {
      let holdsFolders = false;
      for (const entry of await files.readdir(folder)) {
        const name = prefix + entry.name;
        const full = `${folder}/${entry.name}`;
        if (entry.isSymbolicLink()) {
          this.log(`${full} is a symbolic link: left alone, never followed`);
          continue;
        }
        if (entry.isDirectory()) {
          holdsFolders = true;
          this.layout.knownFolder(full);
          await walk(full, clientId, name + '/');
          continue;
        }
        const state = this.catalog.index.get(clientId, name);
        if (liveOf(state)) {
          continue;
        }
        if (state?.tombstone) {
          await files.unlink(full).catch(() => undefined);
          this.log(`removed ${clientId}/${name}: it was deleted (generation ${state.tombstone.generation})`);
        } else {
          const target = `${ORPHANS_DIR}/${stamp}/${clientId}/${name}`;
          await files.mkdirs(parentOf(target));
          await files.rename(full, target);
          orphans++;
          this.log(`moved ${clientId}/${name} to ${target}: the catalog does not hold it`);
        }
      }
      // A folder made by a commit that died before syncing its entry is made durable now.
      if (holdsFolders && this.durable) {
        await files.syncFolder(folder);
      }
      if (prefix !== '' && (await files.readdir(folder)).length === 0) {
        await files.rmdir(folder).catch(() => undefined);
        this.layout.forgetFolder(folder);
      }
    };
    for (const entry of await files.readdir('')) {
      if (entry.name.startsWith('.')) {
        continue;
      }
      if (entry.isSymbolicLink()) {
        this.log(`${entry.name} is a symbolic link: left alone, never followed`);
        continue;
      }
      if (!entry.isDirectory()) {
        continue;
      }
      try {
        validateClientId(entry.name);
      } catch {
        this.log(`ignoring folder ${JSON.stringify(entry.name)}: not a valid client id`);
        continue;
      }
      await walk(entry.name, entry.name, '');
    }
    return orphans;
  }

  /** Removes older versions' files the catalog no longer holds (a crash between the record and the removal). */
  private async sweepVersions(): Promise<void> {
    const files = this.layout.fs;
    for (const folder of await files.readdir(VERSIONS_DIR)) {
      if (!folder.isDirectory()) {
        this.log(`${VERSIONS_DIR}/${folder.name} is not a folder of older versions: left alone`);
        continue;
      }
      const clientId = folder.name;
      const held = new Set<string>();
      for (const [, state] of this.catalog.index.names(clientId)) {
        state.versions.slice(1).forEach((version) => held.add(String(version.generation)));
      }
      for (const file of await files.readdir(`${VERSIONS_DIR}/${clientId}`)) {
        if (file.isSymbolicLink()) {
          this.log(`${VERSIONS_DIR}/${clientId}/${file.name} is a symbolic link: left alone, never followed`);
        } else if (!held.has(file.name)) {
          await files.unlink(`${VERSIONS_DIR}/${clientId}/${file.name}`).catch(() => undefined);
        }
      }
    }
  }

  private async isFile(relative: string): Promise<boolean> {
    return (await this.layout.fs.lstat(relative).catch(() => undefined))?.isFile() ?? false;
  }

  private async hash(relative: string): Promise<string> {
    const handle = await this.layout.fs.openFile(relative, constants.O_RDONLY);
    try {
      return (await hashHandle(handle)).sha256;
    } finally {
      await handle.close();
    }
  }
}

function sha256Of(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
