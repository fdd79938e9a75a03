import * as assert from 'assert';
import fc from 'fast-check';
import type { VersionRecord } from '../../server/protocol';
import { NameState, applyRecord, currentOf, mergeStates, sameState } from '../../server/storage/name-state';

const put = (generation: number, sha = 'a'): VersionRecord => ({ clientId: 'c', name: 'n', generation, size: 1, sha256: sha.repeat(64), mtimeMs: generation });
const del = (generation: number): VersionRecord => ({ clientId: 'c', name: 'n', generation, size: 0, sha256: '', mtimeMs: generation, deleted: true });

function applyAll(records: readonly VersionRecord[], keep: number): NameState {
  let state: NameState | undefined;
  for (const record of records) {
    state = applyRecord(state, record, keep).state;
  }
  return state ?? { versions: [] };
}

/** Records with distinct generations: what one cluster's primaries ever issue for a name. */
const histories = fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 12 }).chain((generations) =>
  fc.tuple(...generations.map((generation) => fc.boolean().map((deleted) => (deleted ? del(generation) : put(generation, String.fromCharCode(97 + (generation % 20))))))),
);

describe('name state: the generation rules', () => {
  it('the highest generation is the state, whatever order records arrive in (property)', () => {
    fc.assert(
      fc.property(histories, fc.integer({ min: 0, max: 4 }), fc.infiniteStream(fc.nat()), (records, keep, seeds) => {
        const shuffled = [...records].sort(() => (seeds.next().value % 3) - 1);
        const inOrder = applyAll([...records].sort((a, b) => a.generation - b.generation), keep);
        const anyOrder = applyAll(shuffled, keep);
        const newest = records.reduce((latest, record) => (record.generation > latest.generation ? record : latest));
        assert.strictEqual(currentOf(anyOrder)?.generation, newest.generation);
        assert.ok(sameState(inOrder, anyOrder), `${JSON.stringify(inOrder)} vs ${JSON.stringify(anyOrder)}`);
        assert.ok(anyOrder.versions.length <= keep + 1);
      }),
      { numRuns: 300 },
    );
  });

  it('a delete removes every version at or below it, history included', () => {
    const state = applyAll([put(1), put(2), del(3)], 5);
    assert.deepStrictEqual(state.versions, []);
    assert.strictEqual(currentOf(state)?.deleted, true);
    assert.strictEqual(applyRecord(state, put(2, 'z'), 5).outcome, 'stale', 'an older copy cannot come back');
    const reborn = applyRecord(state, put(4), 5).state;
    assert.deepStrictEqual(reborn.versions.map((version) => version.generation), [4]);
  });

  it('merging is symmetric and keeps the newest state of either side (property)', () => {
    fc.assert(
      fc.property(histories, fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }), fc.integer({ min: 0, max: 4 }), (records, sides, keep) => {
        const a = applyAll(records.filter((_, index) => sides[index]), keep);
        const b = applyAll(records.filter((_, index) => !sides[index]), keep);
        const ab = mergeStates({ state: a, completeThrough: -1 }, { state: b, completeThrough: -1 }, keep, 0);
        const ba = mergeStates({ state: b, completeThrough: -1 }, { state: a, completeThrough: -1 }, keep, 0);
        assert.ok(sameState(ab, ba));
        const newest = records.reduce((latest, record) => (record.generation > latest.generation ? record : latest));
        assert.strictEqual(currentOf(ab)?.generation, newest.generation);
      }),
      { numRuns: 300 },
    );
  });

  it('a version one side lacks, at or below what that side is complete through, is dead', () => {
    // The replica is complete through 10 and holds nothing of the name: the name was
    // deleted and its tombstone dropped. The primary's restored disk still has version 4.
    const merged = mergeStates({ state: applyAll([put(4)], 5), completeThrough: 4 }, { state: undefined, completeThrough: 10 }, 5, 99);
    assert.deepStrictEqual(merged.versions, []);
    assert.strictEqual(merged.tombstone?.generation, 4);
    // Above its completeness the side knows nothing: version 12 survives.
    const newer = mergeStates({ state: applyAll([put(12)], 5), completeThrough: 12 }, { state: undefined, completeThrough: 10 }, 5, 99);
    assert.deepStrictEqual(newer.versions.map((version) => version.generation), [12]);
  });
});
