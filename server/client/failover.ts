import { DfsError } from '../protocol';
import { HostPort, PrimaryAddresses, formatHostPort } from './primary-addresses';

/**
 * How long a request keeps trying the primary addresses when none answers. A failover
 * takes 2 to 6 s (a lease to expire, a standby to take over), so with several addresses
 * the default covers one; with a single address the client tries once, as it always did.
 */
export const DEFAULT_FAILOVER_WAIT_MS = 8_000;
const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 1_000;

export function defaultFailoverWaitMs(addresses: number): number {
  return addresses > 1 ? DEFAULT_FAILOVER_WAIT_MS : 0;
}

/**
 * No primary address answered as a leader within the failover wait: nothing can be
 * written until one is back. Its code stays UNREACHABLE, so callers that knew only one
 * primary treat it as before.
 */
export class NoPrimaryError extends DfsError {
  constructor(
    readonly addresses: readonly HostPort[],
    readonly reasons: readonly string[],
    waitedMs: number,
  ) {
    const tried = addresses.length === 1 ? `the primary ${formatHostPort(addresses[0])}` : `any of the primaries ${addresses.map(formatHostPort).join(', ')}`;
    super(
      'UNREACHABLE',
      `no primary answers: could not reach ${tried}${waitedMs > 0 ? ` within ${(waitedMs / 1000).toFixed(1)} s` : ''} (${reasons.join('; ')}). The cluster is read-only until a primary is back: start one ("dfs primary", "dfs cluster" or DFS: Start Cluster), or check the primary addresses (--server, "server" in dfs.config.json, dfs.servers).`,
    );
  }
}

/** Another address may lead: the connection failed, or the server said it knows no leader. */
export function triesAnotherPrimary(error: unknown): boolean {
  return error instanceof DfsError && error.code === 'UNREACHABLE' && !(error instanceof NoPrimaryError);
}

/**
 * Runs `attempt` against the primary that answered last, then the others, round after
 * round with backoff, until one answers (anything but UNREACHABLE is an answer, and is
 * returned or thrown as it is) or `waitMs` has passed.
 */
export async function acrossPrimaries<T>(addresses: PrimaryAddresses, waitMs: number, attempt: (address: HostPort) => Promise<T>, signal?: AbortSignal): Promise<T> {
  const started = Date.now();
  // A failover that was already waited out: one round, to notice a primary that is back.
  const budgetMs = addresses.noneAnswering ? 0 : waitMs;
  let delay = FIRST_DELAY_MS;
  for (;;) {
    const reasons: string[] = [];
    for (const address of addresses.order()) {
      try {
        const result = await attempt(address);
        addresses.answered(address);
        return result;
      } catch (error) {
        if (!triesAnotherPrimary(error)) {
          if (!(error instanceof DfsError && error.code === 'CANCELLED')) {
            addresses.answered(address);
          }
          throw error;
        }
        reasons.push((error as DfsError).message);
      }
    }
    if (Date.now() - started + delay > budgetMs || signal?.aborted) {
      if (!signal?.aborted) {
        addresses.noneAnswering = true;
      }
      throw new NoPrimaryError(addresses.all, reasons, budgetMs);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }
}
