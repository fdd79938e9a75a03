import { promises as fs } from 'fs';
import * as path from 'path';

/** What a node remembers about a stored file's bytes; trusted only while the file still matches. */
export interface ChecksumEntry {
  sha256: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

interface LogLine {
  c: string;
  n: string;
  /** Absent on a removal. */
  e?: ChecksumEntry;
}

const COMPACT_AFTER_LINES = 10_000;

/**
 * The checksums of a node's files, as an append-only log of JSON lines (a removal is
 * a line without an entry). It is a cache, never synced: a lost tail only means the
 * files it described are hashed again at the next start. One file per node instead of
 * one per stored file keeps each commit to a single small append.
 */
export class ChecksumLog {
  private handle: fs.FileHandle | undefined;
  private queue: Promise<void> = Promise.resolve();
  private linesSinceCompaction = 0;

  constructor(
    private readonly file: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Reads what the log says now: the last line for each file wins. */
  async read(): Promise<Map<string, Map<string, ChecksumEntry>>> {
    const entries = new Map<string, Map<string, ChecksumEntry>>();
    let text = '';
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch {
      return entries;
    }
    for (const line of text.split('\n')) {
      if (line.length === 0) {
        continue;
      }
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        continue; // A line torn by a crash: the file it named is simply hashed again.
      }
      let files = entries.get(parsed.c);
      if (!files) {
        files = new Map();
        entries.set(parsed.c, files);
      }
      if (parsed.e) {
        files.set(parsed.n, parsed.e);
      } else {
        files.delete(parsed.n);
      }
    }
    return entries;
  }

  /** Replaces the log with exactly these entries, then appends after them. */
  async rewrite(entries: Iterable<{ clientId: string; name: string; entry: ChecksumEntry }>): Promise<void> {
    await this.serially(async () => {
      await this.handle?.close();
      const temporary = `${this.file}.new`;
      const lines: string[] = [];
      for (const { clientId, name, entry } of entries) {
        lines.push(JSON.stringify({ c: clientId, n: name, e: entry } satisfies LogLine));
      }
      await fs.mkdir(path.dirname(this.file), { recursive: true });
      // Synced, unlike the appends: a lost rewrite would lose every checksum at once, and
      // bytes rehashed without one cannot be told from bytes that rotted.
      const handle = await fs.open(temporary, 'w');
      try {
        await handle.writeFile(lines.length > 0 ? lines.join('\n') + '\n' : '');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(temporary, this.file);
      this.handle = await fs.open(this.file, 'a');
      this.linesSinceCompaction = 0;
    });
  }

  record(clientId: string, name: string, entry: ChecksumEntry): Promise<void> {
    return this.append({ c: clientId, n: name, e: entry });
  }

  forget(clientId: string, name: string): Promise<void> {
    return this.append({ c: clientId, n: name });
  }

  /** True once enough lines have piled up that a rewrite would shrink the log a lot. */
  get wantsCompaction(): boolean {
    return this.linesSinceCompaction > COMPACT_AFTER_LINES;
  }

  async close(): Promise<void> {
    await this.serially(async () => {
      await this.handle?.close();
      this.handle = undefined;
    });
  }

  private append(line: LogLine): Promise<void> {
    return this.serially(async () => {
      if (!this.handle) {
        return;
      }
      try {
        await this.handle.write(JSON.stringify(line) + '\n');
        this.linesSinceCompaction++;
      } catch (error) {
        this.log(`could not record the checksum of ${line.c}/${line.n}: ${(error as Error).message}`);
      }
    });
  }

  /** One write at a time, in order, so lines never interleave and a rewrite never loses an append. */
  private serially(work: () => Promise<void>): Promise<void> {
    const next = this.queue.then(work);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
