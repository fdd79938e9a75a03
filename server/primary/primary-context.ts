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
  /** Called after every committed write; `someBehind` asks for a catch-up pass soon. */
  afterWrite(someBehind: boolean): void;
}
