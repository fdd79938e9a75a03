import * as assert from 'assert';
import { caseClash } from '../../server/storage/case-folding';

describe('storage: names a case-insensitive file system would merge', () => {
  it('finds names and folders that differ only in case', () => {
    assert.strictEqual(caseClash('notes.md', 'Notes.md'), 'Notes.md');
    assert.strictEqual(caseClash('docs/b.txt', 'Docs/a.txt'), 'Docs');
    assert.strictEqual(caseClash('a/B/c', 'a/b/d'), 'a/b');
  });

  it('leaves distinct names alone, and a name alone with itself', () => {
    assert.strictEqual(caseClash('notes.md', 'notes.md'), undefined);
    assert.strictEqual(caseClash('docs/a.txt', 'docs/b.txt'), undefined);
    assert.strictEqual(caseClash('docs', 'docs/a.txt'), undefined);
    assert.strictEqual(caseClash('x/Y', 'z/y'), undefined);
  });
});
