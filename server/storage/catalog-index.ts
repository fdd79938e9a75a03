import type { VersionRecord } from '../protocol';
import { NameState, isEmptyState, liveOf } from './name-state';

interface ClientIndex {
  names: Map<string, NameState>;
  liveFiles: number;
  liveBytes: number;
  /** Bytes of every version held, history included: what the quota counts. */
  storedBytes: number;
  /** Live files under each folder prefix ("a" for "a/b"), so a file and a folder of one name are caught at once. */
  folders: Map<string, number>;
}

/** Every name a node holds, per client, with the sums listings and the quota need. */
export class CatalogIndex {
  private readonly clientsById = new Map<string, ClientIndex>();

  clearAll(): void {
    this.clientsById.clear();
  }

  get(clientId: string, name: string): NameState | undefined {
    return this.clientsById.get(clientId)?.names.get(name);
  }

  set(clientId: string, name: string, state: NameState | undefined): void {
    let client = this.clientsById.get(clientId);
    if (!client) {
      if (!state || isEmptyState(state)) {
        return;
      }
      client = { names: new Map(), liveFiles: 0, liveBytes: 0, storedBytes: 0, folders: new Map() };
      this.clientsById.set(clientId, client);
    }
    const before = client.names.get(name);
    this.account(client, name, before, -1);
    if (state && !isEmptyState(state)) {
      client.names.set(name, state);
      this.account(client, name, state, 1);
    } else {
      client.names.delete(name);
    }
    if (client.names.size === 0) {
      this.clientsById.delete(clientId);
    }
  }

  clientIds(): string[] {
    return [...this.clientsById.keys()];
  }

  /** Every name of a client, deleted ones (tombstones) included. */
  names(clientId: string): IterableIterator<[string, NameState]> {
    return (this.clientsById.get(clientId)?.names ?? new Map<string, NameState>()).entries();
  }

  *all(): Generator<{ clientId: string; name: string; state: NameState }> {
    for (const [clientId, client] of this.clientsById) {
      for (const [name, state] of client.names) {
        yield { clientId, name, state };
      }
    }
  }

  live(clientId: string): VersionRecord[] {
    const result: VersionRecord[] = [];
    for (const state of this.clientsById.get(clientId)?.names.values() ?? []) {
      const live = liveOf(state);
      if (live) {
        result.push(live);
      }
    }
    return result;
  }

  summary(clientId: string): { files: number; bytes: number; storedBytes: number } {
    const client = this.clientsById.get(clientId);
    return { files: client?.liveFiles ?? 0, bytes: client?.liveBytes ?? 0, storedBytes: client?.storedBytes ?? 0 };
  }

  /** Live files stored under `folder/`. */
  filesUnder(clientId: string, folder: string): number {
    return this.clientsById.get(clientId)?.folders.get(folder) ?? 0;
  }

  /** Every live name under `folder/`. */
  *namesUnder(clientId: string, folder: string): Generator<string> {
    if (this.filesUnder(clientId, folder) === 0) {
      return;
    }
    for (const [name, state] of this.clientsById.get(clientId)!.names) {
      if (name.startsWith(folder + '/') && liveOf(state)) {
        yield name;
      }
    }
  }

  get size(): number {
    let count = 0;
    for (const client of this.clientsById.values()) {
      count += client.names.size;
    }
    return count;
  }

  private account(client: ClientIndex, name: string, state: NameState | undefined, sign: 1 | -1): void {
    if (!state) {
      return;
    }
    for (const version of state.versions) {
      client.storedBytes += sign * version.size;
    }
    const live = liveOf(state);
    if (!live) {
      return;
    }
    client.liveFiles += sign;
    client.liveBytes += sign * live.size;
    for (let slash = name.indexOf('/'); slash !== -1; slash = name.indexOf('/', slash + 1)) {
      const folder = name.slice(0, slash);
      const count = (client.folders.get(folder) ?? 0) + sign;
      if (count === 0) {
        client.folders.delete(folder);
      } else {
        client.folders.set(folder, count);
      }
    }
  }
}
