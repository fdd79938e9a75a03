import { DfsError } from './errors';
import { Reply, isFailureToken, parseReply, replyError, verbOf } from './messages';

/**
 * Our record listings (FILES, CLIENTS, VERSIONS, INVENTORY): `OK [header]`, one JSON
 * object per line, then `END <count>`. The count makes a listing cut short by a
 * dropped connection an error instead of a shorter list, which catch-up would read as
 * files to delete.
 */
export function encodeListing(records: readonly unknown[], header?: unknown): string {
  const head = header === undefined ? Reply.OK : `${Reply.OK} ${JSON.stringify(header)}`;
  const body = records.map((record) => JSON.stringify(record) + '\n').join('');
  return `${head}\n${body}${Reply.END} ${records.length}\n`;
}

export interface Listing<T, H> {
  header: H | undefined;
  records: T[];
}

/** Parses a whole listing, refusing one without its END line or with the wrong count. */
export function decodeListing<T, H = undefined>(text: string): Listing<T, H> {
  const lines = text.split('\n');
  if (lines.at(-1) === '') {
    lines.pop();
  }
  const first = lines.shift() ?? '';
  if (isFailureToken(verbOf(first))) {
    throw replyError(parseReply(first));
  }
  if (first !== Reply.OK && !first.startsWith(`${Reply.OK} `)) {
    throw new DfsError('PROTOCOL', `expected a listing, got ${JSON.stringify(first.slice(0, 80))}`);
  }
  const last = lines.pop();
  const end = last === undefined ? undefined : /^END (\d+)$/.exec(last);
  if (!end) {
    throw new DfsError('PROTOCOL', 'the listing was cut short (no END line); try again');
  }
  if (Number(end[1]) !== lines.length) {
    throw new DfsError('PROTOCOL', `the listing announced ${end[1]} records but held ${lines.length}; try again`);
  }
  const records = lines.map((line) => {
    try {
      return JSON.parse(line) as T;
    } catch {
      throw new DfsError('PROTOCOL', `a listing line is not JSON: ${JSON.stringify(line.slice(0, 80))}`);
    }
  });
  const header = first.length > Reply.OK.length ? (JSON.parse(first.slice(Reply.OK.length + 1)) as H) : undefined;
  return { header, records };
}
