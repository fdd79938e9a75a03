import type { CommittedChange } from '../primary/commit-point';

/**
 * Where a change's commit record lives in etcd: one key per name, holding the name's
 * latest committed state (a version, or a tombstone), replaced by every later commit.
 */
export function recordKey(prefix: string, clientId: string, name: string): string {
  return `${prefix}/files/${clientId}/${name}`;
}

export function recordsPrefix(prefix: string): string {
  return `${prefix}/files/`;
}

export function encodeRecord(record: CommittedChange): string {
  return JSON.stringify(record);
}

/** A record read back from etcd; undefined for a value that is not one (never written by us). */
export function decodeRecord(value: string): CommittedChange | undefined {
  try {
    const record = JSON.parse(value) as CommittedChange;
    const valid =
      typeof record.clientId === 'string' &&
      typeof record.name === 'string' &&
      Number.isSafeInteger(record.generation) &&
      Number.isSafeInteger(record.size) &&
      typeof record.sha256 === 'string' &&
      Number.isFinite(record.mtimeMs) &&
      (record.renamedFrom === undefined || (typeof record.renamedFrom.name === 'string' && Number.isSafeInteger(record.renamedFrom.generation)));
    return valid ? record : undefined;
  } catch {
    return undefined;
  }
}
