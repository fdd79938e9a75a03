import { execFile } from 'child_process';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';

const run = promisify(execFile);

/** Why a test that mounts file systems cannot run here, or undefined when it can (root on Linux). */
export function cannotMount(): string | undefined {
  if (process.platform !== 'linux') {
    return `mounting a size-limited tmpfs needs Linux (this is ${process.platform})`;
  }
  if (process.getuid?.() !== 0) {
    return 'mounting a size-limited tmpfs needs root (CI runs as root)';
  }
  return undefined;
}

/**
 * A size-limited tmpfs: a disk that really fills. `ballast` fills it the way other
 * programs fill a disk, from outside any data folder kept on it.
 */
export class SmallDisk {
  private constructor(readonly mountPoint: string) {}

  static async mount(bytes: number): Promise<SmallDisk> {
    const mountPoint = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-small-disk-'));
    await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', mountPoint]);
    return new SmallDisk(mountPoint);
  }

  get ballast(): string {
    return path.join(this.mountPoint, 'ballast');
  }

  async freeBytes(): Promise<number> {
    const stats = await fs.statfs(this.mountPoint);
    return stats.bavail * stats.bsize;
  }

  /** Grows the ballast until at most `leave` bytes are free (0: until the disk refuses a single page). */
  async fill(leave = 0): Promise<void> {
    const handle = await fs.open(this.ballast, 'a');
    try {
      let chunk = 1024 * 1024;
      for (;;) {
        const room = (await this.freeBytes()) - leave;
        if (room <= 0) {
          return;
        }
        try {
          await handle.write(Buffer.alloc(Math.min(chunk, room)));
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') {
            throw error;
          }
          if (chunk <= 4096) {
            return;
          }
          chunk = Math.floor(chunk / 4);
        }
      }
    } finally {
      await handle.close();
    }
  }

  /** Frees what the ballast took. */
  async free(): Promise<void> {
    await fs.rm(this.ballast, { force: true });
  }

  async unmount(): Promise<void> {
    await run('umount', ['-l', this.mountPoint]).catch(() => undefined);
    await fs.rmdir(this.mountPoint).catch(() => undefined);
  }
}
