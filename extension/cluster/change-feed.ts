import type { Changes, FileRecord } from '../../server/protocol';

/** What the feed asks of the cluster: CHANGES, and FILES when CHANGES cannot say what was deleted. */
export interface ChangeSource {
  changes(clientId: string, since: number): Promise<Changes>;
  files(clientId: string): Promise<FileRecord[]>;
}

export type FileChangeKind = 'created' | 'changed' | 'deleted';

export interface FileChange {
  clientId: string;
  name: string;
  kind: FileChangeKind;
  /** The generation the name is at now; undefined when deleted. */
  generation?: number;
}

export interface ChangeFeedListener {
  /** What a client's files are, once first learned (no change is reported for it): name -> generation. */
  baseline?(clientId: string, known: ReadonlyMap<string, number>): void;
  changed(changes: readonly FileChange[]): void;
  /** A poll failed; the feed keeps what it knew and tries again after `retryMs`. Said once per run of failures. */
  failed?(clientId: string, error: unknown): void;
  /** Polls succeed again after failures. */
  recovered?(clientId: string): void;
}

export interface ChangeFeedOptions {
  /** Between two polls of one client: changes elsewhere show within about this long. */
  intervalMs: number;
  /** After a failed poll (no primary answers, say): keep the load low while the cluster is down. */
  retryMs: number;
}

interface Watched {
  watchers: number;
  /** Ask CHANGES from here; undefined until the first answer. */
  through?: number;
  known: Map<string, number>;
  polling: boolean;
  failing: boolean;
  notBefore: number;
}

/**
 * Polls the primary's CHANGES for each client something watches (an open editor, the
 * tree while it is visible), at most one request in flight per client and none for a
 * client nobody watches, and reports what changed name by name. It never lists every
 * file except when CHANGES says it may have missed deletes (a restarted primary,
 * tombstones dropped while the window slept).
 */
export class ChangeFeed {
  private readonly clients = new Map<string, Watched>();
  private readonly listeners = new Set<ChangeFeedListener>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: () => ChangeSource,
    private readonly options: ChangeFeedOptions,
    private readonly now: () => number = Date.now,
  ) {}

  listen(listener: ChangeFeedListener): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Polls `clientId` until the returned handle is disposed (handles for one client share one poll). */
  watch(clientId: string): { dispose(): void } {
    let client = this.clients.get(clientId);
    if (!client) {
      client = { watchers: 0, known: new Map(), polling: false, failing: false, notBefore: 0 };
      this.clients.set(clientId, client);
    }
    client.watchers++;
    this.ensureTimer();
    void this.poll(clientId);
    let disposed = false;
    return {
      dispose: () => {
        if (disposed) {
          return;
        }
        disposed = true;
        const watched = this.clients.get(clientId);
        if (watched && --watched.watchers === 0) {
          // Nobody looks: stop asking. A later watch starts from a fresh baseline.
          this.clients.delete(clientId);
          if (this.clients.size === 0) {
            this.stop();
          }
        }
      },
    };
  }

  get watchedClients(): string[] {
    return [...this.clients.keys()];
  }

  /** The generation the feed last saw `name` at (undefined: absent, or not known yet). */
  generationOf(clientId: string, name: string): number | undefined {
    return this.clients.get(clientId)?.known.get(name);
  }

  /** Asks every watched client now (after this window changed something, say), rather than at the next tick. */
  pollNow(): Promise<void> {
    return Promise.all([...this.clients.keys()].map((clientId) => this.poll(clientId, true))).then(() => undefined);
  }

  dispose(): void {
    this.clients.clear();
    this.listeners.clear();
    this.stop();
  }

  private ensureTimer(): void {
    if (!this.timer) {
      this.timer = setInterval(() => {
        for (const clientId of this.clients.keys()) {
          void this.poll(clientId);
        }
      }, this.options.intervalMs);
      this.timer.unref();
    }
  }

  private stop(): void {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private async poll(clientId: string, soon = false): Promise<void> {
    const client = this.clients.get(clientId);
    if (!client || client.polling || (!soon && this.now() < client.notBefore)) {
      return;
    }
    client.polling = true;
    try {
      const source = this.source();
      const first = client.through === undefined;
      const answer = await source.changes(clientId, client.through ?? 0);
      let current: Map<string, number> | undefined;
      if (!answer.header.complete) {
        // Deletes above what was asked may be forgotten: the whole listing says which names went.
        current = new Map((await source.files(clientId)).map((file) => [file.name, file.generation]));
      }
      if (this.clients.get(clientId) !== client) {
        return; // unwatched meanwhile
      }
      if (first) {
        client.known = current ?? new Map(answer.records.filter((record) => !record.deleted).map((record) => [record.name, record.generation]));
        client.through = answer.header.through;
        this.report(client, clientId, []);
        this.listeners.forEach((listener) => listener.baseline?.(clientId, client.known));
        return;
      }
      const changes = current ? replaceAll(clientId, client.known, current) : apply(clientId, client.known, answer);
      client.through = answer.header.through;
      this.report(client, clientId, changes);
    } catch (error) {
      if (this.clients.get(clientId) === client) {
        client.notBefore = this.now() + this.options.retryMs;
        if (!client.failing) {
          client.failing = true;
          this.listeners.forEach((listener) => listener.failed?.(clientId, error));
        }
      }
    } finally {
      client.polling = false;
    }
  }

  private report(client: Watched, clientId: string, changes: FileChange[]): void {
    if (client.failing) {
      client.failing = false;
      this.listeners.forEach((listener) => listener.recovered?.(clientId));
    }
    if (changes.length > 0) {
      this.listeners.forEach((listener) => listener.changed(changes));
    }
  }
}

/** Applies CHANGES' records to what was known; a record seen before (above `through` last time) changes nothing. */
function apply(clientId: string, known: Map<string, number>, answer: Changes): FileChange[] {
  const changes: FileChange[] = [];
  for (const record of answer.records) {
    const before = known.get(record.name);
    if (before !== undefined && before >= record.generation) {
      continue;
    }
    if (record.deleted) {
      if (before !== undefined) {
        known.delete(record.name);
        changes.push({ clientId, name: record.name, kind: 'deleted' });
      }
      continue;
    }
    known.set(record.name, record.generation);
    changes.push({ clientId, name: record.name, kind: before === undefined ? 'created' : 'changed', generation: record.generation });
  }
  return changes;
}

/** The difference between what was known and a whole listing. */
function replaceAll(clientId: string, known: Map<string, number>, current: Map<string, number>): FileChange[] {
  const changes: FileChange[] = [];
  for (const [name, generation] of current) {
    const before = known.get(name);
    if (before !== generation) {
      changes.push({ clientId, name, kind: before === undefined ? 'created' : 'changed', generation });
    }
  }
  for (const name of known.keys()) {
    if (!current.has(name)) {
      changes.push({ clientId, name, kind: 'deleted' });
    }
  }
  known.clear();
  current.forEach((generation, name) => known.set(name, generation));
  return changes;
}
