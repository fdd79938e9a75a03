import { counted } from '../../server/protocol/words';

/** One formatting of sizes for the CLI and the editor: binary multiples with IEC names (KiB, MiB, GiB). */
export { formatBytes } from '../../server/protocol/bytes';
export { counted };

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** How long ago, in the coarsest unit that is still honest; a clock skewed into the future reads "just now". */
export function formatAge(thenMs: number, nowMs: number): string {
  const elapsed = nowMs - thenMs;
  if (elapsed < MINUTE) {
    return 'just now';
  }
  if (elapsed < HOUR) {
    return plural(Math.floor(elapsed / MINUTE), 'minute');
  }
  if (elapsed < DAY) {
    return plural(Math.floor(elapsed / HOUR), 'hour');
  }
  if (elapsed < 30 * DAY) {
    return plural(Math.floor(elapsed / DAY), 'day');
  }
  if (elapsed < 365 * DAY) {
    return plural(Math.floor(elapsed / (30 * DAY)), 'month');
  }
  return plural(Math.floor(elapsed / (365 * DAY)), 'year');
}

function plural(count: number, unit: string): string {
  return `${counted(count, unit)} ago`;
}
