import { createHash } from 'crypto';
import { performance } from 'perf_hooks';
import { Writable } from 'stream';
import { DfsClient } from '../../server/client/dfs-client';
import { DfsError } from '../../server/protocol';
import { History, Operation, Outcome, ReadOp, WriteOp } from './history';
import { Random } from './random';

/**
 * Chaos clients: each runs one operation at a time on a small set of names, so their
 * operations collide, and records every one with its start, end and outcome.
 */

/** Flat names only: a folder name would make one name's write delete another, and the checker treats names as independent. */
export const NAMES = ['n0', 'n1', 'n2', 'n3', 'n4'] as const;

const WEIGHTS = { upload: 30, ifGeneration: 10, ifAbsent: 5, delete: 10, restore: 5, read: 30, list: 10 };

/**
 * What an error says about whether the operation took effect. A reply from the primary
 * refusing it (any code but INCOMPLETE) means it had no effect: the protocol removes
 * everything staged before it answers so. A connection that broke or went silent says
 * nothing, and neither does an internal error.
 */
export function outcomeOf(error: unknown): { outcome: Outcome; error: string } {
  if (!(error instanceof DfsError)) {
    return { outcome: 'unknown', error: String(error) };
  }
  const unknown = ['PROTOCOL', 'TIMEOUT', 'SHORT_BODY', 'INTERNAL', 'CANCELLED', 'OUTCOME_UNKNOWN'].includes(error.code);
  return { outcome: unknown ? 'unknown' : 'failed', error: `${error.code}: ${error.message}` };
}

/** INCOMPLETE is a stored change with fewer copies than the quorum asks: it took effect, with the generation its message names. */
function incompleteGeneration(error: unknown): number | undefined {
  if (error instanceof DfsError && error.code === 'INCOMPLETE') {
    const match = /generation (\d+)/.exec(error.message);
    return match ? Number(match[1]) : -1;
  }
  return undefined;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Downloads the current version of a name, checking its bytes; undefined when the name has none. */
export async function readCurrent(dfs: DfsClient, name: string): Promise<{ generation: number; sha256: string } | undefined> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done): void {
      chunks.push(chunk);
      done();
    },
  });
  try {
    const result = await dfs.download(name, sink);
    const actual = sha256(Buffer.concat(chunks));
    if (actual !== result.sha256) {
      throw new Error(`the download of ${name} delivered bytes that hash to ${actual}, not the ${result.sha256} it announced`);
    }
    return { generation: result.generation, sha256: result.sha256 };
  } catch (error) {
    if (error instanceof DfsError && error.code === 'NOT_FOUND') {
      return undefined;
    }
    throw error;
  }
}

export interface WorkloadOptions {
  clients: number;
  seed: number;
  random: Random;
  /** Makes a client of the primary for a chaos client. */
  connect: (clientId: string) => DfsClient;
  /** Every chaos client works under this one client id, so they share the names. */
  clientId: string;
}

export class Workload {
  readonly history: History = [];
  private nextId = 0;
  private stopping = false;
  private readonly running: Promise<void>[] = [];
  /** The newest generation each chaos client saw of each name, for its conditional writes. */
  private readonly seen = new Map<string, number>();
  /** Each chaos client's last error, for its back-off. */
  private readonly lastError = new Map<number, string>();

  constructor(private readonly options: WorkloadOptions) {}

  start(): void {
    for (let client = 0; client < this.options.clients; client++) {
      const loop = this.loop(client, this.options.random.fork(client + 1));
      // A bug in the harness stops every client at once, and stop() reports it.
      loop.catch(() => (this.stopping = true));
      this.running.push(loop);
    }
  }

  /** Lets every client finish the operation it is in, then resolves; rejects if a client broke. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.running);
  }

  private async loop(client: number, random: Random): Promise<void> {
    const dfs = this.options.connect(this.options.clientId);
    while (!this.stopping) {
      this.lastError.delete(client);
      await this.step(client, random, dfs);
      if (this.lastError.get(client)?.startsWith('UNREACHABLE')) {
        // No primary listens (it is down or restarting): back off as a real client would.
        await new Promise((resolve) => setTimeout(resolve, random.int(50, 150)));
      }
    }
  }

  private begin<T extends Operation>(op: Omit<T, 'id' | 'start' | 'end' | 'outcome'>): T {
    return { ...op, id: this.nextId++, start: performance.now(), end: Infinity, outcome: 'unknown' } as T;
  }

  private finish(op: Operation, outcome: Outcome, error?: string): void {
    op.end = performance.now();
    op.outcome = outcome;
    if (error) {
      op.error = error;
      this.lastError.set(op.client, error);
    }
    this.history.push(op);
  }

  private async step(client: number, random: Random, dfs: DfsClient): Promise<void> {
    const name = random.pick(NAMES);
    const kind = random.weighted(WEIGHTS);
    switch (kind) {
      case 'read':
        return this.read(client, name, dfs);
      case 'list':
        return this.list(client, dfs);
      case 'delete':
        return this.remove(client, name, dfs);
      case 'restore':
        return this.restore(client, name, dfs);
      default: {
        // Unique bytes per upload: a read's checksum tells which upload it saw.
        const size = random.next() < 0.1 ? random.int(64 * 1024, 512 * 1024) : random.int(64, 4096);
        const content = Buffer.alloc(size, `${this.options.seed}:${client}:${this.nextId}:`);
        const how = kind === 'ifGeneration' ? 'upload-if-generation' : kind === 'ifAbsent' ? 'upload-if-absent' : 'upload';
        const basis = how === 'upload-if-generation' ? this.seen.get(name) : undefined;
        if (how === 'upload-if-generation' && basis === undefined) {
          return this.upload(client, name, content, 'upload', undefined, dfs);
        }
        return this.upload(client, name, content, how, basis, dfs);
      }
    }
  }

  private async upload(client: number, name: string, content: Buffer, how: WriteOp['how'], basis: number | undefined, dfs: DfsClient): Promise<void> {
    const op = this.begin<WriteOp>({ kind: 'write', client, name, how, sha256: sha256(content), basis });
    const precondition = how === 'upload-if-generation' ? { kind: 'generation' as const, generation: basis! } : how === 'upload-if-absent' ? { kind: 'absent' as const } : undefined;
    try {
      const receipt = await dfs.upload(name, [content], content.length, { precondition });
      op.generation = receipt.generation;
      this.seen.set(name, receipt.generation);
      this.finish(op, 'ok');
    } catch (error) {
      this.settleWrite(op, error);
    }
  }

  private settleWrite(op: WriteOp, error: unknown): void {
    const stored = incompleteGeneration(error);
    if (stored !== undefined) {
      if (stored >= 0) {
        op.generation = stored;
      }
      this.finish(op, 'ok', `INCOMPLETE: ${(error as Error).message}`);
      return;
    }
    const { outcome, error: why } = outcomeOf(error);
    this.finish(op, outcome, why);
  }

  private async restore(client: number, name: string, dfs: DfsClient): Promise<void> {
    let versions;
    try {
      versions = await dfs.versions(name);
    } catch {
      return;
    }
    const older = versions.filter((version) => !version.current);
    if (older.length === 0) {
      return;
    }
    const version = older[Math.floor((this.nextId * 7919) % older.length)];
    const op = this.begin<WriteOp>({ kind: 'write', client, name, how: 'restore', sha256: version.sha256, basis: version.generation });
    try {
      const receipt = await dfs.restore(name, version.generation);
      op.generation = receipt.generation;
      this.seen.set(name, receipt.generation);
      this.finish(op, 'ok');
    } catch (error) {
      this.settleWrite(op, error);
    }
  }

  private async remove(client: number, name: string, dfs: DfsClient): Promise<void> {
    const op = this.begin<Operation>({ kind: 'delete', client, name });
    try {
      const receipt = await dfs.delete(name);
      if (op.kind === 'delete') {
        op.generation = receipt.generation;
      }
      this.finish(op, 'ok');
    } catch (error) {
      const stored = incompleteGeneration(error);
      if (stored !== undefined && op.kind === 'delete') {
        op.generation = stored >= 0 ? stored : undefined;
        this.finish(op, 'ok', (error as Error).message);
        return;
      }
      const { outcome, error: why } = outcomeOf(error);
      // NOT_FOUND: there was nothing to delete, so it changed nothing.
      this.finish(op, outcome, why);
    }
  }

  private async read(client: number, name: string, dfs: DfsClient): Promise<void> {
    const op = this.begin<ReadOp>({ kind: 'read', client, name });
    try {
      const current = await readCurrent(dfs, name);
      if (current) {
        op.found = current;
        this.seen.set(name, current.generation);
      } else {
        op.absent = true;
      }
      this.finish(op, 'ok');
    } catch (error) {
      this.finish(op, 'failed', outcomeOf(error).error);
    }
  }

  /** One listing is a read of every name at the one moment the primary took it. */
  private async list(client: number, dfs: DfsClient): Promise<void> {
    const start = performance.now();
    let files;
    try {
      files = await dfs.files();
    } catch {
      return;
    }
    const end = performance.now();
    for (const name of NAMES) {
      const file = files.find((record) => record.name === name);
      const op: ReadOp = { id: this.nextId++, client, name, kind: 'read', start, end, outcome: 'ok' };
      if (file) {
        op.found = { generation: file.generation, sha256: file.sha256 };
      } else {
        op.absent = true;
      }
      this.history.push(op);
    }
  }
}
