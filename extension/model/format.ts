const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** Binary multiples, as file managers show them; one decimal below 10 so small changes stay visible. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) {
    return `${bytes} B`;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${UNITS[unit]}`;
}

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
  return `${count} ${unit}${count === 1 ? '' : 's'} ago`;
}
