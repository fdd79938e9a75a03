import type { DiskStore } from '../storage/disk-store';
import type { KeyLock } from '../storage/key-lock';
import type { ReplicaLink } from './replica-link';

/** What the primary's verb handlers share. */
export interface PrimaryContext {
  readonly store: DiskStore;
  readonly links: readonly ReplicaLink[];
  readonly locks: KeyLock;
  /** Bytes each client may store in all, when a quota is set. */
  readonly quotaBytes?: number;
  log(line: string): void;
  /** How many replicas must hold a write before it is acknowledged. */
  replicasRequired(): number;
  /**
   * True until a first catch-up pass has reached every replica on a primary whose data
   * folder is new: files only the replicas hold are then the cluster's files, to copy
   * back, not leftovers to delete. A primary started on the wrong or an empty folder
   * thus rebuilds itself instead of wiping its replicas.
   */
  readonly adopting: boolean;
  /** Files this primary removed (or refused) since it started: never adopted back. */
  readonly removedKeys: Set<string>;
  finishAdoption(): Promise<void>;
  /** Called after every committed write; `someBehind` asks for a catch-up pass soon. */
  afterWrite(someBehind: boolean): void;
}
