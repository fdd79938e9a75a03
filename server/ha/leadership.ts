import { EventEmitter } from 'events';
import { EtcdClient, EtcdError, Lease, TxnOp } from './etcd-client';
import { LeaseValidity } from './lease-validity';

/**
 * Election of one primary through etcd, and the lease that bounds its leadership.
 *
 * Every participant holds a lease of `ttlSeconds`, refreshed every ttl/5, and registers
 * `<prefix>/members/<address>` under it. Campaigning is a transaction that creates
 * `<prefix>/leader` under the lease only if the key does not exist; the winner's
 * **epoch** is that key's create revision, which only grows from one leadership to the
 * next. Standbys try that transaction every ttl/4, which also tells them who leads,
 * and at once when a watch on the leader key reports a change (the watch only speeds
 * things up: polling goes on, since a watch can stay silent across a cut network).
 *
 * The leader counts itself leader only while its lease is valid by its own monotonic
 * clock (see LeaseValidity): until the send time of the last keep-alive etcd confirmed
 * plus the TTL minus a margin. From that moment isLeader() is false, whatever has or
 * has not arrived from etcd; then it emits `deposed` and campaigns again with a fresh
 * lease. commitGuarded() writes only while etcd still has this leader's key.
 */

/** The part of EtcdClient leadership uses: a fake one can stand in for unit tests. */
export type LeadershipEtcd = Pick<EtcdClient, 'range' | 'txn' | 'put' | 'grantLease' | 'keepAliveOnce' | 'revokeLease' | 'watch'>;

export interface LeadershipOptions {
  etcd: LeadershipEtcd;
  /** Key prefix shared by the primaries of one cluster, e.g. '/dfs'. */
  prefix: string;
  /** This primary's address as clients and the other primaries reach it, 'HOST:PORT'. */
  address: string;
  /** Lease TTL in seconds (default 2; etcd raises values below its own minimum). */
  ttlSeconds?: number;
  log?: (line: string) => void;
  /** Monotonic milliseconds (default performance.now). */
  clock?: () => number;
  /** Wall-clock milliseconds for `since` (default Date.now). */
  wallClock?: () => number;
}

export interface LeaderInfo {
  address: string;
  epoch: number;
  /** When this leadership began, ISO 8601 by the leader's wall clock. */
  since: string;
}

/** A standby's `leader` is another primary (never this one), as etcd last showed it; absent when none is known. */
export type LeadershipState = ({ role: 'leader' } & LeaderInfo) | { role: 'standby'; leader?: LeaderInfo };

export type GuardedOp = Exclude<TxnOp, { type: 'range' }>;

export type NotLeaderCode =
  /** Nothing was written: this primary does not lead (or no longer by its own clock). */
  | 'NOT_LEADER'
  /** The transaction may or may not have been applied: its answer was lost and leadership ran out meanwhile. */
  | 'OUTCOME_UNKNOWN';

export class NotLeaderError extends Error {
  constructor(
    readonly code: NotLeaderCode,
    message: string,
  ) {
    super(message);
    this.name = 'NotLeaderError';
  }
}

export interface LeadershipEvents {
  elected: [epoch: number];
  deposed: [reason: string];
  /** A standby saw the leader change (undefined: no leader right now). */
  leader: [leader: LeaderInfo | undefined];
}

export const DEFAULT_TTL_SECONDS = 2;

interface Leading {
  epoch: number;
  since: string;
}

export class Leadership extends EventEmitter<LeadershipEvents> {
  readonly leaderKey: string;
  readonly memberKey: string;
  private readonly etcd: LeadershipEtcd;
  private readonly prefix: string;
  private readonly address: string;
  private readonly ttlMs: number;
  private readonly log: (line: string) => void;
  private readonly clock: () => number;
  private readonly wallClock: () => number;
  /** Per etcd attempt: short enough that one hung member leaves time for the next well within the lease. */
  private readonly attemptTimeoutMs: number;
  private readonly validity = new LeaseValidity();
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private lease: Lease | undefined;
  private session: AbortController | undefined;
  private leading: Leading | undefined;
  private seenLeader: LeaderInfo | undefined;
  private validityTimer: NodeJS.Timeout | undefined;
  private readonly sleeps = new Set<() => void>();
  /** Sleeps that an event may cut short, by purpose. */
  private readonly nudgeable = new Map<string, () => void>();
  private readonly nudged = new Set<string>();
  /** The etcd revision up to which the leader key has been seen, where a watch resumes. */
  private observedRevision: number | undefined;
  private firstRound: (() => void) | undefined;
  /** Leases of sessions this primary gave up but could not revoke then (the last few). */
  private readonly abandonedLeases = new Set<string>();

  constructor(options: LeadershipOptions) {
    super();
    this.etcd = options.etcd;
    this.prefix = options.prefix.replace(/\/+$/, '');
    this.address = options.address;
    this.ttlMs = (options.ttlSeconds ?? DEFAULT_TTL_SECONDS) * 1000;
    this.log = options.log ?? (() => undefined);
    this.clock = options.clock ?? (() => performance.now());
    this.wallClock = options.wallClock ?? Date.now;
    this.attemptTimeoutMs = Math.round(Math.min(1000, Math.max(100, this.ttlMs / 6)));
    this.leaderKey = `${this.prefix}/leader`;
    this.memberKey = `${this.prefix}/members/${this.address}`;
  }

  /**
   * Starts taking part; resolves once etcd has answered the first campaign (this
   * primary then leads or knows it stands by) or stop() is called. If etcd cannot be
   * reached it keeps trying in the background, so a caller that must not wait for
   * etcd can leave this promise to resolve later (it never rejects).
   */
  start(): Promise<void> {
    if (this.loop) {
      throw new Error('Leadership.start() was called twice');
    }
    const answered = new Promise<void>((resolve) => (this.firstRound = resolve));
    this.loop = this.run();
    return answered;
  }

  /**
   * Stops: ends keep-alives and campaigning, clears every timer, and revokes the lease
   * so that a standby can take over at once. `revoke: false` leaves the lease to expire
   * as after a crash (tests use it to play one).
   */
  async stop(options: { revoke?: boolean } = {}): Promise<void> {
    if (this.stopping.signal.aborted) {
      await this.loop;
      return;
    }
    // Not leader from this moment: a commit racing with stop() is refused.
    this.stepDown('stopped');
    this.stopping.abort();
    this.session?.abort();
    for (const wake of [...this.sleeps]) {
      wake();
    }
    await this.loop;
    this.resolveFirstRound();
    const lease = this.lease;
    this.lease = undefined;
    if (lease && options.revoke !== false) {
      await this.etcd.revokeLease(lease.id, { timeoutMs: this.attemptTimeoutMs }).catch((error: unknown) => {
        this.log(`could not revoke lease ${lease.id} on stopping (it expires within ${this.ttlMs / 1000} s): ${describe(error)}`);
      });
    }
  }

  isLeader(): boolean {
    return this.leading !== undefined && this.validity.isValid(this.clock());
  }

  state(): LeadershipState {
    if (this.leading && this.isLeader()) {
      return { role: 'leader', address: this.address, epoch: this.leading.epoch, since: this.leading.since };
    }
    return this.seenLeader ? { role: 'standby', leader: this.seenLeader } : { role: 'standby' };
  }

  /** Monotonic times of the current lease: the last confirmed keep-alive's send time and when validity ends. */
  leaseTimes(): { lastConfirmedSentAt: number; validUntil: number; earliestExpiry: number } | undefined {
    const lastConfirmedSentAt = this.validity.lastConfirmedSentAt();
    return lastConfirmedSentAt === undefined
      ? undefined
      : { lastConfirmedSentAt, validUntil: this.validity.validUntil()!, earliestExpiry: this.validity.earliestExpiry()! };
  }

  /** Addresses registered under `<prefix>/members/` (leader and standbys whose lease lives). */
  async members(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    const prefix = `${this.prefix}/members/`;
    const { kvs } = await this.etcd.range(prefix, { prefix: true, signal: options.signal, timeoutMs: this.attemptTimeoutMs });
    return kvs.map((kv) => kv.key.slice(prefix.length));
  }

  /**
   * Applies `ops` in one etcd transaction that succeeds only while `<prefix>/leader` is
   * still this leadership's key (its create revision equals our epoch), and only while
   * this primary is leader by its own clock: if no answer has come when validity runs
   * out, it stops waiting. Resolves with the revision of the commit; throws
   * NotLeaderError NOT_LEADER when nothing was written, OUTCOME_UNKNOWN when an attempt
   * may have been applied and no later one could tell; rethrows etcd's refusal of the
   * request itself (EtcdError REJECTED), which also wrote nothing.
   */
  async commitGuarded(ops: GuardedOp[], options: { signal?: AbortSignal } = {}): Promise<{ revision: number }> {
    const leading = this.leading;
    const validUntil = this.validity.validUntil();
    if (!leading || validUntil === undefined || !this.isLeader()) {
      throw new NotLeaderError('NOT_LEADER', `${this.address} does not lead${this.seenLeader ? ` (${this.seenLeader.address} does, epoch ${this.seenLeader.epoch})` : ''}: nothing was committed`);
    }
    const bounded = new AbortController();
    const onCallerAbort = (): void => bounded.abort();
    options.signal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer = setTimeout(() => bounded.abort(), Math.max(0, validUntil - this.clock()));
    let mayHaveApplied = false;
    try {
      for (;;) {
        try {
          const result = await this.etcd.txn([{ key: this.leaderKey, target: 'CREATE', result: 'EQUAL', operand: leading.epoch }], ops, [], {
            signal: bounded.signal,
            timeoutMs: this.attemptTimeoutMs,
            retryAfterSend: false,
          });
          if (result.succeeded) {
            return { revision: result.revision };
          }
          this.depose(`etcd's leader key no longer has epoch ${leading.epoch}`);
          throw mayHaveApplied
            ? new NotLeaderError('OUTCOME_UNKNOWN', `an earlier attempt's answer was lost and ${this.address} no longer leads (epoch ${leading.epoch}): the commit may or may not have been applied`)
            : new NotLeaderError('NOT_LEADER', `${this.address} no longer leads (etcd's leader key is not epoch ${leading.epoch}): nothing was committed`);
        } catch (error) {
          if (!(error instanceof EtcdError) || (error.code !== 'TIMEOUT' && error.code !== 'UNAVAILABLE' && error.code !== 'ABORTED')) {
            throw error;
          }
          mayHaveApplied ||= error.mayHaveApplied;
          if (error.code === 'ABORTED' || bounded.signal.aborted) {
            const why = options.signal?.aborted ? 'the commit was cancelled' : `${this.address}'s leadership ran out by its own clock before etcd answered`;
            throw mayHaveApplied
              ? new NotLeaderError('OUTCOME_UNKNOWN', `${why}: the commit may or may not have been applied (${error.message})`)
              : new NotLeaderError('NOT_LEADER', `${why}: nothing reached etcd, nothing was committed (${error.message})`);
          }
          // Try again (the client starts at the next endpoint) while leadership lasts.
          await this.sleep(Math.min(50, this.attemptTimeoutMs), bounded.signal);
          if (this.leading !== leading) {
            throw mayHaveApplied
              ? new NotLeaderError('OUTCOME_UNKNOWN', `${this.address} stopped leading before etcd answered: the commit may or may not have been applied (${error.message})`)
              : new NotLeaderError('NOT_LEADER', `${this.address} stopped leading before the commit reached etcd: nothing was committed (${error.message})`);
          }
        }
      }
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  private async run(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      let reason: string;
      try {
        reason = await this.serveSession();
      } catch (error) {
        reason = describe(error);
      }
      const lease = this.lease;
      if (this.stopping.signal.aborted) {
        break;
      }
      this.lease = undefined;
      this.stepDown(reason);
      this.log(`lease session ended: ${reason}`);
      if (lease) {
        // Our old leader or member key may outlive the session in etcd: release them now, or when next seen.
        this.abandonedLeases.add(lease.id);
        await this.etcd.revokeLease(lease.id, { signal: this.stopping.signal, timeoutMs: this.attemptTimeoutMs }).then(
          () => this.abandonedLeases.delete(lease.id),
          () => undefined,
        );
        for (const old of [...this.abandonedLeases].slice(0, -8)) {
          this.abandonedLeases.delete(old);
        }
      }
      await this.sleep(this.ttlMs / 4, this.stopping.signal);
    }
  }

  /** One lease from grant to loss; returns why it ended. */
  private async serveSession(): Promise<string> {
    const session = new AbortController();
    this.session = session;
    if (this.stopping.signal.aborted) {
      session.abort();
    }
    const sentAt = this.clock();
    const lease = await this.etcd.grantLease(this.ttlMs / 1000, { signal: session.signal, timeoutMs: this.attemptTimeoutMs });
    this.lease = lease;
    this.validity.reset();
    this.validity.confirm(sentAt, lease.ttl);
    await this.etcd.put(this.memberKey, JSON.stringify({ address: this.address, since: new Date(this.wallClock()).toISOString() }), {
      lease: lease.id,
      signal: session.signal,
      timeoutMs: this.attemptTimeoutMs,
    });
    let ended: string | undefined;
    const end = (reason: string): void => {
      ended ??= reason;
      session.abort();
    };
    this.endSession = end;
    await Promise.all([this.keepAliveLoop(lease, session.signal, end), this.campaignLoop(lease, session.signal, end), this.watchLoop(session.signal)]);
    this.endSession = undefined;
    return ended ?? 'stopped';
  }

  private endSession: ((reason: string) => void) | undefined;

  private async keepAliveLoop(lease: Lease, signal: AbortSignal, end: (reason: string) => void): Promise<void> {
    // Often enough that the last confirmed keep-alive is recent when etcd loses its
    // leader: the election that follows must fit in the validity left.
    const interval = this.ttlMs / 5;
    let nextAt = this.clock() + interval;
    while (!signal.aborted) {
      await this.sleep(Math.max(0, nextAt - this.clock()), signal);
      if (signal.aborted) {
        return;
      }
      const sentAt = this.clock();
      try {
        const ttl = await this.etcd.keepAliveOnce(lease.id, { signal, timeoutMs: this.attemptTimeoutMs });
        if (ttl <= 0) {
          end(`etcd says lease ${lease.id} is gone (expired or revoked)`);
          return;
        }
        this.validity.confirm(sentAt, ttl);
        this.armValidityTimer();
        nextAt = sentAt + interval;
      } catch (error) {
        if (signal.aborted) {
          return;
        }
        this.log(`keep-alive of lease ${lease.id} failed: ${describe(error)}`);
        // Try again soon: the validity window, not this loop, decides when leadership ends.
        nextAt = this.clock() + Math.min(interval, 100);
      }
      if (!this.validity.isValid(this.clock())) {
        end(this.validityRanOut());
        return;
      }
    }
  }

  private async campaignLoop(lease: Lease, signal: AbortSignal, end: (reason: string) => void): Promise<void> {
    while (!signal.aborted) {
      try {
        if (this.leading) {
          await this.checkStillLeader(signal, end);
        } else {
          await this.campaign(lease, signal);
        }
        this.resolveFirstRound();
      } catch (error) {
        if (signal.aborted) {
          return;
        }
        if (error instanceof EtcdError && error.code === 'LEASE_NOT_FOUND') {
          end(`etcd says lease ${lease.id} is gone (expired or revoked)`);
          return;
        }
        this.log(`campaign round failed: ${describe(error)}`);
      }
      await this.sleep(this.ttlMs / 4, signal, 'campaign');
    }
  }

  /** Wakes the campaign loop whenever the leader key changes: a standby campaigns, a leader rechecks. */
  private async watchLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.etcd.watch(this.leaderKey, {
          signal,
          startRevision: this.observedRevision === undefined ? undefined : this.observedRevision + 1,
          timeoutMs: this.attemptTimeoutMs,
          onEvent: (event) => {
            this.observedRevision = Math.max(this.observedRevision ?? 0, event.kv.modRevision);
            this.nudge('campaign');
          },
        });
      } catch (error) {
        if (!signal.aborted) {
          this.log(`watch of ${this.leaderKey} failed (polling goes on): ${describe(error)}`);
          // The next watch starts from now (the old revision may be compacted away); a campaign round covers the gap.
          this.observedRevision = undefined;
          this.nudge('campaign');
        }
      }
      await this.sleep(this.ttlMs / 4, signal);
    }
  }

  private async campaign(lease: Lease, signal: AbortSignal): Promise<void> {
    const since = new Date(this.wallClock()).toISOString();
    const result = await this.etcd.txn(
      [{ key: this.leaderKey, target: 'CREATE', result: 'EQUAL', operand: 0 }],
      [{ type: 'put', key: this.leaderKey, value: JSON.stringify({ address: this.address, since }), lease: lease.id }],
      [{ type: 'range', key: this.leaderKey }],
      { signal, timeoutMs: this.attemptTimeoutMs },
    );
    this.observedRevision = Math.max(this.observedRevision ?? 0, result.revision);
    if (result.succeeded) {
      this.becomeLeader(result.revision, since, signal);
      return;
    }
    const current = result.responses[0]?.type === 'range' ? result.responses[0].kvs[0] : undefined;
    if (current && current.lease === lease.id) {
      // An earlier attempt whose answer was lost did create the key.
      this.becomeLeader(current.createRevision, parseLeaderValue(current.value)?.since ?? since, signal);
      return;
    }
    if (current && this.abandonedLeases.has(current.lease)) {
      // Our own earlier leadership, whose lease could not be revoked when we gave it up: release it now.
      await this.etcd.revokeLease(current.lease, { signal, timeoutMs: this.attemptTimeoutMs });
      this.abandonedLeases.delete(current.lease);
      this.nudge('campaign');
      return;
    }
    const value = current ? parseLeaderValue(current.value) : undefined;
    // A key naming this very address under another lease is a leadership this primary gave up: nobody to follow.
    const leader = current && value?.address !== this.address ? { address: value?.address ?? '(unreadable)', epoch: current.createRevision, since: value?.since ?? '' } : undefined;
    if (leader?.address !== this.seenLeader?.address || leader?.epoch !== this.seenLeader?.epoch) {
      this.seenLeader = leader;
      this.emit('leader', leader);
    }
  }

  private becomeLeader(epoch: number, since: string, signal: AbortSignal): void {
    if (signal.aborted || !this.validity.isValid(this.clock())) {
      // Won in etcd, but our own clock no longer vouches for the lease: let the session end.
      this.endSession?.(this.validityRanOut());
      return;
    }
    this.leading = { epoch, since };
    this.seenLeader = undefined;
    this.log(`leading with epoch ${epoch}`);
    this.armValidityTimer();
    this.emit('elected', epoch);
  }

  private async checkStillLeader(signal: AbortSignal, end: (reason: string) => void): Promise<void> {
    const { kvs } = await this.etcd.range(this.leaderKey, { signal, timeoutMs: this.attemptTimeoutMs });
    if (this.leading && kvs[0]?.createRevision !== this.leading.epoch) {
      end(kvs[0] ? `etcd's leader key now has epoch ${kvs[0].createRevision}, not ${this.leading.epoch}` : `etcd's leader key is gone`);
    }
  }

  /** Wakes when validity runs out, so `deposed` is emitted on time even while a keep-alive hangs. */
  private armValidityTimer(): void {
    clearTimeout(this.validityTimer);
    this.validityTimer = undefined;
    const until = this.validity.validUntil();
    if (!this.leading || until === undefined || this.stopping.signal.aborted) {
      return;
    }
    this.validityTimer = setTimeout(() => {
      this.validityTimer = undefined;
      if (this.validity.isValid(this.clock())) {
        this.armValidityTimer();
      } else {
        this.depose(this.validityRanOut());
      }
    }, Math.max(0, until - this.clock()) + 1);
  }

  private depose(reason: string): void {
    this.stepDown(reason);
    this.endSession?.(reason);
  }

  /** Leaves leadership (if held) and says so, once. */
  private stepDown(reason: string): void {
    clearTimeout(this.validityTimer);
    this.validityTimer = undefined;
    if (this.leading) {
      const { epoch } = this.leading;
      this.leading = undefined;
      this.log(`no longer leading (epoch ${epoch}): ${reason}`);
      this.emit('deposed', reason);
    }
  }

  private validityRanOut(): string {
    const last = this.validity.lastConfirmedSentAt();
    return last === undefined
      ? 'no keep-alive confirmed'
      : `validity ran out: no keep-alive confirmed for ${Math.round(this.clock() - last)} ms (lease TTL ${this.ttlMs} ms)`;
  }

  private resolveFirstRound(): void {
    this.firstRound?.();
    this.firstRound = undefined;
  }

  /** Ends the sleep registered under `purpose`, if one is running. */
  private nudge(purpose: string): void {
    const wake = this.nudgeable.get(purpose);
    if (wake) {
      wake();
    } else {
      // Not asleep right now: the next sleep is skipped instead.
      this.nudged.add(purpose);
    }
  }

  /** Resolves after `ms`, as soon as `signal` aborts, or when nudged under `purpose`; never rejects. */
  private sleep(ms: number, signal: AbortSignal, purpose?: string): Promise<void> {
    if (signal.aborted || (purpose !== undefined && this.nudged.delete(purpose))) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', wake);
        this.sleeps.delete(wake);
        if (purpose !== undefined && this.nudgeable.get(purpose) === wake) {
          this.nudgeable.delete(purpose);
        }
        resolve();
      };
      const timer = setTimeout(wake, ms);
      signal.addEventListener('abort', wake, { once: true });
      this.sleeps.add(wake);
      if (purpose !== undefined) {
        this.nudgeable.set(purpose, wake);
      }
    });
  }
}

function parseLeaderValue(value: string): { address?: string; since?: string } | undefined {
  try {
    const parsed = JSON.parse(value) as { address?: unknown; since?: unknown };
    return { address: typeof parsed.address === 'string' ? parsed.address : undefined, since: typeof parsed.since === 'string' ? parsed.since : undefined };
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
