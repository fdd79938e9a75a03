import type { DiskStore } from '../storage/disk-store';
import type { CommitPoint } from './commit-point';
import type { KeyLock } from '../storage/key-lock';
import type { GenerationIssuer } from './generation-issuer';
import type { Readiness } from './readiness';
import type { ReplicaLink } from './replica-link';
import type { WriteGate } from './write-gate';

/** What the primary's verb handlers share. */
export interface PrimaryContext {
  readonly store: DiskStore;
  readonly links: readonly ReplicaLink[];
  /** Orders writes of one name from their generation to their last replica's answer. */
  readonly locks: KeyLock;
  readonly issuer: GenerationIssuer;
  readonly gate: WriteGate;
  readonly readiness: Readiness;
  /** Older versions kept of each file, on every copy. */
  readonly keepVersions: number;
  /** How uploads reach the replicas (auto already resolved). */
  readonly replication: 'fanout' | 'pipeline';
  log(line: string): void;
  /** How many replicas must hold a write before it is acknowledged. */
  replicasRequired(): number;
  /** Called after every committed write; `someBehind` asks for a catch-up pass soon. */
  afterWrite(someBehind: boolean): void;
  /** With etcd, where every upload and delete commits before the primary's own catalog takes it. */
  readonly commitPoint?: CommitPoint;
  /** With etcd, the epoch of the leadership this primary serves under. */
  readonly epoch?: number;
}
