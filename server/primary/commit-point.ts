import type { VersionRecord } from '../protocol';
export { AbandonedAnswer } from '../net/abandoned-answer';

/**
 * Where a change commits when primaries are elected through etcd: a record written
 * in a transaction that succeeds only while this primary leads. Without etcd there is
 * none, and the primary's own catalog record is the commit point.
 */
export interface CommitPoint {
  /**
   * Records the change; resolves once etcd took it while this primary led. Rejects
   * with DfsError FENCED when etcd refused it (nothing is committed), or with
   * AbandonedAnswer when whether etcd took it cannot be known.
   */
  record(change: VersionRecord): Promise<void>;
  /** Throws AbandonedAnswer unless this primary still leads by its own clock: a deposed primary answers nothing. */
  assertLeading(): void;
}
