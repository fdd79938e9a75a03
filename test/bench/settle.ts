import { execFile } from 'child_process';

/**
 * Flushes every dirty page before a timed step, so no measurement pays for the
 * write-back (or the unlinks) of the one before it.
 */
export function settleDisk(): Promise<void> {
  return new Promise((resolve) => execFile('sync', () => setTimeout(resolve, 200)));
}
