/**
 * The three-way comparison behind DFS: Sync Folder. Given what the local folder holds,
 * what the store holds under the mapping's prefix and what both held when they were
 * last in step (the baseline), decide per name what to do. Pure: no file system, no
 * network, so every case is unit-tested.
 *
 * Names are relative to the mapped folder ("src/a.ts"); the prefix is the caller's.
 */

/** A local file: its content's identity. */
export interface LocalEntry {
  size: number;
  sha256: string;
}

/** A stored file's current version. */
export interface StoredEntry {
  size: number;
  sha256: string;
  generation: number;
}

/** The version both sides held after the last sync of this name. */
export interface BaselineEntry {
  size: number;
  sha256: string;
  generation: number;
}

export type ConflictKind =
  /** Both sides changed since the last sync, to different content (or, at a first sync, both hold different content). */
  | 'bothChanged'
  /** Deleted from the store elsewhere while it was changed here (deletes propagated). */
  | 'deletedStored';

export type SyncAction =
  /** Send the local file; `ifGeneration` is the generation it must still be at, undefined: the name must not exist. */
  | { kind: 'upload'; name: string; ifGeneration?: number; size: number }
  /** Fetch the stored version over (or beside, for a new name) the local file. */
  | { kind: 'download'; name: string; generation: number; size: number }
  /** Delete the stored name, only while it is still at the generation last synced (DELETE_IF). */
  | { kind: 'deleteStored'; name: string; ifGeneration: number }
  /** Remove the local file: it was deleted from the store, and it is unchanged here since the last sync. */
  | { kind: 'deleteLocal'; name: string }
  /** Both sides already hold the same bytes: record them as synced, transfer nothing. */
  | { kind: 'adopt'; name: string; entry: BaselineEntry }
  /** Gone from both sides: forget the baseline. */
  | { kind: 'forget'; name: string }
  | { kind: 'conflict'; name: string; conflict: ConflictKind; storedGeneration?: number };

export interface SyncPlanInput {
  local: ReadonlyMap<string, LocalEntry>;
  stored: ReadonlyMap<string, StoredEntry>;
  baseline: ReadonlyMap<string, BaselineEntry>;
  /** The mapping's own setting, off by default: whether a delete on one side deletes on the other. */
  propagateDeletes: boolean;
}

/**
 * One action per name that needs one, sorted by name. Names that are in step (or, with
 * deletes not propagated, deleted on one side and unchanged on the other) get none.
 */
export function planSync(input: SyncPlanInput): SyncAction[] {
  const names = new Set([...input.local.keys(), ...input.stored.keys(), ...input.baseline.keys()]);
  const actions: SyncAction[] = [];
  for (const name of [...names].sort()) {
    const action = decide(name, input.local.get(name), input.stored.get(name), input.baseline.get(name), input.propagateDeletes);
    if (action) {
      actions.push(action);
    }
  }
  return actions;
}

function decide(name: string, local: LocalEntry | undefined, stored: StoredEntry | undefined, base: BaselineEntry | undefined, propagateDeletes: boolean): SyncAction | undefined {
  const same = (a: LocalEntry, b: LocalEntry): boolean => a.sha256 === b.sha256 && a.size === b.size;
  if (local && stored) {
    if (same(local, stored)) {
      // In step, whatever happened in between: record the stored version as the one synced.
      return base && base.generation === stored.generation && same(base, local) ? undefined : { kind: 'adopt', name, entry: { ...stored } };
    }
    if (!base) {
      // New on both sides (or a first sync) with different bytes: neither may win blind.
      return { kind: 'conflict', name, conflict: 'bothChanged', storedGeneration: stored.generation };
    }
    const localChanged = !same(local, base);
    const storedChanged = stored.generation !== base.generation;
    if (localChanged && storedChanged) {
      return { kind: 'conflict', name, conflict: 'bothChanged', storedGeneration: stored.generation };
    }
    if (localChanged) {
      return { kind: 'upload', name, ifGeneration: base.generation, size: local.size };
    }
    // Only the stored one changed (or, with the same generation and other bytes, the
    // baseline is stale: the stored version is the truth to take).
    return { kind: 'download', name, generation: stored.generation, size: stored.size };
  }
  if (local) {
    if (!base) {
      return { kind: 'upload', name, size: local.size };
    }
    // Stored once, deleted from the store since.
    const localChanged = !same(local, base);
    if (propagateDeletes) {
      return localChanged ? { kind: 'conflict', name, conflict: 'deletedStored' } : { kind: 'deleteLocal', name };
    }
    // The delete is not propagated: the local copy stays. A change made here is still a
    // change, and goes up as a new name (if absent, so a re-created one is not overwritten).
    return localChanged ? { kind: 'upload', name, size: local.size } : undefined;
  }
  if (stored) {
    if (!base) {
      return { kind: 'download', name, generation: stored.generation, size: stored.size };
    }
    // Synced once, deleted here since.
    if (stored.generation !== base.generation) {
      // A newer version elsewhere is never deleted for a delete of an older one here: it comes back.
      return { kind: 'download', name, generation: stored.generation, size: stored.size };
    }
    return propagateDeletes ? { kind: 'deleteStored', name, ifGeneration: base.generation } : undefined;
  }
  return base ? { kind: 'forget', name } : undefined;
}

/** What a first sync would transfer, for the question asked before it. */
export interface PlanSummary {
  uploads: number;
  uploadBytes: number;
  downloads: number;
  downloadBytes: number;
  deletesStored: number;
  deletesLocal: number;
  conflicts: number;
}

export function summarizePlan(actions: readonly SyncAction[]): PlanSummary {
  const summary: PlanSummary = { uploads: 0, uploadBytes: 0, downloads: 0, downloadBytes: 0, deletesStored: 0, deletesLocal: 0, conflicts: 0 };
  for (const action of actions) {
    switch (action.kind) {
      case 'upload':
        summary.uploads++;
        summary.uploadBytes += action.size;
        break;
      case 'download':
        summary.downloads++;
        summary.downloadBytes += action.size;
        break;
      case 'deleteStored':
        summary.deletesStored++;
        break;
      case 'deleteLocal':
        summary.deletesLocal++;
        break;
      case 'conflict':
        summary.conflicts++;
        break;
      default:
        break;
    }
  }
  return summary;
}

/** Uploads up to this many files need no question; any download or delete does. */
export const UPLOADS_WITHOUT_ASKING = 3;

export function needsConfirmation(summary: PlanSummary): boolean {
  return summary.uploads > UPLOADS_WITHOUT_ASKING || summary.downloads > 0 || summary.deletesStored > 0 || summary.deletesLocal > 0;
}

/** The stored name of a name inside a mapping: "prefix/name". */
export function storedName(prefix: string, name: string): string {
  return prefix ? `${prefix}/${name}` : name;
}

/** The name inside a mapping of a stored name, or undefined when it is not under the prefix. */
export function nameInMapping(prefix: string, stored: string): string | undefined {
  if (!prefix) {
    return stored;
  }
  return stored.startsWith(`${prefix}/`) && stored.length > prefix.length + 1 ? stored.slice(prefix.length + 1) : undefined;
}
