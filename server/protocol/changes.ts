import type { VersionRecord } from './records';

/**
 * CHANGES' header (`OK {"through":T,"complete":C}`), followed by one VersionRecord per
 * name whose current state (a version, or a tombstone with `deleted: true`) has a
 * generation above the one asked about.
 */
export interface ChangesHeader {
  /**
   * Every change at or below this generation is settled: it is in the records (when
   * above the generation asked about) or it never will be. Ask next from here. Records
   * above it may show up again in the next answer.
   */
  through: number;
  /**
   * False when the primary may no longer know every delete above the generation asked
   * about (it dropped tombstones since, or restarted, or the generation is not one of
   * its own): compare with FILES to find the names that went.
   */
  complete: boolean;
}

/** One entry of CHANGES: the name's current state (a tombstone when `deleted`). */
export type ChangeRecord = VersionRecord;

export interface Changes {
  header: ChangesHeader;
  records: ChangeRecord[];
}
