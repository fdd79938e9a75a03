/**
 * The small-file baseline of `npm run bench` (issue 13): a minimal store in one
 * process, started by the bench as `node dist/bench-minimal-server.js --mode M
 * --copies N --dir D` (so it never shares the bench's event loop), answering on
 * 127.0.0.1 with the framing of minimal-framing.ts. Every file is written as `copies`
 * copies, one under each of `<dir>/copy<i>/` (each standing for one node's disk,
 * as the copy limit's roots do), and answered only once all of them are durable.
 *
 *   --mode per-file      each copy: write to a staging file, fsync it, rename it into
 *                        `<client>/<name>`, fsync that folder. No sync is shared
 *                        between files: the design DFS had before group commit.
 *   --mode group-commit  each copy: the file's record (name and bytes) appended to one
 *                        shared log per copy root, synced once per batch of concurrent
 *                        writers (every writer that arrived while the previous sync ran
 *                        shares the next one); the plain file is also written and
 *                        renamed into place, unsynced (the log can redo it).
 *
 * No checksums, no catalog, no authentication: the least work that makes the copies
 * durable, so it bounds what a store with the same durability can do here.
 */
import { promises as fs } from 'fs';
import * as net from 'net';
import * as path from 'path';
import { parseArgs } from 'util';
import { syncDirectory } from '../../server/storage/sync';
import { FrameReader, REPLY_FAILED, REPLY_STORED, validName } from './minimal-framing';

export type MinimalMode = 'per-file' | 'group-commit';

/** One log per copy root, synced once for every writer waiting when the sync starts. */
class GroupLog {
  private waiting: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private flushing = false;

  constructor(private readonly handle: fs.FileHandle) {}

  static async open(file: string): Promise<GroupLog> {
    return new GroupLog(await fs.open(file, 'a'));
  }

  /** Appends the record, then waits for a sync that started after the append ended. */
  async append(record: Buffer): Promise<void> {
    let offset = 0;
    while (offset < record.length) {
      offset += (await this.handle.write(record, offset, record.length - offset)).bytesWritten;
    }
    await new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.flushing) {
        void this.flush();
      }
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0);
      try {
        await this.handle.sync();
        batch.forEach((writer) => writer.resolve());
      } catch (error) {
        batch.forEach((writer) => writer.reject(error as Error));
      }
    }
    this.flushing = false;
  }
}

class CopyRoot {
  private readonly folders = new Map<string, Promise<string>>();
  private staged = 0;

  constructor(
    readonly root: string,
    private readonly log?: GroupLog,
  ) {}

  static async create(root: string, mode: MinimalMode): Promise<CopyRoot> {
    await fs.mkdir(path.join(root, 'tmp'), { recursive: true });
    return new CopyRoot(root, mode === 'group-commit' ? await GroupLog.open(path.join(root, 'log')) : undefined);
  }

  /** A client's folder, created (and made durable in the root) once. */
  private folder(client: string): Promise<string> {
    let made = this.folders.get(client);
    if (!made) {
      const dir = path.join(this.root, client);
      made = fs.mkdir(dir, { recursive: true }).then(() => syncDirectory(this.root)).then(() => dir);
      this.folders.set(client, made);
    }
    return made;
  }

  async store(client: string, name: string, body: Buffer): Promise<void> {
    const folder = await this.folder(client);
    const staged = path.join(this.root, 'tmp', String(++this.staged));
    const handle = await fs.open(staged, 'wx');
    try {
      await handle.writeFile(body);
      if (!this.log) {
        await handle.sync();
      }
    } finally {
      await handle.close();
    }
    if (this.log) {
      const header = Buffer.from(`${client}/${name} ${body.length}\n`);
      await Promise.all([this.log.append(Buffer.concat([header, body])), fs.rename(staged, path.join(folder, name))]);
    } else {
      await fs.rename(staged, path.join(folder, name));
      await syncDirectory(folder);
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: { mode: { type: 'string' }, copies: { type: 'string' }, dir: { type: 'string' } },
  });
  const mode = values.mode as MinimalMode;
  if (mode !== 'per-file' && mode !== 'group-commit') {
    throw new Error(`--mode must be per-file or group-commit, not ${JSON.stringify(values.mode)}`);
  }
  const copies = Number(values.copies ?? '4');
  if (!Number.isInteger(copies) || copies < 1 || !values.dir) {
    throw new Error('usage: bench-minimal-server.js --mode per-file|group-commit --copies N --dir D');
  }
  const roots = await Promise.all(Array.from({ length: copies }, (_, index) => CopyRoot.create(path.join(values.dir!, `copy${index}`), mode)));

  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    // One request at a time per connection: the client waits for each answer.
    let busy = Promise.resolve();
    const reader = new FrameReader((frame) => {
      busy = busy.then(async () => {
        if (!validName(frame.client) || !validName(frame.name)) {
          socket.end(REPLY_FAILED);
          return;
        }
        try {
          await Promise.all(roots.map((root) => root.store(frame.client, frame.name, frame.body)));
          socket.write(REPLY_STORED);
        } catch (error) {
          process.stderr.write(`store failed: ${(error as Error).message}\n`);
          socket.end(REPLY_FAILED);
        }
      });
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (error) {
        process.stderr.write(`bad frame: ${(error as Error).message}\n`);
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  process.stdout.write(`minimal ${mode} server (${copies} copies) listening on 127.0.0.1:${port}\n`);
  process.once('SIGTERM', () => process.exit(0));
}

main().catch((error: unknown) => {
  process.stderr.write(`bench-minimal-server: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
