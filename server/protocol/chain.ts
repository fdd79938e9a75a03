import { DfsError, ErrorCode, isErrorCode } from './errors';

/**
 * Pipeline replication: a replica further down the chain, as the hop before it must
 * reach it. `id` is the replica's id in the cluster, so every outcome reported back
 * up the chain names the replica it is about.
 */
export interface ChainHop {
  id: number;
  host: string;
  port: number;
}

/** `-` (no hops) or `id@host:port,...`: no spaces, so it sits before the file name in a header. */
export function formatChainHops(hops: readonly ChainHop[]): string {
  return hops.length === 0 ? '-' : hops.map((hop) => `${hop.id}@${hop.host}:${hop.port}`).join(',');
}

export function parseChainHops(text: string): ChainHop[] {
  if (text === '-') {
    return [];
  }
  const hops = text.split(',').map((part) => {
    const match = /^(\d{1,6})@([^\s,@]+):(\d{1,5})$/.exec(part);
    const port = match ? Number(match[3]) : 0;
    if (!match || port < 1 || port > 65535) {
      throw new DfsError('BAD_HEADER', `${JSON.stringify(part.slice(0, 80))} is not a chain hop (<replica_id>@<host>:<port>)`);
    }
    return { id: Number(match[1]), host: match[2], port };
  });
  if (new Set(hops.map((hop) => hop.id)).size !== hops.length) {
    throw new DfsError('BAD_HEADER', 'a chain names the same replica twice');
  }
  return hops;
}

/**
 * What a hop reports up the chain after each step: the replicas below it that failed
 * (by id, with why). A replica below it that is not named took the step. The hop's
 * own outcome is the reply token itself.
 */
export type HopFailures = Map<number, DfsError>;

export function formatHopFailures(failures: HopFailures): string {
  const entries: Record<string, { code: ErrorCode; message: string }> = {};
  for (const [id, error] of failures) {
    entries[String(id)] = { code: error.code, message: error.message.replace(/[\r\n]+/g, ' ') };
  }
  return JSON.stringify(entries);
}

export function parseHopFailures(payload: string | undefined): HopFailures {
  const failures: HopFailures = new Map();
  if (payload === undefined) {
    return failures;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    throw new DfsError('PROTOCOL', `a chain hop reported ${JSON.stringify(payload.slice(0, 80))}, not its failures as JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new DfsError('PROTOCOL', 'a chain hop reported its failures in the wrong shape');
  }
  for (const [id, entry] of Object.entries(parsed as Record<string, { code?: unknown; message?: unknown }>)) {
    const code = typeof entry?.code === 'string' && isErrorCode(entry.code) ? entry.code : 'REPLICA_FAILED';
    const message = typeof entry?.message === 'string' ? entry.message : 'failed further down the chain';
    if (!/^\d{1,6}$/.test(id)) {
      throw new DfsError('PROTOCOL', 'a chain hop reported a failure for no replica id');
    }
    failures.set(Number(id), new DfsError(code, message));
  }
  return failures;
}
