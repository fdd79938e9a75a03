import { readFileSync, readdirSync } from 'fs';

/** Today's default, and the ceiling: beyond it memory, not descriptors, is what runs out first (each connection may buffer about 2 MiB). */
export const FALLBACK_MAX_CONNECTIONS = 1024;
/** Descriptors Node and the node itself hold whatever the load: stdio, the event loop, the catalog journal, folder handles. */
const FIXED_DESCRIPTORS = 64;

/**
 * The soft limit on open files (RLIMIT_NOFILE) of this process, from /proc/self/limits;
 * undefined where it cannot be read (not Linux) or is unlimited.
 */
export function openFilesSoftLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const match = /^Max open files\s+(\S+)/m.exec(text);
  if (!match || !/^\d+$/.test(match[1])) {
    return undefined;
  }
  return Number(match[1]);
}

/**
 * The connections a server can hold under an open-file limit: half of what is left
 * after the fixed descriptors, because a connection may hold a second one (the staged
 * file of an upload, the file a download reads; a primary's upload also holds one
 * socket per replica, but uploads are a fraction of the connections). Refusing with
 * LIMIT at this count keeps descriptors free to accept the next connection and answer
 * it, instead of running out and dropping it unanswered.
 */
export function connectionsAllowed(softLimit: number): number {
  return Math.max(1, Math.floor((softLimit - FIXED_DESCRIPTORS) / 2));
}

/** The connection limit a server uses, and a warning when an explicit one is more than the open-file limit allows. */
export function connectionLimit(explicit: number | undefined, softLimit = openFilesSoftLimit()): { maxConnections: number; warning?: string } {
  const allowed = softLimit === undefined ? undefined : connectionsAllowed(softLimit);
  if (explicit === undefined) {
    return { maxConnections: Math.min(FALLBACK_MAX_CONNECTIONS, allowed ?? FALLBACK_MAX_CONNECTIONS) };
  }
  if (allowed !== undefined && explicit > allowed) {
    return {
      maxConnections: explicit,
      warning: `--max-connections ${explicit} is more than this process's open-file limit of ${softLimit} allows (${allowed}, keeping room for files and replica links): past that, connections may be dropped unanswered. Raise the limit (ulimit -n) or lower --max-connections.`,
    };
  }
  return { maxConnections: explicit };
}

/** Descriptors this process has open, from /proc/self/fd (Infinity when not even one more can be opened); undefined where it cannot be read. */
export function openDescriptors(): number | undefined {
  try {
    // The listing's own descriptor is in it.
    return readdirSync('/proc/self/fd').length - 1;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'EMFILE' || code === 'ENFILE' ? Infinity : undefined;
  }
}
