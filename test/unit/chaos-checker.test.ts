import * as assert from 'assert';
import { checkConvergence, checkHistory, shrink } from '../chaos/checker';
import { DeleteOp, History, Operation, ReadOp, WriteOp } from '../chaos/history';

/** Hand-written histories: each rule of the chaos checker catches what it must, and only that. */

let nextId = 0;
function write(start: number, end: number, sha256: string, outcome: WriteOp['outcome'], generation?: number, extra: Partial<WriteOp> = {}): WriteOp {
  return { id: nextId++, client: 0, name: 'n', kind: 'write', how: 'upload', start, end, sha256, outcome, generation, ...extra };
}
function del(start: number, end: number, outcome: DeleteOp['outcome'], generation?: number): DeleteOp {
  return { id: nextId++, client: 1, name: 'n', kind: 'delete', start, end, outcome, generation };
}
function read(start: number, end: number, found?: { generation: number; sha256: string }): ReadOp {
  return { id: nextId++, client: 2, name: 'n', kind: 'read', start, end, outcome: 'ok', found, absent: found === undefined };
}
function kinds(history: History): string[] {
  return checkHistory(history).violations.map((violation) => violation.kind);
}

describe('chaos checker', () => {
  it('accepts a history a correct register produces, overlaps and unknown outcomes included', () => {
    const history: Operation[] = [
      write(0, 10, 'aa', 'ok', 1),
      read(11, 12, { generation: 1, sha256: 'aa' }),
      // Concurrent with the write of bb: either answer is right.
      write(20, 30, 'bb', 'ok', 3),
      read(21, 25, { generation: 1, sha256: 'aa' }),
      read(22, 26, { generation: 3, sha256: 'bb' }),
      // Its reply was lost, but a read shows it took effect.
      write(40, 50, 'cc', 'unknown'),
      read(60, 61, { generation: 5, sha256: 'cc' }),
      del(70, 80, 'ok', 7),
      read(81, 82),
      write(90, 95, 'dd', 'failed'),
      read(96, 97),
      write(100, 110, 'ee', 'ok', 9, { how: 'upload-if-absent' }),
      write(120, 130, 'ff', 'ok', 11, { how: 'upload-if-generation', basis: 9 }),
      read(131, 132, { generation: 11, sha256: 'ff' }),
    ];
    assert.deepStrictEqual(kinds(history), []);
  });

  it('catches a read older than an acknowledged write that ended before it began', () => {
    assert.deepStrictEqual(kinds([write(0, 10, 'aa', 'ok', 1), write(20, 30, 'bb', 'ok', 2), read(31, 32, { generation: 1, sha256: 'aa' })]), ['stale-read']);
  });

  it('catches a read older than one that completed before it', () => {
    const history = [write(0, 10, 'aa', 'ok', 1), write(20, 50, 'bb', 'ok', 2), read(21, 22, { generation: 2, sha256: 'bb' }), read(23, 24, { generation: 1, sha256: 'aa' })];
    assert.deepStrictEqual(kinds(history), ['stale-read']);
  });

  it('catches an acknowledged delete undone', () => {
    assert.deepStrictEqual(kinds([write(0, 10, 'aa', 'ok', 1), del(20, 30, 'ok', 2), read(31, 32, { generation: 1, sha256: 'aa' })]), ['stale-read']);
  });

  it('catches a name found absent with no delete that could explain it', () => {
    assert.deepStrictEqual(kinds([write(0, 10, 'aa', 'ok', 1), del(20, 30, 'failed'), read(31, 32)]), ['absent-without-delete']);
    assert.deepStrictEqual(kinds([write(0, 10, 'aa', 'ok', 1), del(20, 30, 'unknown'), read(31, 32)]), []);
  });

  it('catches the bytes of a failed write being served', () => {
    assert.deepStrictEqual(kinds([write(0, 10, 'aa', 'failed'), read(11, 12, { generation: 4, sha256: 'aa' })]), ['failed-write-seen']);
  });

  it('catches a version no write could have produced, or produced before it started', () => {
    assert.deepStrictEqual(kinds([write(0, 10, 'aa', 'ok', 1), read(11, 12, { generation: 2, sha256: 'zz' })]), ['unknown-version']);
    assert.deepStrictEqual(kinds([read(0, 5, { generation: 1, sha256: 'aa' }), write(10, 20, 'aa', 'ok', 1)]), ['unknown-version']);
    // Right bytes, wrong generation for an acknowledged write.
    assert.deepStrictEqual(kinds([write(0, 10, 'aa', 'ok', 1), read(11, 12, { generation: 2, sha256: 'aa' })]), ['unknown-version']);
  });

  it('catches one generation with two contents, and one generation given to two names', () => {
    assert.deepStrictEqual(kinds([write(0, 10, 'aa', 'ok', 1), write(20, 30, 'bb', 'unknown'), read(31, 32, { generation: 1, sha256: 'bb' })]), ['content-mismatch']);
    const other: WriteOp = { ...write(0, 10, 'bb', 'ok', 1), name: 'm' };
    assert.deepStrictEqual(kinds([write(0, 10, 'aa', 'ok', 1), other]), ['generation-reused']);
  });

  it('catches an acknowledged conditional write whose condition was false', () => {
    const ifGeneration = [write(0, 10, 'aa', 'ok', 1), write(20, 30, 'bb', 'ok', 2), write(25, 40, 'cc', 'ok', 3, { how: 'upload-if-generation', basis: 1 })];
    assert.deepStrictEqual(kinds(ifGeneration), ['precondition-broken']);
    const ifAbsent = [write(0, 10, 'aa', 'ok', 1), write(20, 30, 'bb', 'ok', 2, { how: 'upload-if-absent' })];
    assert.deepStrictEqual(kinds(ifAbsent), ['precondition-broken']);
    // A delete of unknown outcome in between may have made it absent (the soak found this false alarm).
    assert.deepStrictEqual(kinds([write(0, 10, 'aa', 'ok', 1), del(11, 15, 'unknown'), write(20, 30, 'bb', 'ok', 3, { how: 'upload-if-absent' })]), []);
    assert.deepStrictEqual(kinds([write(0, 10, 'aa', 'ok', 1), del(11, 15, 'failed'), write(20, 30, 'bb', 'ok', 3, { how: 'upload-if-absent' })]), ['precondition-broken']);
  });

  it('shrinks a failing history to the operations that show the violation', () => {
    const noise: Operation[] = [];
    for (let index = 0; index < 40; index++) {
      noise.push(read(1 + index * 0.01, 1.005 + index * 0.01, { generation: 1, sha256: 'aa' }));
    }
    const history = [write(0, 1, 'aa', 'ok', 1), ...noise, write(2, 3, 'bb', 'ok', 2), read(4, 5, { generation: 1, sha256: 'aa' })];
    const verdict = checkHistory(history);
    assert.strictEqual(verdict.violations.length, 1);
    const shortest = shrink(history, verdict.violations[0]);
    assert.deepStrictEqual(
      shortest.map((op) => op.id),
      [history[0].id, history[41].id, history[42].id],
      'both writes and the stale read are enough (without the first write, the read would be of an unknown version instead)',
    );
  });

  it('reports every node that differs at the end', () => {
    const same = new Map([['n', { generation: 3, sha256: 'aa' }]]);
    assert.deepStrictEqual(checkConvergence(new Map([['primary', same], ['replica 1', new Map(same)]])), []);
    const problems = checkConvergence(new Map([['primary', same], ['replica 1', new Map([['n', { generation: 2, sha256: 'bb' }]])], ['replica 2', new Map()]]));
    assert.strictEqual(problems.length, 2);
    assert.match(problems[0], /replica 1 holds generation 2/);
    assert.match(problems[1], /replica 2 holds nothing/);
  });
});
