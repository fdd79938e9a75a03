import { promises as fs } from 'fs';
import * as path from 'path';
import { MINIMAL_SERVER_SCRIPT, ServerProcess, startServer, stopServer } from './launcher';
import { MinimalClient } from './minimal-framing';
import type { MinimalMode } from './minimal-server';
import type { SmallFileTarget } from './small-files';

/**
 * The minimal store (minimal-server.ts) as its own process on a free 127.0.0.1 port,
 * writing `copies` copies of every file under `dataDir`; its clients live in the
 * bench process, as DFS's do, each with one connection of its own.
 */
export class MinimalBaseline {
  private constructor(
    readonly server: ServerProcess,
    readonly copies: number,
    readonly dataDir: string,
  ) {}

  static async start(mode: MinimalMode, copies: number, dataDir: string): Promise<MinimalBaseline> {
    await fs.mkdir(dataDir, { recursive: true });
    const server = await startServer(`minimal ${mode}`, ['--mode', mode, '--copies', String(copies), '--dir', dataDir], { dataDir, script: MINIMAL_SERVER_SCRIPT });
    return new MinimalBaseline(server, copies, dataDir);
  }

  get target(): SmallFileTarget {
    return {
      copies: this.copies,
      processes: { [this.server.role]: this.server.pid },
      client: (clientId) => MinimalClient.connect(this.server.port, clientId),
    };
  }

  /**
   * Checks what the server claims to have stored: `files` files of `size` bytes in
   * each copy root's client folders, none of them left in staging.
   */
  async checkStored(files: number, size: number): Promise<void> {
    for (let copy = 0; copy < this.copies; copy++) {
      const root = path.join(this.dataDir, `copy${copy}`);
      let found = 0;
      for (const entry of await fs.readdir(root, { withFileTypes: true })) {
        if (!entry.isDirectory() || entry.name === 'tmp') continue;
        for (const name of await fs.readdir(path.join(root, entry.name))) {
          const stat = await fs.stat(path.join(root, entry.name, name));
          if (stat.size !== size) {
            throw new Error(`${this.server.role}: ${entry.name}/${name} in copy ${copy} has ${stat.size} bytes, expected ${size}`);
          }
          found++;
        }
      }
      const staged = (await fs.readdir(path.join(root, 'tmp'))).length;
      if (found !== files || staged !== 0) {
        throw new Error(`${this.server.role}: copy ${copy} holds ${found} files (expected ${files}) and ${staged} staged`);
      }
    }
  }

  async stop(): Promise<void> {
    await stopServer(this.server.child);
    await fs.rm(this.dataDir, { recursive: true, force: true });
  }
}
