import type { CommitPoint, CommittedChange } from '../primary/commit-point';
import { copyVersionFrom, repairVersion } from '../primary/copy-from-replica';
import type { PrimaryNode } from '../primary/primary-node';
import type { VersionRecord } from '../protocol';
import { fileKey } from '../storage/key-lock';
import { liveOf } from '../storage/name-state';

export interface TakeoverReport {
  records: number;
  /** Committed in etcd, and now in this primary's catalog too (taken from a replica, or a delete applied). */
  rolledForward: number;
  /** Committed in etcd by a leader that died before any copy was made: the name's previous state is published again above it. */
  republished: number;
}

/**
 * What a new leader does with the commit records before it serves, once it has
 * compared its catalog with enough replicas: a record newer than what the replicas
 * hold was committed by the previous leader, which died before the replicas (or
 * enough of them) took it. A delete needs no bytes and rolls forward. A version rolls
 * forward from any replica that prepared and committed it. One whose bytes no node
 * has was never acknowledged (an acknowledgement waits for the replicas): the name's
 * previous state is committed again with a new generation, above the lost one, so
 * no copy of it met later can ever win.
 */
export async function settleCommitRecords(primary: PrimaryNode, commitPoint: CommitPoint, committed: CommittedChange[]): Promise<TakeoverReport> {
  const report: TakeoverReport = { records: committed.length, rolledForward: 0, republished: 0 };
  for (const record of committed) {
    primary.raiseFloor(record.generation);
  }
  primary.startIssuing();
  // A rename's destination goes first, while this primary may still hold the source's
  // bytes: its tombstone (the same generation) then finds the name settled.
  const records = [...committed].sort((a, b) => Number(b.renamedFrom !== undefined) - Number(a.renamedFrom !== undefined));
  for (const change of records) {
    const { renamedFrom, ...record } = change;
    const { clientId, name } = record;
    const state = primary.store.state(clientId, name);
    const latest = state?.versions[0] ?? state?.tombstone;
    if (latest && latest.generation >= record.generation) {
      continue;
    }
    if (record.deleted) {
      await primary.store.commitTombstone(record);
      report.rolledForward++;
    } else if (await fromSomeReplica(primary, record)) {
      report.rolledForward++;
    } else if (renamedFrom && (await renameHere(primary, commitPoint, record, renamedFrom))) {
      report.rolledForward++;
    } else {
      await republish(primary, commitPoint, record, liveOf(state));
      report.republished++;
    }
    for (const link of primary.links) {
      link.markBehind(fileKey(clientId, name));
    }
  }
  primary.catchUp.requestSoon();
  return report;
}

async function fromSomeReplica(primary: PrimaryNode, record: VersionRecord): Promise<boolean> {
  for (const link of primary.links) {
    try {
      await copyVersionFrom(primary, link, record);
      if (primary.store.state(record.clientId, record.name)?.versions.some((version) => version.generation === record.generation)) {
        primary.log(`takeover: ${record.clientId}/${record.name} generation ${record.generation}, committed by the previous leader, taken from ${link.label}`);
        return true;
      }
    } catch {
      // That replica does not hold it: ask the next.
    }
  }
  return false;
}

/**
 * Rolls a rename forward that no replica applied, from the source version's bytes
 * (this primary's copy, or one it repairs from a replica first). It is committed again
 * under a new generation, both names in one commit record, as republish does: the
 * replicas may already be certified complete past the lost generation (the catch-up
 * before this takeover could not know of it), and a version they lack at or below
 * their completeness counts as deleted. False when no node holds the source's bytes.
 */
async function renameHere(primary: PrimaryNode, commitPoint: CommitPoint, lost: VersionRecord, source: { name: string; generation: number }): Promise<boolean> {
  const { clientId } = lost;
  const original = liveOf(primary.store.state(clientId, source.name));
  if (!original || original.generation !== source.generation) {
    return false;
  }
  if (!primary.store.hasBytes(clientId, source.name, source.generation) && !(await repairVersion(primary, original))) {
    return false;
  }
  const generation = await primary.issuer.issue();
  try {
    const tombstone: VersionRecord = { clientId, name: source.name, generation, size: 0, sha256: '', mtimeMs: Date.now(), deleted: true };
    const again: VersionRecord = { ...lost, generation };
    await commitPoint.record([tombstone, { ...again, renamedFrom: source }]);
    await primary.store.commitRename(source.generation, tombstone, again, primary.keepVersions);
    primary.log(
      `takeover: rename of ${clientId}/${source.name} to ${lost.name} (generation ${lost.generation}), committed by the previous leader, applied from this primary's copy as generation ${generation}`,
    );
    return true;
  } finally {
    primary.issuer.settle(generation);
  }
}

async function republish(primary: PrimaryNode, commitPoint: CommitPoint, lost: VersionRecord, previous: VersionRecord | undefined): Promise<void> {
  const { clientId, name } = lost;
  const generation = await primary.issuer.issue();
  try {
    const mtimeMs = Date.now();
    if (!previous) {
      const tombstone: VersionRecord = { clientId, name, generation, size: 0, sha256: '', mtimeMs, deleted: true };
      await commitPoint.record([tombstone]);
      await primary.store.commitTombstone(tombstone);
    } else {
      if (!primary.store.hasBytes(clientId, name, previous.generation) && !(await repairVersion(primary, previous))) {
        throw new Error(`no node holds generation ${previous.generation} of ${clientId}/${name}, which must replace the lost generation ${lost.generation}`);
      }
      const again: VersionRecord = { ...previous, generation, mtimeMs };
      const staged = await primary.store.stage();
      try {
        const { body } = await primary.store.openRead(clientId, name, previous.generation);
        for await (const chunk of body as AsyncIterable<Buffer>) {
          await staged.write(chunk);
        }
        await commitPoint.record([again]);
        await primary.store.commitVersion(staged, again, primary.keepVersions);
      } finally {
        await staged.abort();
      }
    }
    primary.log(
      `takeover: ${clientId}/${name} generation ${lost.generation} was committed by the previous leader but reached no replica (never acknowledged); ${previous ? `generation ${previous.generation}` : 'its absence'} is current again as generation ${generation}`,
    );
  } finally {
    primary.issuer.settle(generation);
  }
}
