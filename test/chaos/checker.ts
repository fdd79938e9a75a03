import { DeleteOp, History, Operation, ReadOp, WriteOp, byName } from './history';

/**
 * Judges a whole history, name by name (each name is an independent register, which is
 * what keeps this fast: the Knossos / porcupine idea without their search, because
 * generations give the order in which the cluster applied the writes).
 *
 * What it holds the cluster to:
 * - a read returns a version some write could have produced by then: an acknowledged
 *   write with that generation and those bytes, or a write of unknown outcome with
 *   those bytes that had started before the read ended;
 * - a write that failed is never seen;
 * - no read is older than the newest acknowledged write or delete (or completed read)
 *   that ended before it started, so an acknowledged delete is never undone and an
 *   acknowledged version never rolled back;
 * - a read finds the name absent only if some delete could have been the last change;
 * - a conditional write that was acknowledged had its condition true when it applied;
 * - no generation is given to two changes, and one generation never has two contents.
 */

export type ViolationKind =
  | 'unknown-version'
  | 'failed-write-seen'
  | 'stale-read'
  | 'absent-without-delete'
  | 'precondition-broken'
  | 'generation-reused'
  | 'content-mismatch';

export interface Violation {
  kind: ViolationKind;
  name: string;
  /** The operation that shows it. */
  op: Operation;
  message: string;
}

/** A change the cluster applied, as far as the history tells: its generation and what it left. */
interface Change {
  generation: number;
  op: WriteOp | DeleteOp;
  /** For a write, the content it made current; undefined for a delete. */
  sha256?: string;
}

function describeVersion(generation: number, sha256: string): string {
  return `generation ${generation} (sha ${sha256.slice(0, 8)})`;
}

/**
 * Generations the reads reveal for writes of unknown outcome: a read of bytes only one
 * such write sent tells that it took effect, and with which generation: returned by
 * the write's id.
 */
function revealUnknownWrites(ops: Operation[], writesOf: (sha256: string) => WriteOp[]): Map<number, number> {
  const revealed = new Map<number, number>();
  for (const read of ops) {
    if (read.kind !== 'read' || read.outcome !== 'ok' || !read.found) {
      continue;
    }
    const { generation, sha256 } = read.found;
    const candidates = writesOf(sha256).filter((write) => write.sha256 === sha256 && write.outcome !== 'failed' && write.start < read.end && (write.generation === undefined || write.generation === generation));
    if (candidates.length === 1 && candidates[0].generation === undefined && candidates[0].outcome === 'unknown') {
      revealed.set(candidates[0].id, generation);
    }
  }
  return revealed;
}

/** The changes of one name the history proves, in generation order. */
function knownChanges(ops: Operation[], revealed: Map<number, number>): Change[] {
  const changes: Change[] = [];
  for (const op of ops) {
    if (op.kind === 'write') {
      const generation = op.outcome === 'ok' ? op.generation : revealed.get(op.id);
      if (generation !== undefined) {
        changes.push({ generation, op, sha256: op.sha256 });
      }
    } else if (op.kind === 'delete' && op.outcome === 'ok' && op.generation !== undefined) {
      changes.push({ generation: op.generation, op });
    }
  }
  return changes.sort((a, b) => a.generation - b.generation);
}

/** How many of `sorted` (ascending by `key`) have a key below `time`. */
function countBefore<T>(sorted: T[], key: (item: T) => number, time: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (key(sorted[middle]) < time) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  return low;
}

/** Every violation in the operations on one name. */
export function checkName(name: string, ops: Operation[]): Violation[] {
  const violations: Violation[] = [];
  const found = (kind: ViolationKind, op: Operation, message: string): void => {
    violations.push({ kind, name, op, message });
  };
  const writes = ops.filter((op): op is WriteOp => op.kind === 'write');
  const bySha = new Map<string, WriteOp[]>();
  for (const write of writes) {
    bySha.set(write.sha256, [...(bySha.get(write.sha256) ?? []), write]);
  }
  const writesOf = (sha256: string): WriteOp[] => bySha.get(sha256) ?? [];
  const revealed = revealUnknownWrites(ops, writesOf);
  const changes = knownChanges(ops, revealed);
  const deletes = ops.filter((op): op is DeleteOp => op.kind === 'delete');
  const reads = ops.filter((op): op is ReadOp => op.kind === 'read' && op.outcome === 'ok');

  // One generation, one content: whatever reported or revealed it.
  const contentOf = new Map<number, { sha256?: string; op: Operation }>();
  const mismatched = new Set<number>();
  const claim = (generation: number, sha256: string | undefined, op: Operation): void => {
    const earlier = contentOf.get(generation);
    if (!earlier) {
      contentOf.set(generation, { sha256, op });
    } else if (earlier.sha256 !== sha256 && !mismatched.has(generation)) {
      mismatched.add(generation);
      found('content-mismatch', op, `generation ${generation} is ${sha256 ? `sha ${sha256.slice(0, 8)}` : 'a delete'} here, but ${earlier.sha256 ? `sha ${earlier.sha256.slice(0, 8)}` : 'a delete'} in #${earlier.op.id}`);
    }
  };
  for (const change of changes) {
    claim(change.generation, change.sha256, change.op);
  }
  for (const read of reads) {
    if (read.found) {
      claim(read.found.generation, read.found.sha256, read);
    }
  }

  // For each read, the newest thing known to have happened entirely before it began:
  // a prefix maximum over everything that ended, ordered by when it ended.
  const ended = [
    ...changes.filter((change) => change.op.outcome === 'ok').map((change) => ({ end: change.op.end, generation: change.generation, live: change.op.kind === 'write', op: change.op as Operation })),
    ...reads.filter((read) => read.found).map((read) => ({ end: read.end, generation: read.found!.generation, live: true, op: read as Operation })),
  ].sort((a, b) => a.end - b.end);
  const newest: (typeof ended)[number][] = [];
  for (const item of ended) {
    const previous = newest[newest.length - 1];
    newest.push(!previous || item.generation > previous.generation ? item : previous);
  }
  const floorBefore = (time: number): (typeof ended)[number] | undefined => {
    const count = countBefore(ended, (item) => item.end, time);
    return count === 0 ? undefined : newest[count - 1];
  };

  // The newest generation a delete that started before a given time could have had
  // (a delete of unknown outcome, Infinity): a prefix maximum ordered by start.
  const possibleDeletes = deletes.filter((del) => del.outcome !== 'failed').sort((a, b) => a.start - b.start);
  const newestDelete: number[] = [];
  for (const del of possibleDeletes) {
    newestDelete.push(Math.max(newestDelete[newestDelete.length - 1] ?? -Infinity, del.generation ?? Infinity));
  }
  const newestDeleteStartedBefore = (time: number): number => {
    const count = countBefore(possibleDeletes, (del) => del.start, time);
    return count === 0 ? -Infinity : newestDelete[count - 1];
  };

  for (const read of reads) {
    if (read.found) {
      const { generation, sha256 } = read.found;
      const failedWrite = writesOf(sha256).find((write) => write.outcome === 'failed' && write.how !== 'restore');
      if (failedWrite) {
        found('failed-write-seen', read, `read ${describeVersion(generation, sha256)}, the bytes of #${failedWrite.id}, which failed`);
        continue;
      }
      const possible = writesOf(sha256).some(
        (write) => write.outcome !== 'failed' && write.start < read.end && (write.generation ?? revealed.get(write.id) ?? generation) === generation,
      );
      if (!possible) {
        found('unknown-version', read, `read ${describeVersion(generation, sha256)}, which no write that had started could have produced`);
        continue;
      }
    }
    const floor = floorBefore(read.start);
    if (read.found) {
      if (floor && read.found.generation < floor.generation) {
        found('stale-read', read, `read generation ${read.found.generation}, older than generation ${floor.generation}, which #${floor.op.id} had already made current before the read began`);
      }
    } else if (read.absent && floor?.live) {
      const couldDelete = newestDeleteStartedBefore(read.end) > floor.generation;
      if (!couldDelete) {
        found('absent-without-delete', read, `found nothing, but generation ${floor.generation} (#${floor.op.id}) was current before the read began and no delete could have followed it`);
      }
    }
  }

  for (const write of writes) {
    if (write.outcome !== 'ok' || write.generation === undefined || (write.how !== 'upload-if-generation' && write.how !== 'upload-if-absent')) {
      continue;
    }
    const before = changes.filter((change) => change.generation < write.generation!);
    if (write.how === 'upload-if-generation') {
      const between = before.find((change) => change.generation > write.basis!);
      if (between) {
        found('precondition-broken', write, `required generation ${write.basis} and became ${write.generation}, but #${between.op.id} (generation ${between.generation}) came in between`);
      }
    } else {
      const previous = before[before.length - 1];
      // A delete whose outcome is unknown (its generation too) may be what came in between.
      const deletedBetween =
        previous &&
        deletes.some(
          (del) => del.outcome !== 'failed' && del.start < write.end && (del.generation === undefined || (del.generation > previous.generation && del.generation < write.generation!)),
        );
      if (previous && previous.op.kind === 'write' && !deletedBetween) {
        found('precondition-broken', write, `required the name absent and became ${write.generation}, but #${previous.op.id} (generation ${previous.generation}) was current before it`);
      }
    }
  }
  return violations;
}

/** No generation given to changes of two names. */
function checkGenerationsUnique(history: History): Violation[] {
  const owner = new Map<number, Operation>();
  const violations: Violation[] = [];
  for (const op of history) {
    const generation = op.kind === 'read' ? undefined : op.outcome === 'ok' ? op.generation : undefined;
    if (generation === undefined) {
      continue;
    }
    const other = owner.get(generation);
    if (other && other.name !== op.name) {
      violations.push({ kind: 'generation-reused', name: op.name, op, message: `generation ${generation} was also given to #${other.id} (${other.name})` });
    } else {
      owner.set(generation, op);
    }
  }
  return violations;
}

export interface Verdict {
  operations: number;
  names: number;
  violations: Violation[];
}

export function checkHistory(history: History): Verdict {
  const names = byName(history);
  const violations = [...checkGenerationsUnique(history)];
  for (const [name, ops] of names) {
    violations.push(...checkName(name, ops));
  }
  return { operations: history.length, names: names.size, violations };
}

/**
 * The shortest history of one name that still shows `violation` (the same kind, on the
 * same operation), found by removing ever smaller chunks of operations (ddmin).
 */
export function shrink(history: History, violation: Violation): Operation[] {
  const still = (ops: Operation[]): boolean =>
    checkName(violation.name, ops).some((found) => found.kind === violation.kind && found.op.id === violation.op.id);
  let ops = history.filter((op) => op.name === violation.name);
  if (!still(ops)) {
    return ops;
  }
  let chunk = Math.max(1, Math.floor(ops.length / 2));
  for (;;) {
    let removedAny = false;
    for (let start = 0; start < ops.length; ) {
      const candidate = ops.filter((op, index) => op.id === violation.op.id || index < start || index >= start + chunk);
      if (candidate.length < ops.length && still(candidate)) {
        ops = candidate;
        removedAny = true;
      } else {
        start += chunk;
      }
    }
    if (chunk === 1 && !removedAny) {
      return ops;
    }
    if (!removedAny) {
      chunk = Math.max(1, Math.floor(chunk / 2));
    }
  }
}

/** What one node holds of each name at the end: its current generation and bytes, or nothing. */
export type NodeContents = Map<string, { generation: number; sha256: string }>;

/** Every node holds the same generation and bytes of every name. */
export function checkConvergence(nodes: Map<string, NodeContents>): string[] {
  const problems: string[] = [];
  const entries = [...nodes];
  if (entries.length === 0) {
    return problems;
  }
  const [referenceName, reference] = entries[0];
  const names = new Set(entries.flatMap(([, contents]) => [...contents.keys()]));
  for (const name of [...names].sort()) {
    const expected = reference.get(name);
    for (const [node, contents] of entries.slice(1)) {
      const got = contents.get(name);
      if (got?.generation !== expected?.generation || got?.sha256 !== expected?.sha256) {
        const show = (version: { generation: number; sha256: string } | undefined): string => (version ? describeVersion(version.generation, version.sha256) : 'nothing');
        problems.push(`${name}: ${referenceName} holds ${show(expected)}, ${node} holds ${show(got)}`);
      }
    }
  }
  return problems;
}
