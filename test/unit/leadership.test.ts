import * as assert from 'assert';
import { CallOptions, Compare, EtcdError, KeyValue, Lease, RangeResult, TxnOp, TxnResult } from '../../server/ha/etcd-client';
import { LeaseValidity, validityMarginMs } from '../../server/ha/lease-validity';
import { Leadership, LeadershipEtcd, NotLeaderError } from '../../server/ha/leadership';

describe('lease validity by the monotonic clock', () => {
  it('the margin is an eighth of the TTL, never below 250 ms', () => {
    assert.strictEqual(validityMarginMs(2_000), 250);
    assert.strictEqual(validityMarginMs(8_000), 1_000);
    assert.strictEqual(validityMarginMs(1_000), 250);
    assert.strictEqual(validityMarginMs(600), 250);
  });

  it('is valid from a confirmed send until send + TTL - margin, exclusive', () => {
    const validity = new LeaseValidity();
    assert.strictEqual(validity.isValid(0), false, 'nothing confirmed: not valid');
    validity.confirm(10_000, 2);
    assert.strictEqual(validity.validUntil(), 11_750);
    assert.strictEqual(validity.earliestExpiry(), 12_000);
    assert.strictEqual(validity.isValid(11_749), true);
    assert.strictEqual(validity.isValid(11_750), false);
  });

  it('moves forward with newer confirmations only, ignores TTL 0, and forgets on reset', () => {
    const validity = new LeaseValidity();
    validity.confirm(1_000, 2);
    validity.confirm(1_600, 2);
    assert.strictEqual(validity.validUntil(), 3_350);
    validity.confirm(1_200, 2); // an older keep-alive's late answer
    assert.strictEqual(validity.validUntil(), 3_350);
    validity.confirm(2_000, 0); // "lease gone" confirms nothing
    assert.strictEqual(validity.lastConfirmedSentAt(), 1_600);
    validity.confirm(2_000, 1); // etcd's own TTL (and its margin) is what counts
    assert.strictEqual(validity.validUntil(), 2_750);
    validity.reset();
    assert.strictEqual(validity.validUntil(), undefined);
    assert.strictEqual(validity.isValid(2_001), false);
  });
});

/**
 * An in-memory stand-in for etcd with the semantics Leadership relies on (create
 * revisions, leases owning keys), which can be made to hang like an unreachable one.
 */
class FakeEtcd implements LeadershipEtcd {
  revision = 1;
  readonly keys = new Map<string, KeyValue>();
  readonly leases = new Map<string, number>();
  hang = false;
  txns = 0;
  /** Keep-alives fail at once (as with every member refusing connections). */
  keepAliveFails = false;
  /** How many of the next revokes fail. */
  revokeFailures = 0;
  readonly revoked: string[] = [];
  private nextLease = 100;

  async range(key: string, options: CallOptions & { prefix?: boolean } = {}): Promise<RangeResult> {
    await this.reachable(options);
    const kvs = [...this.keys.values()].filter((kv) => (options.prefix ? kv.key.startsWith(key) : kv.key === key));
    return { kvs, revision: this.revision };
  }

  async put(key: string, value: string, options: CallOptions & { lease?: string } = {}): Promise<number> {
    await this.reachable(options);
    return this.write(key, value, options.lease);
  }

  async txn(compares: Compare[], success: TxnOp[], failure: TxnOp[] = [], options: CallOptions = {}): Promise<TxnResult> {
    this.txns++;
    await this.reachable(options);
    const holds = compares.every((compare) => {
      assert.strictEqual(compare.target, 'CREATE');
      return (this.keys.get(compare.key)?.createRevision ?? 0) === compare.operand;
    });
    const ops = holds ? success : failure;
    if (ops.some((op) => op.type !== 'range')) {
      this.revision++;
    }
    const responses = ops.map((op) => {
      if (op.type === 'put') {
        this.write(op.key, op.value, op.lease, false);
        return { type: 'put' as const, revision: this.revision };
      }
      if (op.type === 'range') {
        const kv = this.keys.get(op.key);
        return { type: 'range' as const, kvs: kv ? [kv] : [] };
      }
      return { type: 'delete' as const, deleted: this.keys.delete(op.key) ? 1 : 0 };
    });
    return { succeeded: holds, revision: this.revision, responses };
  }

  async grantLease(ttlSeconds: number, options: CallOptions = {}): Promise<Lease> {
    await this.reachable(options);
    const id = String(this.nextLease++);
    this.leases.set(id, ttlSeconds);
    return { id, ttl: ttlSeconds };
  }

  async keepAliveOnce(id: string, options: CallOptions = {}): Promise<number> {
    await this.reachable(options);
    if (this.keepAliveFails) {
      throw new EtcdError('UNAVAILABLE', 'ECONNREFUSED');
    }
    return this.leases.get(id) ?? 0;
  }

  async revokeLease(id: string, options: CallOptions = {}): Promise<void> {
    await this.reachable(options);
    this.revoked.push(id);
    if (this.revokeFailures > 0) {
      this.revokeFailures--;
      throw new EtcdError('TIMEOUT', 'no answer');
    }
    this.leases.delete(id);
    for (const [key, kv] of this.keys) {
      if (kv.lease === id) {
        this.keys.delete(key);
      }
    }
  }

  /** Never reports anything: Leadership must work from polling alone. */
  watch(_key: string, options: { signal: AbortSignal }): Promise<void> {
    return new Promise((resolve) => options.signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  private write(key: string, value: string, lease = '0', bump = true): number {
    if (lease !== '0' && !this.leases.has(lease)) {
      throw new EtcdError('LEASE_NOT_FOUND', 'etcdserver: requested lease not found');
    }
    if (bump) {
      this.revision++;
    }
    const existing = this.keys.get(key);
    this.keys.set(key, { key, value, lease, createRevision: existing?.createRevision ?? this.revision, modRevision: this.revision, version: (existing?.version ?? 0) + 1 });
    return this.revision;
  }

  /** Answers at once, or (hang) never: the call ends only when its signal aborts, as if the request had been sent. */
  private reachable(options: CallOptions): Promise<void> {
    if (!this.hang) {
      return Promise.resolve();
    }
    return new Promise((_, reject) => {
      const fail = (): void => reject(new EtcdError('ABORTED', 'cancelled', true));
      if (options.signal?.aborted) {
        fail();
      }
      options.signal?.addEventListener('abort', fail, { once: true });
    });
  }
}

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
}

describe('leadership against a fake etcd and a fake clock', () => {
  let etcd: FakeEtcd;
  let time: number;
  let leadership: Leadership;

  beforeEach(async () => {
    etcd = new FakeEtcd();
    time = 50_000;
    leadership = new Leadership({ etcd, prefix: '/p/', address: 'h:1', ttlSeconds: 2, clock: () => time, wallClock: () => 0 });
    const elected = new Promise<number>((resolve) => leadership.once('elected', resolve));
    await leadership.start();
    assert.strictEqual(await elected, etcd.keys.get('/p/leader')!.createRevision);
  });

  afterEach(async () => {
    etcd.hang = false;
    await leadership.stop();
  });

  it('leads from the grant\'s send time until TTL - margin later, then not, though no timer or event has run', async () => {
    assert.deepStrictEqual(leadership.state(), { role: 'leader', address: 'h:1', epoch: etcd.keys.get('/p/leader')!.createRevision, since: '1970-01-01T00:00:00.000Z' });
    assert.deepStrictEqual([...etcd.keys.keys()].sort(), ['/p/leader', '/p/members/h:1']);
    etcd.hang = true; // no keep-alive gets an answer from now on
    time += 1_749;
    assert.strictEqual(leadership.isLeader(), true);
    time += 1;
    assert.strictEqual(leadership.isLeader(), false);
    assert.strictEqual(leadership.state().role, 'standby');
    const txnsBefore = etcd.txns;
    await assert.rejects(leadership.commitGuarded([{ type: 'put', key: '/p/c', value: 'x' }]), (error: NotLeaderError) => error.code === 'NOT_LEADER');
    assert.strictEqual(etcd.txns, txnsBefore, 'a leader out of validity does not even ask etcd');
  });

  it('a commit whose answer has not come when validity runs out is of unknown outcome, and says so', async () => {
    etcd.hang = true;
    time += 1_700; // 50 ms of validity left, by the fake clock and hence by the real timer bounding the commit
    const started = Date.now();
    const outcome = leadership.commitGuarded([{ type: 'put', key: '/p/c', value: 'x' }]);
    await assert.rejects(outcome, (error: NotLeaderError) => error.code === 'OUTCOME_UNKNOWN' && /may or may not have been applied/.test(error.message));
    assert.ok(Date.now() - started < 1_000, 'it stopped waiting when validity ran out');
  });

  it('stop() revokes the lease (the leader and member keys go with it), says deposed, and leaves no timer running', async () => {
    await leadership.stop(); // the one beforeEach started would move the count meanwhile
    const timersBefore = activeTimers();
    const own = new FakeEtcd();
    const other = new Leadership({ etcd: own, prefix: '/q', address: 'h:2', clock: () => time });
    await other.start();
    assert.ok(other.isLeader());
    await other.commitGuarded([{ type: 'put', key: '/q/c', value: 'x' }]);
    assert.ok(activeTimers() > timersBefore, 'it runs timers while it takes part');
    const deposed = new Promise<string>((resolve) => other.once('deposed', resolve));
    await other.stop();
    assert.strictEqual(await deposed, 'stopped');
    assert.deepStrictEqual([...own.keys.keys()], ['/q/c']);
    assert.strictEqual(own.leases.size, 0);
    assert.strictEqual(activeTimers(), timersBefore, 'no timer of leadership is left');
  });

  it('a primary restarted on the same address does not take its predecessor\'s key for a leader to follow, and leads once that lease ends', async () => {
    await leadership.stop();
    const own = new FakeEtcd();
    const predecessor = await own.grantLease(2);
    await own.put('/r/leader', JSON.stringify({ address: 'h:1', since: 'before the crash' }), { lease: predecessor.id });
    const restarted = new Leadership({ etcd: own, prefix: '/r', address: 'h:1', clock: () => time });
    try {
      await restarted.start();
      assert.deepStrictEqual(restarted.state(), { role: 'standby' }, 'no leader known: certainly not itself');
      const elected = new Promise<number>((resolve) => restarted.once('elected', resolve));
      await own.revokeLease(predecessor.id); // the crashed predecessor's lease runs out
      const epoch = await elected;
      assert.deepStrictEqual(restarted.state(), { role: 'leader', address: 'h:1', epoch, since: (restarted.state() as { since: string }).since });
    } finally {
      await restarted.stop();
    }
  });

  it('a leader whose validity ran out (keep-alives failing) is deposed, and releases its old key when it next sees it, then leads again', async () => {
    const oldKey = etcd.keys.get('/p/leader')!;
    etcd.keepAliveFails = true;
    etcd.revokeFailures = 1; // the revoke on giving up fails: the old key stays in etcd
    const deposed = new Promise<string>((resolve) => leadership.once('deposed', resolve));
    time += 1_750;
    assert.match(await deposed, /validity ran out/);
    etcd.keepAliveFails = false;
    const epoch = await new Promise<number>((resolve) => leadership.once('elected', resolve));
    assert.ok(epoch > oldKey.createRevision, `new epoch ${epoch} > ${oldKey.createRevision}`);
    assert.deepStrictEqual(etcd.revoked, [oldKey.lease, oldKey.lease], 'revoked on giving up (failed), then when its key was seen again');
    assert.strictEqual(etcd.leases.has(oldKey.lease), false);
  });

  it('commits while etcd still has its key; once its key is gone (lease revoked elsewhere) it refuses and is deposed', async () => {
    const committed = await leadership.commitGuarded([{ type: 'put', key: '/p/c', value: 'x' }]);
    assert.strictEqual(etcd.keys.get('/p/c')!.modRevision, committed.revision);
    const lease = etcd.keys.get('/p/leader')!.lease;
    await etcd.revokeLease(lease);
    const deposed = new Promise<string>((resolve) => leadership.once('deposed', resolve));
    await assert.rejects(leadership.commitGuarded([{ type: 'put', key: '/p/d', value: 'y' }]), (error: NotLeaderError) => error.code === 'NOT_LEADER');
    assert.match(await deposed, /no longer has epoch/);
    assert.strictEqual(etcd.keys.has('/p/d'), false);
  });
});
