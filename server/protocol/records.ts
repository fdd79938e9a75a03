/** One stored file, as FILES describes it (one JSON object per line). */
export interface FileRecord {
  clientId: string;
  name: string;
  size: number;
  /** When this version was stored, in milliseconds since the epoch (the primary's clock at its commit). */
  mtimeMs: number;
  sha256: string;
  /** The version's generation: unique in the cluster, higher for every later change of any file. */
  generation: number;
  /** How many nodes hold this exact version: the primary plus replicas in step (FILES only). */
  copies?: number;
}

/**
 * One version of a name as a node records it: a stored file, or a delete (a
 * tombstone). The highest generation of a name is its current state, wherever it is.
 */
export interface VersionRecord {
  clientId: string;
  name: string;
  generation: number;
  size: number;
  sha256: string;
  mtimeMs: number;
  /** Set on a tombstone: the name was deleted at this generation (size 0, empty checksum). */
  deleted?: true;
}

/** One entry of INVENTORY: a version a replica holds, and whether its bytes are intact. */
export interface InventoryRecord extends VersionRecord {
  /** The version is recorded but its bytes are missing or failed their checksum. */
  damaged?: true;
}

/** INVENTORY's first line: what the node's catalog says about itself. */
export interface InventoryHeader {
  /** Random, made when the node's catalog was created: a new or replaced data folder has a new one. */
  nodeId: string;
  /** Random, new at every start of the node: SYNCED must name it, so an inventory of an earlier start is never certified. */
  session: string;
  /** The highest generation the node has recorded. */
  highest: number;
  /** The highest generation a primary reserved on this node; no generation at or below it may be issued again. */
  reserved: number;
  /**
   * The primary certified that this node holds, for every name, a state at least as new
   * as the cluster's latest one at or below this generation; -1 when never certified.
   */
  synced: number;
  /** Key ids this node refuses. */
  revoked: string[];
}

/** One entry of VERSIONS: a version kept of a file, newest first. */
export interface VersionInfo {
  generation: number;
  size: number;
  sha256: string;
  mtimeMs: number;
  current: boolean;
}

/** A client directory, as CLIENTS describes it. */
export interface ClientRecord {
  clientId: string;
  files: number;
  /** Bytes of the current versions. */
  bytes: number;
}

export interface ReplicaStatus {
  id: number;
  address: string;
  reachable: boolean;
  /** Names whose newest state this replica is known to lack, tombstones included. */
  filesBehind: number;
  /** When a catch-up pass last brought this replica fully in step. */
  lastSyncMs?: number;
  repairs: number;
  lastError?: string;
  /** Names the last catch-up pass could not settle, with the reason (at most 20). */
  failing?: { name: string; reason: string }[];
}

/** STATUS on the primary. */
/** Who leads, when primaries are elected through etcd (without etcd the only primary leads, at epoch 0). */
export interface HaStatus {
  /** "HOST:PORT" of the primary that leads. */
  leader: string;
  /** Its leadership's epoch (the etcd revision that elected it); 0 without etcd. */
  epoch: number;
  /** When it was elected, in milliseconds since the epoch. */
  leaderSinceMs?: number;
  /** The other primaries registered in etcd, ready to take over. */
  standbys?: string[];
}

export interface ClusterStatus extends Partial<HaStatus> {
  role: 'primary';
  address: string;
  writeQuorum: number;
  /** How uploads reach the replicas: `fanout` (the primary sends to each) or `pipeline` (through them in a chain). */
  replication?: 'fanout' | 'pipeline';
  replicas: ReplicaStatus[];
  files: number;
  bytes: number;
  uptimeMs: number;
  /** The highest generation this primary has issued or learned. */
  generation: number;
  keepVersions: number;
  /** Set while the primary cannot serve yet, saying what it waits for. */
  recovering?: string;
  /** Key ids the cluster refuses (members and admins only). */
  revokedKeys?: string[];
  /** Connections this primary has served since it started (members and admins only). */
  connections?: ConnectionCounts;
}

/** A server's connections: each physical one counts once, however many requests a multiplexed one carried. */
export interface ConnectionCounts {
  accepted: number;
  /** Of those, the ones switched to frames (MUX 1). */
  multiplexed: number;
  /** Multiplexed connections open now. */
  multiplexedOpen: number;
}

/** STATUS on a replica. */
export interface ReplicaNodeStatus {
  role: 'replica';
  id: number;
  address: string;
  files: number;
  bytes: number;
  uptimeMs: number;
  generation: number;
  synced: number;
  /** The newest leadership epoch a primary elected through etcd has shown it; 0 when none. */
  epoch: number;
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

/** UPLOAD_SUCCESS's (and RESTORE_SUCCESS's) payload for our own clients. */
export interface UploadReceipt {
  sha256: string;
  size: number;
  generation: number;
  /** Nodes that hold the file now, the primary included. */
  copies: number;
  replicasBehind: number[];
}

/** DELETE_SUCCESS's payload for our own clients. */
export interface DeleteReceipt {
  generation: number;
  copies: number;
  replicasBehind: number[];
}

/** RENAME_SUCCESS's payload: the destination's new version (the source's bytes) and where it is held. */
export interface RenameReceipt {
  /** The destination's new generation; the source's tombstone has the same one. */
  generation: number;
  size: number;
  sha256: string;
  /** The destination's generation this rename replaced, when it replaced one. */
  replaced?: number;
  /** Nodes that applied the rename, the primary included. */
  copies: number;
  replicasBehind: number[];
}
