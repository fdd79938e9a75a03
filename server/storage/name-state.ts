import type { VersionRecord } from '../protocol';

/**
 * What a node holds of one name: its stored versions and the latest delete it knows.
 * Pure data and pure rules, shared by every node's catalog and by the primary's
 * reconciliation with its replicas, so "the highest generation wins" is decided in
 * one place.
 */
export interface NameState {
  /** Stored versions, newest first; the first is the current one. */
  versions: VersionRecord[];
  /** The latest delete known: no version at or below its generation survives. */
  tombstone?: VersionRecord;
}

/**
 * Generation 0 marks files stored before generations existed (an upgraded data
 * folder). They have no order among themselves, so the newer time wins, then the
 * checksum, which keeps the choice the same on every node.
 */
export const LEGACY_GENERATION = 0;

/** True when `a` is a later state of a name than `b`. */
export function isNewer(a: VersionRecord, b: VersionRecord): boolean {
  if (a.generation !== b.generation) {
    return a.generation > b.generation;
  }
  if (a.mtimeMs !== b.mtimeMs) {
    return a.mtimeMs > b.mtimeMs;
  }
  return a.sha256 > b.sha256;
}

export function sameVersion(a: VersionRecord, b: VersionRecord): boolean {
  return a.generation === b.generation && a.sha256 === b.sha256 && Boolean(a.deleted) === Boolean(b.deleted);
}

/** The name's state: its newest version, or the tombstone when the name is deleted. */
export function currentOf(state: NameState | undefined): VersionRecord | undefined {
  return state?.versions[0] ?? state?.tombstone;
}

/** The current version when the name holds a file; undefined when absent or deleted. */
export function liveOf(state: NameState | undefined): VersionRecord | undefined {
  return state?.versions[0];
}

function dead(version: VersionRecord, tombstone: VersionRecord | undefined): boolean {
  return tombstone !== undefined && version.generation <= tombstone.generation;
}

/**
 * Orders and trims a state: versions the tombstone covers go, duplicates go, legacy
 * versions are never kept as history (they share a generation), and at most `keep`
 * older versions stay behind the current one.
 */
export function normalize(state: NameState, keep: number): NameState {
  const versions: VersionRecord[] = [];
  for (const version of [...state.versions].sort((a, b) => (isNewer(a, b) ? -1 : isNewer(b, a) ? 1 : 0))) {
    if (dead(version, state.tombstone) || versions.some((kept) => kept.generation === version.generation && version.generation !== LEGACY_GENERATION)) {
      continue;
    }
    if (versions.length > 0 && version.generation === LEGACY_GENERATION) {
      continue;
    }
    versions.push(version);
    if (versions.length > keep) {
      break;
    }
  }
  return state.tombstone ? { versions, tombstone: state.tombstone } : { versions };
}

export type ApplyOutcome = 'current' | 'history' | 'stale';

/**
 * A node applying one record: a version joins (as the current one or as history)
 * unless something newer makes it dead; a tombstone deletes every version at or below
 * it. Returns the new state and what became of the record.
 */
export function applyRecord(state: NameState | undefined, record: VersionRecord, keep: number): { state: NameState; outcome: ApplyOutcome } {
  const before: NameState = state ?? { versions: [] };
  if (record.deleted) {
    if (before.tombstone && before.tombstone.generation >= record.generation) {
      return { state: before, outcome: 'stale' };
    }
    const after = normalize({ versions: before.versions, tombstone: record }, keep);
    return { state: after, outcome: after.versions.length === 0 ? 'current' : 'history' };
  }
  if (dead(record, before.tombstone) || before.versions.some((version) => sameVersion(version, record))) {
    return { state: before, outcome: 'stale' };
  }
  const after = normalize({ versions: [...before.versions, record], tombstone: before.tombstone }, keep);
  const position = after.versions.findIndex((version) => sameVersion(version, record));
  return { state: after, outcome: position === 0 ? 'current' : position > 0 ? 'history' : 'stale' };
}

/** Drops one version (or, with `tombstone`, the tombstone) from a state. */
export function withoutVersion(state: NameState, generation: number, tombstone = false): NameState {
  if (tombstone) {
    return state.tombstone?.generation === generation ? { versions: state.versions } : state;
  }
  const versions = state.versions.filter((version) => version.generation !== generation);
  return state.tombstone ? { versions, tombstone: state.tombstone } : { versions };
}

export function isEmptyState(state: NameState): boolean {
  return state.versions.length === 0 && !state.tombstone;
}

/**
 * One side of a reconciliation: what a node holds of a name, and the generation it is
 * complete through: for every name it holds a state at least as new as the cluster's
 * latest one at or below that generation. A version at or below it that the node
 * lacks is therefore dead: deleted (its tombstone since dropped) or pushed out of the
 * history. -1 when nothing is certain.
 */
export interface MergeSide {
  state: NameState | undefined;
  completeThrough: number;
}

/**
 * The state both sides should hold: every version either holds that the other side's
 * completeness does not rule out, the latest tombstone, the `keep` newest kept. A
 * version one side lacks and is complete through is dead; when that version was the
 * newest state of the name, the name was deleted and the result carries a tombstone
 * at its generation (time `nowMs`), so the side that held it records the delete.
 */
export function mergeStates(a: MergeSide, b: MergeSide, keep: number, nowMs: number): NameState {
  const ours = a.state ?? { versions: [] };
  const theirs = b.state ?? { versions: [] };
  const holds = (side: NameState, version: VersionRecord): boolean => side.versions.some((held) => sameVersion(held, version));
  const survivors: VersionRecord[] = [];
  const killed: VersionRecord[] = [];
  for (const version of ours.versions) {
    (holds(theirs, version) || version.generation > b.completeThrough ? survivors : killed).push(version);
  }
  for (const version of theirs.versions) {
    if (holds(ours, version)) {
      continue;
    }
    (version.generation > a.completeThrough ? survivors : killed).push(version);
  }
  let tombstone = [ours.tombstone, theirs.tombstone].reduce<VersionRecord | undefined>(
    (latest, candidate) => (candidate && (!latest || candidate.generation > latest.generation) ? candidate : latest),
    undefined,
  );
  const newestKilled = killed.reduce<VersionRecord | undefined>((latest, version) => (!latest || isNewer(version, latest) ? version : latest), undefined);
  if (newestKilled && survivors.every((version) => isNewer(newestKilled, version)) && (!tombstone || tombstone.generation < newestKilled.generation)) {
    tombstone = {
      clientId: newestKilled.clientId,
      name: newestKilled.name,
      generation: newestKilled.generation,
      size: 0,
      sha256: '',
      mtimeMs: nowMs,
      deleted: true,
    };
  }
  return normalize(tombstone ? { versions: survivors, tombstone } : { versions: survivors }, keep);
}

/** Versions `from` holds that `to` lacks. */
export function versionsMissing(from: NameState | undefined, to: NameState | undefined): VersionRecord[] {
  return (from?.versions ?? []).filter((version) => !(to?.versions ?? []).some((held) => sameVersion(held, version)));
}

/** True when the two states agree on every version and on the current state. */
export function sameState(a: NameState | undefined, b: NameState | undefined): boolean {
  const x = a ?? { versions: [] };
  const y = b ?? { versions: [] };
  if (x.versions.length !== y.versions.length || !x.versions.every((version, index) => sameVersion(version, y.versions[index]))) {
    return false;
  }
  // Even behind a newer version a tombstone matters: it keeps an older copy elsewhere
  // from passing for this version's history.
  return (x.tombstone?.generation ?? -1) === (y.tombstone?.generation ?? -1);
}
