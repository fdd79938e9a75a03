import type { ClientRecord, FileRecord, VersionInfo } from '../protocol';

/** What one reachable replica reported for a client. */
export interface ReplicaListing {
  replicaId: number;
  /** The replica is complete through this generation (the primary certified it after a full pass). */
  synced: number;
  files: readonly FileRecord[];
}

export interface NewestFile {
  record: FileRecord;
  /** Replicas that hold exactly this version, best first. */
  holders: number[];
}

/**
 * For each name, the highest generation any replica lists, never a lower one. A
 * replica certified complete through generation S that does not list a name is proof
 * that every version of it at or below S is dead (deleted, or replaced and then
 * deleted): such a name is left out even if a replica that is behind still lists it,
 * so a read-only view never brings a deleted file back.
 */
export function newestAcrossReplicas(listings: readonly ReplicaListing[]): NewestFile[] {
  const newest = new Map<string, NewestFile>();
  for (const listing of listings) {
    for (const record of listing.files) {
      const known = newest.get(record.name);
      if (!known || record.generation > known.record.generation) {
        newest.set(record.name, { record, holders: [listing.replicaId] });
      } else if (record.generation === known.record.generation) {
        known.holders.push(listing.replicaId);
      }
    }
  }
  const listed = listings.map((listing) => ({ synced: listing.synced, names: new Map(listing.files.map((file) => [file.name, file.generation])) }));
  const alive = [...newest.values()].filter(({ record }) =>
    listed.every(({ synced, names }) => synced < record.generation || (names.get(record.name) ?? -1) >= record.generation),
  );
  return alive
    .map(({ record, holders }) => ({ record: { ...record, copies: holders.length }, holders }))
    .sort((a, b) => (a.record.name < b.record.name ? -1 : a.record.name > b.record.name ? 1 : 0));
}

/** Every client any replica holds; counts from the replica that reports the most files for it. */
export function clientsAcrossReplicas(listings: readonly (readonly ClientRecord[])[]): ClientRecord[] {
  const clients = new Map<string, ClientRecord>();
  for (const records of listings) {
    for (const record of records) {
      const known = clients.get(record.clientId);
      if (!known || record.files > known.files) {
        clients.set(record.clientId, record);
      }
    }
  }
  return [...clients.values()].sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0));
}

/** The kept versions as the replica whose current version is newest reports them. */
export function newestVersions(listings: readonly (readonly VersionInfo[])[]): VersionInfo[] | undefined {
  let best: readonly VersionInfo[] | undefined;
  for (const versions of listings) {
    if (versions.length > 0 && (!best || versions[0].generation > best[0].generation)) {
      best = versions;
    }
  }
  return best ? [...best] : undefined;
}
