import type { VersionRecord } from '../protocol';
export { AbandonedAnswer } from '../net/abandoned-answer';

/**
 * A change as it is committed. A rename's destination names the source version whose
 * bytes it took, so a new leader can roll the rename forward from those bytes even
 * when no replica applied it.
 */
export interface CommittedChange extends VersionRecord {
  renamedFrom?: { name: string; generation: number };
}

/**
 * Where a change commits when primaries are elected through etcd: a record written
 * in a transaction that succeeds only while this primary leads. Without etcd there is
 * none, and the primary's own catalog record is the commit point.
 */
export interface CommitPoint {
  /**
   * Records the changes (one name each; a rename's two) together, all or none;
   * resolves once etcd took them while this primary led. Rejects with DfsError FENCED
   * when etcd refused them (nothing is committed), or with AbandonedAnswer when
   * whether etcd took them cannot be known.
   */
  record(changes: readonly CommittedChange[]): Promise<void>;
  /** Throws AbandonedAnswer unless this primary still leads by its own clock: a deposed primary answers nothing. */
  assertLeading(): void;
}
