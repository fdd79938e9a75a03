/** One stored file, as FILES and INVENTORY describe it (one JSON object per line). */
export interface FileRecord {
  clientId: string;
  name: string;
  size: number;
  /** When the file was stored, in milliseconds since the epoch. */
  mtimeMs: number;
  sha256: string;
  /** How many nodes hold this exact content: the primary plus replicas in step (FILES only). */
  copies?: number;
}

/** A client directory, as CLIENTS describes it. */
export interface ClientRecord {
  clientId: string;
  files: number;
  bytes: number;
}

export interface ReplicaStatus {
  id: number;
  address: string;
  reachable: boolean;
  /** Files this replica is known to be missing or to hold in an older version. */
  filesBehind: number;
  lastSyncMs?: number;
  repairs: number;
  lastError?: string;
}

/** STATUS on the primary. */
export interface ClusterStatus {
  role: 'primary';
  address: string;
  writeQuorum: number;
  replicas: ReplicaStatus[];
  files: number;
  bytes: number;
  uptimeMs: number;
}

/** STATUS on a replica. */
export interface ReplicaNodeStatus {
  role: 'replica';
  id: number;
  address: string;
  files: number;
  bytes: number;
  uptimeMs: number;
}

export type NodeStatus = ClusterStatus | ReplicaNodeStatus;

/** SCRUB on the primary: what was checked and repaired. */
export interface ScrubReport {
  checked: number;
  /** Primary copies that failed verification, and how many of those were rewritten from a replica. */
  primaryCorrupted: number;
  primaryRepaired: number;
  /** Replica copies that failed verification, per replica id; catch-up rewrites them. */
  replicaCorrupted: Record<number, number>;
  unreachable: number[];
  unrecoverable: string[];
}

/** UPLOAD_SUCCESS's payload for our own clients. */
export interface UploadReceipt {
  sha256: string;
  size: number;
  /** Nodes that hold the file now, the primary included. */
  copies: number;
  replicasBehind: number[];
}

export function encodeRecords(records: readonly unknown[]): string {
  return records.map((record) => JSON.stringify(record)).join('\n') + (records.length > 0 ? '\n' : '');
}

export function decodeRecords<T>(text: string): T[] {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as T);
}
