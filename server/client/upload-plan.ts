import { promises as fs } from 'fs';
import * as path from 'path';
import { validateFileName } from '../protocol';

export interface PlannedUpload {
  localPath: string;
  /** The stored name: the file's base name, or the folder's name plus the path inside it. */
  name: string;
  size: number;
}

export interface SkippedPath {
  localPath: string;
  reason: string;
}

export interface UploadPlan {
  uploads: PlannedUpload[];
  skipped: SkippedPath[];
}

/**
 * Turns what the user picked (files and folders) into the list of files to send.
 * Folders keep their relative paths; anything that cannot be sent is reported with a
 * reason instead of stopping the batch. Symbolic links to folders are not followed,
 * so a link loop cannot make the walk endless.
 */
export async function planUploads(selected: readonly string[], prefix = ''): Promise<UploadPlan> {
  const plan: UploadPlan = { uploads: [], skipped: [] };
  const seen = new Set<string>();
  const add = (localPath: string, name: string, size: number): void => {
    const stored = prefix ? `${prefix.replace(/\/+$/, '')}/${name}` : name;
    try {
      validateFileName(stored);
    } catch (error) {
      plan.skipped.push({ localPath, reason: (error as Error).message });
      return;
    }
    if (seen.has(stored)) {
      plan.skipped.push({ localPath, reason: `another selected file is also stored as ${stored}` });
      return;
    }
    seen.add(stored);
    plan.uploads.push({ localPath, name: stored, size });
  };

  const walk = async (dir: string, namePrefix: string): Promise<void> => {
    let entries: string[];
    try {
      entries = (await fs.readdir(dir)).sort();
    } catch (error) {
      plan.skipped.push({ localPath: dir, reason: `cannot read folder: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
      return;
    }
    for (const entry of entries) {
      const full = path.join(dir, entry);
      await visit(full, `${namePrefix}/${entry}`);
    }
  };

  const visit = async (localPath: string, name: string): Promise<void> => {
    let stat;
    try {
      stat = await fs.lstat(localPath);
    } catch (error) {
      plan.skipped.push({ localPath, reason: `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
      return;
    }
    if (stat.isSymbolicLink()) {
      let target;
      try {
        target = await fs.stat(localPath);
      } catch {
        plan.skipped.push({ localPath, reason: 'broken or looping symbolic link' });
        return;
      }
      if (target.isFile()) {
        add(localPath, name, target.size);
      } else {
        plan.skipped.push({ localPath, reason: 'symbolic link to a folder (not followed, to avoid loops)' });
      }
      return;
    }
    if (stat.isDirectory()) {
      await walk(localPath, name);
    } else if (stat.isFile()) {
      add(localPath, name, stat.size);
    } else {
      plan.skipped.push({ localPath, reason: 'not a regular file' });
    }
  };

  for (const localPath of selected) {
    const resolved = path.resolve(localPath);
    await visit(resolved, path.basename(resolved));
  }
  return plan;
}

export type OverwriteAnswer = 'overwrite' | 'skip' | 'overwriteAll' | 'skipAll' | 'cancel';

/**
 * Remembers "all" answers across a batch, so the user is asked about an existing
 * name at most once per batch when they choose Overwrite All.
 */
export class OverwriteDecider {
  private always: 'overwrite' | 'skip' | undefined;

  constructor(initial?: 'overwrite' | 'skip') {
    this.always = initial;
  }

  /** Resolves to true when the file should be sent; 'cancel' ends the batch. */
  async decide(name: string, exists: boolean, ask: (name: string) => Promise<OverwriteAnswer | undefined>): Promise<boolean | 'cancel'> {
    if (!exists) {
      return true;
    }
    if (this.always) {
      return this.always === 'overwrite';
    }
    const answer = await ask(name);
    switch (answer) {
      case 'overwrite':
        return true;
      case 'overwriteAll':
        this.always = 'overwrite';
        return true;
      case 'skipAll':
        this.always = 'skip';
        return false;
      case 'skip':
        return false;
      default:
        return 'cancel';
    }
  }
}
