import { promises as fs } from 'fs';
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

  async stop(): Promise<void> {
    await stopServer(this.server.child);
    await fs.rm(this.dataDir, { recursive: true, force: true });
  }
}
