import * as assert from 'assert';
import { COMPARE, OVERWRITE, SAVE_ANYWAY, SaveContext, conflictPrompt, decideSave, notSavedMessage, resolveConflict, vscodeSeesNewer } from '../../extension/model/save-conflict';

const v = (generation: number, mtimeMs: number, size: number) => ({ generation, mtimeMs, size });
const save = (context: Partial<SaveContext>) => decideSave({ create: true, overwrite: true, ...context });
const onGeneration = (generation: number) => ({ kind: 'upload', precondition: { kind: 'generation', generation } });

describe('save conflicts: the precondition a save is sent with, and the choices when it fails', () => {
  it("VS Code's own check flags a later time with another size only", () => {
    assert.strictEqual(vscodeSeesNewer(v(1, 100, 5), v(2, 200, 6)), true);
    assert.strictEqual(vscodeSeesNewer(v(1, 100, 5), v(2, 200, 5)), false, 'same size: VS Code does not notice');
    assert.strictEqual(vscodeSeesNewer(v(1, 100, 5), v(2, 50, 6)), false, 'an earlier time (another primary\'s clock): VS Code does not notice');
  });

  it('saves an unchanged file on the generation it was opened at', () => {
    assert.deepStrictEqual(save({ opened: v(4, 100, 5), statted: v(4, 100, 5) }), onGeneration(4));
    assert.deepStrictEqual(save({ opened: v(4, 100, 5) }), onGeneration(4), 'no stat before the write: still the opened generation');
  });

  it('a change VS Code did not notice is sent on the opened generation, so the primary refuses it', () => {
    assert.deepStrictEqual(save({ opened: v(4, 100, 5), statted: v(9, 200, 5) }), onGeneration(4));
  });

  it("a change VS Code showed as newer and the user overwrote anyway is sent on exactly that generation", () => {
    assert.deepStrictEqual(save({ opened: v(4, 100, 5), statted: v(9, 200, 7) }), onGeneration(9));
  });

  it('after Compare, the next save may replace the generation compared with, and no other', () => {
    assert.deepStrictEqual(save({ opened: v(4, 100, 5), statted: v(9, 200, 5), compared: 9 }), onGeneration(9));
    assert.deepStrictEqual(save({ opened: v(4, 100, 5), statted: v(10, 300, 5), compared: 9 }), onGeneration(4), 'changed again since the compare');
  });

  it('a new file is sent on "absent", and a name that exists is refused or overwritten as VS Code asked', () => {
    assert.deepStrictEqual(save({ statted: 'absent' }), { kind: 'upload', precondition: { kind: 'absent' } });
    assert.deepStrictEqual(save({}), { kind: 'upload', precondition: { kind: 'absent' } });
    assert.deepStrictEqual(save({ statted: v(3, 1, 1), overwrite: false }), { kind: 'refuse', reason: 'exists' });
    assert.deepStrictEqual(save({ statted: v(3, 1, 1) }), onGeneration(3), 'Save As over an existing name VS Code confirmed');
    assert.deepStrictEqual(save({ statted: 'absent', create: false }), { kind: 'refuse', reason: 'not-found' });
  });

  it('a file deleted after it was opened is sent on the opened generation: the primary refuses, the user decides', () => {
    assert.deepStrictEqual(save({ opened: v(4, 100, 5), statted: 'absent' }), onGeneration(4));
  });

  it('offers Compare and Overwrite on a change, Save Anyway on a delete; Overwrite replaces only what the primary named', () => {
    const changed = conflictPrompt('alice/notes.md', 9, 4);
    assert.deepStrictEqual(changed.choices, [COMPARE, OVERWRITE]);
    assert.match(changed.message, /"alice\/notes.md" changed on DFS after you opened it: generation 9 is stored now, your editor holds generation 4/);
    assert.match(changed.detail, /Cancel keeps your changes in the editor, unsaved/);
    assert.deepStrictEqual(conflictPrompt('alice/notes.md', null, 4).choices, [SAVE_ANYWAY]);

    assert.deepStrictEqual(resolveConflict(OVERWRITE, 9), onGeneration(9));
    assert.deepStrictEqual(resolveConflict(COMPARE, 9), { kind: 'compare', generation: 9 });
    assert.deepStrictEqual(resolveConflict(undefined, 9), { kind: 'cancel' });
    assert.deepStrictEqual(resolveConflict(SAVE_ANYWAY, null), { kind: 'upload', precondition: { kind: 'absent' } });
    assert.deepStrictEqual(resolveConflict(undefined, null), { kind: 'cancel' });
  });

  it('says what to do after Compare or Cancel', () => {
    assert.match(notSavedMessage('a/n', { kind: 'compare', generation: 9 }, 9), /^not saved yet: the diff shows the stored generation 9 of a\/n \(left\) and yours \(right\)\. Save again/);
    assert.match(notSavedMessage('a/n', { kind: 'cancel' }, 9), /^not saved: a\/n changed on DFS \(now generation 9\) after you opened it\. Your changes are still in the editor/);
    assert.match(notSavedMessage('a/n', { kind: 'cancel' }, null), /a\/n was deleted on DFS after you opened it/);
  });
});
