import * as assert from 'assert';
import { EtcdClient } from '../../server/ha/etcd-client';
import { Leadership, NotLeaderError } from '../../server/ha/leadership';
import { EtcdCluster, startEtcdClusterOrSkip } from '../support/etcd-cluster';
import { rejectsWithCode } from '../support/rejects';
import { waitFor } from '../support/wait';

/** A client whose watches stay silent: Leadership must then rely on its polls and its clock. */
class SilentWatchEtcd extends EtcdClient {
  override watch(_key: string, options: { signal: AbortSignal }): Promise<void> {
    return new Promise((resolve) => options.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
}

/** Leadership's default clock, so that its times and the test's compare. */
const now = (): number => performance.now();

function refused(promise: Promise<unknown>, code: NotLeaderError['code']): Promise<NotLeaderError> {
  return rejectsWithCode(promise, NotLeaderError, code);
}

describe('leadership through a real 3-member etcd', function () {
  let cluster: EtcdCluster;
  let admin: EtcdClient;
  let prefix: string;
  let testNumber = 0;
  const started: Array<{ leadership: Leadership; etcd: EtcdClient }> = [];

  before(async function () {
    cluster = await startEtcdClusterOrSkip(this);
    admin = new EtcdClient({ endpoints: cluster.endpoints() });
  });

  after(async () => {
    admin?.close();
    await cluster?.destroy();
  });

  beforeEach(() => {
    prefix = `/dfs-test-${++testNumber}`;
  });

  afterEach(async () => {
    for (let index = 0; index < cluster.members.length; index++) {
      cluster.resume(index);
    }
    for (const { leadership, etcd } of started.splice(0)) {
      await leadership.stop();
      etcd.close();
    }
  });

  function participant(address: string, ttlSeconds = 2, options: { silentWatch?: boolean } = {}): Leadership {
    const etcd = options.silentWatch ? new SilentWatchEtcd({ endpoints: cluster.endpoints() }) : new EtcdClient({ endpoints: cluster.endpoints() });
    const leadership = new Leadership({ etcd, prefix, address, ttlSeconds });
    started.push({ leadership, etcd });
    return leadership;
  }

  async function twoStarted(ttlSeconds = 2, options: { silentWatch?: boolean } = {}): Promise<{ leader: Leadership; standby: Leadership }> {
    const a = participant('127.0.0.1:8001', ttlSeconds, options);
    const b = participant('127.0.0.1:8002', ttlSeconds, options);
    await Promise.all([a.start(), b.start()]);
    const leaders = [a, b].filter((each) => each.isLeader());
    assert.strictEqual(leaders.length, 1, 'exactly one of two leads');
    return leaders[0] === a ? { leader: a, standby: b } : { leader: b, standby: a };
  }

  it('of two participants exactly one leads; the other knows who, with the epoch of etcd\'s leader key; both are members', async () => {
    const { leader, standby } = await twoStarted();
    const leaderState = leader.state();
    assert.strictEqual(leaderState.role, 'leader');
    const key = (await admin.range(`${prefix}/leader`)).kvs[0];
    assert.strictEqual(leaderState.role === 'leader' && leaderState.epoch, key.createRevision);
    assert.deepStrictEqual(JSON.parse(key.value), { address: leaderState.role === 'leader' && leaderState.address, since: leaderState.role === 'leader' && leaderState.since });

    await waitFor(() => standby.state().role === 'standby' && (standby.state() as { leader?: unknown }).leader !== undefined, 'the standby to learn the leader');
    const standbyState = standby.state();
    assert.deepStrictEqual(standbyState, { role: 'standby', leader: { address: leaderState.role === 'leader' && leaderState.address, epoch: key.createRevision, since: leaderState.role === 'leader' && leaderState.since } });
    assert.deepStrictEqual((await leader.members()).sort(), ['127.0.0.1:8001', '127.0.0.1:8002']);
    assert.deepStrictEqual(await standby.commitGuarded([{ type: 'put', key: `${prefix}/x`, value: 'no' }]).catch((error: NotLeaderError) => error.code), 'NOT_LEADER');

    const committed = await leader.commitGuarded([{ type: 'put', key: `${prefix}/commits/a`, value: 'one' }, { type: 'put', key: `${prefix}/commits/b`, value: 'two' }]);
    const written = await admin.range(`${prefix}/commits/`, { prefix: true });
    assert.deepStrictEqual(written.kvs.map((kv) => [kv.value, kv.modRevision]), [['one', committed.revision], ['two', committed.revision]]);
    assert.deepStrictEqual((await admin.range(`${prefix}/x`)).kvs, [], 'the standby committed nothing');
  });

  it('after a crash of the leader (keep-alives just stop) the standby leads within about TTL + a poll period, with a higher epoch', async () => {
    const { leader, standby } = await twoStarted();
    const oldEpoch = (leader.state() as { epoch: number }).epoch;
    const elected = new Promise<number>((resolve) => standby.once('elected', resolve));
    const crashedAt = now();
    await leader.stop({ revoke: false });
    const newEpoch = await elected;
    const took = now() - crashedAt;
    console.log(`      standby elected ${Math.round(took)} ms after the leader's crash (TTL 2000 ms, poll 500 ms)`);
    assert.ok(newEpoch > oldEpoch, `epoch ${newEpoch} > ${oldEpoch}`);
    assert.ok(standby.isLeader());
    // The lease cannot end before its TTL; the standby polls every TTL/4; etcd's lessor checks every 500 ms.
    assert.ok(took >= 1_300 && took < 2_000 + 500 + 1_000, `took ${Math.round(took)} ms`);
    await standby.commitGuarded([{ type: 'put', key: `${prefix}/after`, value: 'new leader' }]);
  });

  it('a clean stop revokes the lease and the standby leads at once', async () => {
    const { leader, standby } = await twoStarted();
    const elected = new Promise<number>((resolve) => standby.once('elected', resolve));
    const stoppedAt = now();
    await leader.stop();
    await elected;
    const took = now() - stoppedAt;
    console.log(`      standby elected ${Math.round(took)} ms after a clean stop`);
    assert.ok(took < 1_000, `a clean stop handed over in ${Math.round(took)} ms, not after the 2 s lease ran out`);
    assert.deepStrictEqual(await standby.members(), [standby.memberKey.slice(`${prefix}/members/`.length)], 'the stopped one is no member any more');
  });

  it('a leader cut off from etcd (every member paused) stops counting itself leader before etcd could expire its lease, and commits nothing', async () => {
    const { leader } = await twoStarted();
    const deposed = new Promise<{ reason: string; at: number; times: ReturnType<Leadership['leaseTimes']> }>((resolve) =>
      leader.once('deposed', (reason) => resolve({ reason, at: now(), times: leader.leaseTimes() })),
    );
    for (let index = 0; index < cluster.members.length; index++) {
      cluster.pause(index);
    }
    const pausedAt = now();
    // A commit that starts while leadership holds, and whose answer cannot come.
    const pending = leader.commitGuarded([{ type: 'put', key: `${prefix}/during-cut`, value: 'x' }]);
    pending.catch(() => undefined); // awaited below; this only keeps node from calling it unhandled meanwhile
    const firstFalse = await waitFor(() => (leader.isLeader() ? undefined : now()), 'the leader to stop counting itself leader', 5_000);
    const times = leader.leaseTimes();
    assert.ok(times, 'lease times are known');
    assert.ok(firstFalse >= times.validUntil, 'it stopped no earlier than its own validity said');
    assert.ok(firstFalse < times.earliestExpiry, `it stopped at ${Math.round(firstFalse - times.lastConfirmedSentAt)} ms after the last confirmed keep-alive was sent, before that + TTL (${Math.round(times.earliestExpiry - times.lastConfirmedSentAt)} ms)`);
    assert.ok(times.lastConfirmedSentAt <= pausedAt + 50, 'no keep-alive was confirmed after the cut');

    const event = await deposed;
    assert.match(event.reason, /validity ran out/);
    assert.ok(event.at < times.earliestExpiry, '`deposed` was emitted before the lease could have expired');
    await refused(pending, 'OUTCOME_UNKNOWN');
    await refused(leader.commitGuarded([{ type: 'put', key: `${prefix}/after-cut`, value: 'x' }]), 'NOT_LEADER');
    assert.strictEqual(leader.state().role, 'standby');

    for (let index = 0; index < cluster.members.length; index++) {
      cluster.resume(index);
    }
    const [a, b] = started.map((each) => each.leadership);
    await waitFor(() => a.isLeader() !== b.isLeader(), 'one of the two to lead again once etcd is back', 15_000);
    const written = await admin.range(`${prefix}/after-cut`);
    assert.deepStrictEqual(written.kvs, [], 'the refused commit was not applied');
  });

  it('a leader whose lease was revoked behind its back cannot commit, though its own clock still vouches for it', async () => {
    // A long TTL, so that the leader's own checks (every TTL/4) cannot notice before the commit,
    // and watches that report nothing (as one across a cut network may).
    const { leader } = await twoStarted(8, { silentWatch: true });
    const leaseOfLeader = (await admin.range(`${prefix}/leader`)).kvs[0].lease;
    await admin.revokeLease(leaseOfLeader);
    assert.strictEqual(leader.isLeader(), true, 'by its own clock it still leads');
    const deposed = new Promise<string>((resolve) => leader.once('deposed', resolve));
    await refused(leader.commitGuarded([{ type: 'put', key: `${prefix}/late`, value: 'x' }]), 'NOT_LEADER');
    assert.match(await deposed, /no longer has epoch/);
    assert.strictEqual(leader.isLeader(), false);
    assert.deepStrictEqual((await admin.range(`${prefix}/late`)).kvs, []);
  });

  it('one etcd member killed (a follower) changes nothing: same leader, same epoch, commits go through', async () => {
    const { leader, standby } = await twoStarted();
    const before = leader.state();
    let deposedReason: string | undefined;
    leader.on('deposed', (reason) => (deposedReason = reason));
    standby.on('elected', () => (deposedReason ??= 'the standby was elected'));
    const victim = await cluster.followerIndex();
    await cluster.kill(victim);
    try {
      const until = now() + 3_000;
      let commits = 0;
      while (now() < until) {
        await leader.commitGuarded([{ type: 'put', key: `${prefix}/k`, value: String(commits++) }]);
      }
      assert.strictEqual(deposedReason, undefined);
      assert.deepStrictEqual(leader.state(), before);
      assert.ok(commits > 10, `${commits} commits in 3 s`);
    } finally {
      await cluster.restart(victim);
    }
  });
});
