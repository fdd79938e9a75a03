import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { syncDirectory } from '../../server/storage/sync';

/**
 * One file written with exactly the durability DiskStore gives a stored file
 * (server/storage/disk-store.ts): opened 'wx' in `<root>/.dfs/tmp`, written chunk by
 * chunk with FileHandle.write, fsync'd together with the staging folder and closed
 * (seal), a catalog record appended to a journal and fsync'd (the node's commit),
 * renamed into `<root>/<client>/<name>`, then the folder fsync'd, and its parents too
 * when the folder was just created (placement).
 */
export class DurableFile {
  private constructor(
    private readonly handle: fs.FileHandle,
    private readonly staged: string,
    private readonly root: string,
    private readonly target: string,
  ) {}

  static async create(root: string, clientId: string, name: string): Promise<DurableFile> {
    const tmpDir = path.join(root, '.dfs', 'tmp');
    await fs.mkdir(tmpDir, { recursive: true });
    const staged = path.join(tmpDir, `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`);
    const handle = await fs.open(staged, 'wx');
    return new DurableFile(handle, staged, path.resolve(root), path.join(path.resolve(root), clientId, name));
  }

  async write(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const { bytesWritten } = await this.handle.write(chunk, offset, chunk.length - offset);
      offset += bytesWritten;
    }
  }

  async commit(): Promise<void> {
    try {
      await Promise.all([this.handle.sync(), syncDirectory(path.dirname(this.staged))]);
    } finally {
      await this.handle.close();
    }
    const journal = await fs.open(path.join(this.root, '.dfs', 'journal.log'), 'a');
    try {
      await journal.write(JSON.stringify({ r: { name: this.target, staged: path.basename(this.staged) } }) + '\n');
      await journal.sync();
    } finally {
      await journal.close();
    }
    const parent = path.dirname(this.target);
    const firstCreated = await fs.mkdir(parent, { recursive: true });
    await fs.rename(this.staged, this.target);
    await syncDirectory(parent);
    if (firstCreated) {
      for (let dir = parent; ; dir = path.dirname(dir)) {
        await syncDirectory(path.dirname(dir));
        if (dir === firstCreated || dir === this.root) {
          break;
        }
      }
    }
    await fs.stat(this.target);
  }
}
