/**
 * How long a lease holder may count on its lease, by its own monotonic clock. etcd
 * renews a lease when it processes a keep-alive, which is after we sent it, so the
 * lease lives at least until (send time of the last keep-alive etcd confirmed) + TTL.
 * We stop a margin before that, so clock-rate differences and the time our own code
 * takes to act never let us act on a lease etcd has already expired. Events from etcd
 * (a keep-alive failing, a lease reported gone) only ever shorten this, they are never
 * needed for it to run out: etcd reports a lost lease late, and a keep-alive can look
 * alive across a cut network.
 */

/**
 * An eighth of the TTL, at least 250 ms: enough for our own delay between checking and
 * acting (clock rates differ by parts per million), and small enough that an etcd
 * leader election (0.5 to 1 s) fits in what is left of a 2 s lease after the last
 * keep-alive, so losing one etcd member does not cost a failover.
 */
export function validityMarginMs(ttlMs: number): number {
  return Math.max(ttlMs / 8, 250);
}

export class LeaseValidity {
  private confirmedSentAt: number | undefined;
  private ttlMs = 0;

  /**
   * Records a keep-alive (or the grant itself) that etcd answered with `ttlSeconds` > 0,
   * sent at `sentAt` by the monotonic clock. An answer to an older request arriving
   * after a newer one's never moves validity back.
   */
  confirm(sentAt: number, ttlSeconds: number): void {
    if (ttlSeconds <= 0) {
      return;
    }
    if (this.confirmedSentAt === undefined || sentAt >= this.confirmedSentAt) {
      this.confirmedSentAt = sentAt;
      this.ttlMs = ttlSeconds * 1000;
    }
  }

  /** The lease is gone, or a new one replaces it: nothing is valid until the next confirmation. */
  reset(): void {
    this.confirmedSentAt = undefined;
    this.ttlMs = 0;
  }

  /** The monotonic time from which the lease must no longer be counted on. */
  validUntil(): number | undefined {
    return this.confirmedSentAt === undefined ? undefined : this.confirmedSentAt + this.ttlMs - validityMarginMs(this.ttlMs);
  }

  /** The earliest moment etcd itself may expire the lease. */
  earliestExpiry(): number | undefined {
    return this.confirmedSentAt === undefined ? undefined : this.confirmedSentAt + this.ttlMs;
  }

  lastConfirmedSentAt(): number | undefined {
    return this.confirmedSentAt;
  }

  isValid(now: number): boolean {
    const until = this.validUntil();
    return until !== undefined && now < until;
  }
}
