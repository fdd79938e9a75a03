/**
 * A history of operations on named registers, as the chaos clients record it: each
 * operation with when it started and ended (one clock, milliseconds) and what came of
 * it. Pure data, so the checker can be tested with histories written by hand.
 */

/** ok: the server acknowledged it; failed: it certainly had no effect; unknown: either. */
export type Outcome = 'ok' | 'failed' | 'unknown';

interface Base {
  /** Unique in the history: the order operations were issued in. */
  id: number;
  /** Which chaos client issued it (a client runs one operation at a time). */
  client: number;
  name: string;
  start: number;
  end: number;
  outcome: Outcome;
  /** The failure's code and reason, for the report. */
  error?: string;
}

/**
 * An upload, an overwrite, a conditional upload or a restore: it makes `sha256` the
 * name's content. Every upload sends bytes no other write sends, so a read's checksum
 * tells which upload it saw; a restore sends the bytes of an earlier version again.
 */
export interface WriteOp extends Base {
  kind: 'write';
  how: 'upload' | 'upload-if-generation' | 'upload-if-absent' | 'restore';
  sha256: string;
  /** upload-if-generation: the generation it required; restore: the generation it restored. */
  basis?: number;
  /** The generation the server gave it, when acknowledged (or learned from a later read). */
  generation?: number;
}

export interface DeleteOp extends Base {
  kind: 'delete';
  generation?: number;
}

/** A download of the current version: what it returned, or that the name had none. */
export interface ReadOp extends Base {
  kind: 'read';
  /** Set when the read succeeded: the version it returned. */
  found?: { generation: number; sha256: string };
  /** The read succeeded and the name had no current version (NOT_FOUND). */
  absent?: boolean;
}

export type Operation = WriteOp | DeleteOp | ReadOp;

export type History = Operation[];

/** The operations on one name, in the order they were issued. */
export function byName(history: History): Map<string, History> {
  const names = new Map<string, History>();
  for (const op of history) {
    let ops = names.get(op.name);
    if (!ops) {
      ops = [];
      names.set(op.name, ops);
    }
    ops.push(op);
  }
  return names;
}

/** One line per operation, for a failure report. */
export function describe(op: Operation): string {
  const timing = `[${op.start}..${op.end}] c${op.client} #${op.id}`;
  const outcome = op.outcome === 'ok' ? 'ok' : `${op.outcome}${op.error ? ` (${op.error.slice(0, 160)})` : ''}`;
  switch (op.kind) {
    case 'write':
      return `${timing} ${op.how}${op.basis !== undefined ? ` ${op.basis}` : ''} ${op.name} sha ${op.sha256.slice(0, 8)} -> ${outcome}${op.generation !== undefined ? ` gen ${op.generation}` : ''}`;
    case 'delete':
      return `${timing} delete ${op.name} -> ${outcome}${op.generation !== undefined ? ` gen ${op.generation}` : ''}`;
    case 'read':
      return `${timing} read ${op.name} -> ${op.outcome !== 'ok' ? outcome : op.absent ? 'absent' : `gen ${op.found!.generation} sha ${op.found!.sha256.slice(0, 8)}`}`;
  }
}
