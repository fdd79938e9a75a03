import type { InventoryRecord, VersionRecord } from '../protocol';
import { NameState, mergeStates, normalize, sameState, sameVersion, versionsMissing } from '../storage/name-state';
import { fileKey } from '../storage/key-lock';

/** What one name needs, on each side, for the primary and one replica to hold the same state. */
export interface NamePlan {
  clientId: string;
  name: string;
  merged: NameState | undefined;
  /** Records the primary makes now (before any byte moves): a newer tombstone, versions it lacks. */
  primaryRecords: VersionRecord[];
  /** Versions the primary stops holding. */
  primaryDrops: VersionRecord[];
  /** Versions whose bytes the primary lacks and this replica holds intact. */
  fetch: VersionRecord[];
  replicaTombstone?: VersionRecord;
  /** Versions the replica lacks or holds damaged. */
  push: VersionRecord[];
  replicaDrops: VersionRecord[];
}

export interface PlanInputs {
  keep: number;
  primaryComplete: number;
  replicaComplete: number;
  nowMs: number;
  /** The primary's states, by name key. */
  primaryStates: Map<string, { clientId: string; name: string; state: NameState }>;
  /** True when the primary holds the version's bytes intact. */
  primaryHasBytes(record: VersionRecord): boolean;
}

/** The replica's inventory, grouped into states by name, with the versions it holds damaged. */
export function replicaStates(records: readonly InventoryRecord[], keep: number): { states: Map<string, NameState>; damaged: Set<string> } {
  const grouped = new Map<string, NameState>();
  const damaged = new Set<string>();
  for (const record of records) {
    const key = fileKey(record.clientId, record.name);
    const state = grouped.get(key) ?? { versions: [] };
    const { damaged: isDamaged, ...version } = record;
    if (version.deleted) {
      if (!state.tombstone || state.tombstone.generation < version.generation) {
        state.tombstone = version;
      }
    } else {
      state.versions.push(version);
      if (isDamaged) {
        damaged.add(versionId(version));
      }
    }
    grouped.set(key, state);
  }
  // The replica keeps what the primary told it to; normalizing only orders it.
  for (const [key, state] of grouped) {
    grouped.set(key, normalize(state, Math.max(keep, state.versions.length)));
  }
  return { states: grouped, damaged };
}

/**
 * Compares every name the primary or the replica holds and says what each side must
 * do. The rules are mergeStates': the highest generation wins wherever it is, a
 * version a side lacks at or below its completeness is dead, deletes are tombstones.
 */
export function planReconciliation(inputs: PlanInputs, replica: { states: Map<string, NameState>; damaged: Set<string> }): NamePlan[] {
  const plans: NamePlan[] = [];
  const keys = new Set([...inputs.primaryStates.keys(), ...replica.states.keys()]);
  for (const key of keys) {
    const mine = inputs.primaryStates.get(key);
    const listed = replica.states.get(key);
    const clientId = mine?.clientId ?? (listed?.versions[0] ?? listed?.tombstone)!.clientId;
    const name = mine?.name ?? (listed?.versions[0] ?? listed?.tombstone)!.name;
    const ours = coveredTombstone(mine?.state, listed?.tombstone, inputs.primaryComplete);
    const theirsState = coveredTombstone(listed, mine?.state?.tombstone, inputs.replicaComplete);
    const theirDamaged = (theirsState?.versions ?? []).filter((version) => replica.damaged.has(versionId(version)));
    if (sameState(ours, theirsState) && theirDamaged.length === 0 && (ours?.versions ?? []).every((version) => inputs.primaryHasBytes(version))) {
      continue;
    }
    const merged = mergeStates({ state: ours, completeThrough: inputs.primaryComplete }, { state: theirsState, completeThrough: inputs.replicaComplete }, inputs.keep, inputs.nowMs);
    const tombstone = merged.tombstone;
    const newerTombstone = (side: NameState | undefined): VersionRecord | undefined =>
      tombstone && (!side?.tombstone || side.tombstone.generation < tombstone.generation) ? tombstone : undefined;
    const coveredByTombstone = (version: VersionRecord): boolean => tombstone !== undefined && version.generation <= tombstone.generation;
    const primaryTombstone = newerTombstone(ours);
    const replicaTombstone = newerTombstone(theirsState);
    const plan: NamePlan = {
      clientId,
      name,
      merged,
      primaryRecords: [...(primaryTombstone ? [primaryTombstone] : []), ...versionsMissing(merged, ours)],
      primaryDrops: versionsMissing(ours, merged).filter((version) => !(primaryTombstone && coveredByTombstone(version))),
      fetch: merged.versions.filter(
        (version) => !inputs.primaryHasBytes(version) && (theirsState?.versions ?? []).some((held) => sameVersion(held, version)) && !replica.damaged.has(versionId(version)),
      ),
      replicaTombstone,
      push: merged.versions.filter((version) => !(theirsState?.versions ?? []).some((held) => sameVersion(held, version)) || replica.damaged.has(versionId(version))),
      replicaDrops: versionsMissing(theirsState, merged).filter((version) => !(replicaTombstone && coveredByTombstone(version))),
    };
    if (
      plan.primaryRecords.length + plan.primaryDrops.length + plan.fetch.length + plan.push.length + plan.replicaDrops.length > 0 ||
      plan.replicaTombstone
    ) {
      plans.push(plan);
    }
  }
  return plans;
}

/** True when the plan asks anything of the replica. */
export function replicaHasWork(plan: NamePlan): boolean {
  return plan.replicaTombstone !== undefined || plan.push.length > 0 || plan.replicaDrops.length > 0;
}

/**
 * A side that lacks the other's tombstone but is complete through its generation, and
 * holds nothing at or below it, already says what that tombstone says (a replica drops
 * its tombstones once certified past them): count it as held, so it is not sent again.
 */
function coveredTombstone(state: NameState | undefined, tombstone: VersionRecord | undefined, completeThrough: number): NameState | undefined {
  if (!tombstone || tombstone.generation > completeThrough || (state?.tombstone && state.tombstone.generation >= tombstone.generation)) {
    return state;
  }
  if ((state?.versions ?? []).some((version) => version.generation <= tombstone.generation)) {
    return state;
  }
  return { versions: state?.versions ?? [], tombstone };
}

function versionId(version: VersionRecord): string {
  return `${version.generation}\u0000${version.sha256}`;
}
