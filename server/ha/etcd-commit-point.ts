import { AbandonedAnswer } from '../net/abandoned-answer';
import type { CommitPoint, CommittedChange } from '../primary/commit-point';
import { DfsError } from '../protocol';
import { encodeRecord, recordKey } from './commit-records';
import { Leadership, NotLeaderError } from './leadership';

/**
 * The commit point of a primary elected through etcd: a guarded put of each name's
 * record, all in one transaction (a rename's two names commit together or not at all).
 */
export class EtcdCommitPoint implements CommitPoint {
  constructor(
    private readonly leadership: Leadership,
    private readonly prefix: string,
    private readonly epoch: number,
  ) {}

  async record(changes: readonly CommittedChange[]): Promise<void> {
    const names = changes.map((change) => change.name).join(' and ');
    try {
      await this.leadership.commitGuarded(changes.map((change) => ({ type: 'put' as const, key: recordKey(this.prefix, change.clientId, change.name), value: encodeRecord(change) })));
    } catch (error) {
      if (error instanceof NotLeaderError && error.code === 'NOT_LEADER') {
        throw new DfsError('FENCED', `this primary no longer leads the cluster (${error.message}); try again: the new leader answers`);
      }
      if (error instanceof NotLeaderError) {
        throw new AbandonedAnswer(`lost its leadership (epoch ${this.epoch}) while committing ${names}: ${error.message}`);
      }
      throw error;
    }
  }

  assertLeading(): void {
    if (!this.leadership.isLeader() || this.leadership.state().role !== 'leader' || (this.leadership.state() as { epoch: number }).epoch !== this.epoch) {
      throw new AbandonedAnswer(`no longer leads (epoch ${this.epoch}) by its own clock, so it cannot vouch for what it committed`);
    }
  }
}
