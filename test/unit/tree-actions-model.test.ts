import * as assert from 'assert';
import { parseVersionQuery, versionQuery } from '../../extension/model/dfs-uri';
import { counted, formatBytes } from '../../extension/model/format';
import { checkNewName, copyName } from '../../extension/model/name-input';
import { describeSelection, planSelection, selectedNodes } from '../../extension/model/selection-plan';
import { DfsNode, FileNode, FolderNode, buildClientNodes, buildFileTree, filterRecords, matchesFilter } from '../../extension/model/tree-model';
import { buildVersionList, versionActions } from '../../extension/model/version-list';
import { checkRenameTarget, renameSteps } from '../../extension/model/rename-plan';
import { encodeText, encodingOfSaved } from '../../extension/upload/buffer-encoding';
import type { FileRecord, VersionInfo } from '../../server/protocol';

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const record = (clientId: string, name: string, size = 10, generation = 1): FileRecord => ({ clientId, name, size, mtimeMs: NOW, sha256: 'cd'.repeat(32), generation, copies: 3 });
const version = (generation: number, current: boolean, size = 100, ageMs = 0): VersionInfo => ({ generation, current, size, mtimeMs: NOW - ageMs, sha256: `${generation}`.padStart(2, '0').repeat(32) });

describe('extension model: version list', () => {
  it('lists versions newest first whatever order they come in, the current one marked, with size in IEC units, age and a short checksum', () => {
    const list = buildVersionList('alice/a.txt', [version(3, false, 2048, 7_200_000), version(9, true, 1536), version(5, false, 1)], NOW);
    assert.deepStrictEqual(
      list.items.map((item) => item.generation),
      [9, 5, 3],
    );
    assert.deepStrictEqual(
      list.items.map((item) => item.label),
      ['$(circle-filled) Generation 9 (current)', 'Generation 5', 'Generation 3'],
    );
    assert.strictEqual(list.items[0].description, `1.5 KiB · just now · ${'09'.repeat(6)}`);
    assert.strictEqual(list.items[2].description, `2.0 KiB · 2 hours ago · ${'03'.repeat(6)}`);
    assert.match(list.items[2].detail, /^Stored 2026-12-01 10:00:00 UTC · 2,048 bytes · SHA-256 (03){32}$/);
    assert.strictEqual(list.title, 'alice/a.txt: generation 9 is current; 2 older versions kept');
    assert.strictEqual(list.deleted, false);
  });

  it('says "1 older version" and "0 older versions" in the right number', () => {
    assert.match(buildVersionList('f', [version(2, true), version(1, false)], NOW).title, /; 1 older version kept$/);
    assert.match(buildVersionList('f', [version(2, true)], NOW).title, /; 0 older versions kept$/);
  });

  it('an empty list is a deleted file, and a list without a current version calls none current', () => {
    const gone = buildVersionList('alice/gone.txt', [], NOW);
    assert.strictEqual(gone.deleted, true);
    assert.deepStrictEqual(gone.items, []);
    assert.match(gone.title, /no versions are kept \(deleted, or never stored\)/);
    const orphaned = buildVersionList('alice/x', [version(4, false), version(2, false)], NOW);
    assert.strictEqual(orphaned.deleted, true);
    assert.ok(orphaned.items.every((item) => !item.current && !item.label.includes('current')));
    assert.strictEqual(orphaned.title, 'alice/x is deleted; 2 older versions still listed');
  });

  it('offers restore and compare-with-current only for an older version', () => {
    const [current, older] = buildVersionList('f', [version(2, true), version(1, false)], NOW).items;
    assert.deepStrictEqual(versionActions(current).map((action) => action.action), ['open', 'compareWithLocal']);
    assert.deepStrictEqual(versionActions(older).map((action) => action.action), ['open', 'compareWithCurrent', 'compareWithLocal', 'restore']);
    assert.match(versionActions(older).at(-1)!.description!, /generation 1's bytes current again, as a new version/);
  });

  it('names a kept version in a dfs: query and refuses a malformed one', () => {
    assert.strictEqual(versionQuery(12), 'generation=12');
    assert.strictEqual(parseVersionQuery('generation=12'), 12);
    assert.strictEqual(parseVersionQuery('x=1&generation=7'), 7);
    assert.strictEqual(parseVersionQuery(''), undefined);
    assert.throws(() => parseVersionQuery('generation=abc'), /expected a whole number/);
    assert.throws(() => parseVersionQuery('generation=0'), /expected a whole number/);
  });
});

describe('extension model: tree filter', () => {
  const files = ['docs/Report 2026.pdf', 'docs/notes.md', 'src/main.ts', 'src/report.ts', 'README.md'].map((name) => record('alice', name));

  it('matches every word in the path, ignoring case; * and ? are wildcards; regex characters are literal', () => {
    assert.ok(matchesFilter('docs/Report 2026.pdf', 'report'));
    assert.ok(matchesFilter('docs/Report 2026.pdf', 'DOCS pdf'));
    assert.ok(!matchesFilter('docs/Report 2026.pdf', 'docs ts'));
    assert.ok(matchesFilter('src/main.ts', 's*c/m?in'));
    assert.ok(!matchesFilter('src/main.ts', 'main.t.s'), 'a dot matches only a dot');
    assert.ok(matchesFilter('a(1).txt', 'a(1)'));
    assert.ok(matchesFilter('anything', '   '), 'an empty filter matches everything');
  });

  it('keeps the matching files with their folders and leaves empty folders out', () => {
    const shape = (nodes: (FolderNode | FileNode)[]): unknown[] => nodes.map((node) => (node.kind === 'folder' ? { [node.label]: shape(node.children) } : node.label));
    assert.deepStrictEqual(shape(buildFileTree('alice', filterRecords(files, 'report'), 4, NOW)), [{ docs: ['Report 2026.pdf'] }, { src: ['report.ts'] }]);
    assert.deepStrictEqual(shape(buildFileTree('alice', filterRecords(files, '.md'), 4, NOW)), [{ docs: ['notes.md'] }, 'README.md']);
    assert.strictEqual(filterRecords(files, '').length, files.length);
    assert.deepStrictEqual(filterRecords(files, 'nothing-like-it'), []);
    const [docs] = buildFileTree('alice', filterRecords(files, 'docs'), 4, NOW) as FolderNode[];
    assert.strictEqual(docs.description, '2 files, 20 B', 'a filtered folder describes what it shows');
  });
});

describe('extension model: multi-selection planning', () => {
  const alice = buildFileTree('alice', ['a.txt', 'docs/b.txt', 'docs/sub/c.bin', 'other/a.txt'].map((name, index) => record('alice', name, 100 * (index + 1), index + 1)), 4, NOW);
  const bob = buildFileTree('bob', [record('bob', 'a.txt', 7)], 4, NOW);
  const find = (nodes: (FolderNode | FileNode)[], id: string): FolderNode | FileNode => {
    for (const node of nodes) {
      if (node.id === id) return node;
      if (node.kind === 'folder') {
        try {
          return find(node.children, id);
        } catch {
          // not under this folder
        }
      }
    }
    throw new Error(`no node ${id}`);
  };

  it('a file is itself, a folder is every file below it kept under the folder\'s own name', () => {
    const plan = planSelection([find(alice, 'folder:alice/docs'), find(alice, 'file:alice/a.txt')]);
    assert.deepStrictEqual(
      plan.files.map((file) => [file.name, file.relativePath, file.generation]),
      [
        ['docs/sub/c.bin', 'docs/sub/c.bin', 3],
        ['docs/b.txt', 'docs/b.txt', 2],
        ['a.txt', 'a.txt', 1],
      ],
    );
    assert.strictEqual(plan.bytes, 600);
    assert.strictEqual(describeSelection(plan), '3 files (600 B)');
    assert.deepStrictEqual(plan.collisions, []);
    const sub = planSelection([find(alice, 'folder:alice/docs/sub')]);
    assert.deepStrictEqual(sub.files.map((file) => file.relativePath), ['sub/c.bin'], 'a nested folder keeps only its own name, not its parents');
    assert.strictEqual(describeSelection(sub), '1 file (300 B)');
  });

  it('counts a file or folder inside a selected folder once, and leaves client rows out', () => {
    const clients = buildClientNodes('alice', [{ clientId: 'alice', files: 4, bytes: 1000 }]);
    const plan = planSelection([find(alice, 'file:alice/docs/sub/c.bin'), find(alice, 'folder:alice/docs'), find(alice, 'folder:alice/docs/sub'), find(alice, 'folder:alice/docs'), clients[0]]);
    assert.deepStrictEqual(plan.files.map((file) => file.name), ['docs/sub/c.bin', 'docs/b.txt']);
  });

  it('reports two files that would land on the same local path; several clients each get a folder', () => {
    const clash = planSelection([find(alice, 'file:alice/a.txt'), find(alice, 'file:alice/other/a.txt')]);
    assert.deepStrictEqual(clash.collisions, [{ relativePath: 'a.txt', names: ['alice/a.txt', 'alice/other/a.txt'] }]);
    const across = planSelection([find(alice, 'file:alice/a.txt'), bob[0]]);
    assert.deepStrictEqual(across.files.map((file) => file.relativePath), ['alice/a.txt', 'bob/a.txt']);
    assert.deepStrictEqual(across.collisions, []);
  });

  it('takes the selection VS Code passes, the clicked row alone when it is outside it, or the focused selection for a key', () => {
    const a = find(alice, 'file:alice/a.txt') as DfsNode;
    const b = find(alice, 'file:alice/docs/b.txt') as DfsNode;
    const c = find(alice, 'folder:alice/docs') as DfsNode;
    assert.deepStrictEqual(selectedNodes(a, [a, b]), [a, b]);
    assert.deepStrictEqual(selectedNodes(c, [a, b]), [c], 'a right-click outside the selection acts on that row only');
    assert.deepStrictEqual(selectedNodes(a, undefined), [a]);
    assert.deepStrictEqual(selectedNodes(undefined, undefined, [b, c]), [b, c]);
    assert.deepStrictEqual(selectedNodes(undefined, undefined), []);
  });
});

describe('extension model: new names for copy and rename', () => {
  const stored = new Set(['notes.md', 'notes copy.md', 'docs/a.txt', 'report']);

  it('refuses the server\'s bad names, a stored name, a stored folder and a path through a stored file', () => {
    assert.strictEqual(checkNewName('fresh.md', 'notes.md', stored), undefined);
    assert.strictEqual(checkNewName('  new/place.md ', 'notes.md', stored), undefined, 'surrounding spaces are trimmed');
    assert.match(checkNewName('notes.md', 'notes.md', stored)!, /current name/);
    assert.match(checkNewName('notes copy.md', 'notes.md', stored)!, /already stored/);
    assert.match(checkNewName('docs', 'notes.md', stored)!, /is a folder \(it holds docs\/a.txt\)/);
    assert.match(checkNewName('report/x.txt', 'notes.md', stored)!, /"report" is a stored file/);
    assert.match(checkNewName('../up', 'notes.md', stored)!, /"\.\." folder/);
    assert.match(checkNewName('/abs', 'notes.md', stored)!, /starts with "\/"/);
    assert.match(checkNewName('a\\b', 'notes.md', stored)!, /backslash/);
    assert.match(checkNewName('', 'notes.md', stored)!, /empty/);
  });

  it('proposes "name copy.ext", then "name copy 2.ext", keeping folders and dotfiles whole', () => {
    assert.strictEqual(copyName('notes.md', stored), 'notes copy 2.md');
    assert.strictEqual(copyName('docs/a.txt', stored), 'docs/a copy.txt');
    assert.strictEqual(copyName('notes copy.md', stored), 'notes copy 2.md');
    assert.strictEqual(copyName('.bashrc', new Set()), '.bashrc copy');
    assert.strictEqual(copyName('Makefile', new Set()), 'Makefile copy');
  });
});

describe('extension model: units and plurals', () => {
  it('shows sizes in IEC units with one decimal', () => {
    assert.deepStrictEqual([0, 1, 1023, 1024, 1536, 1024 ** 2 * 3.25, 1024 ** 3, 1024 ** 4 * 2].map(formatBytes), ['0 B', '1 B', '1023 B', '1.0 KiB', '1.5 KiB', '3.3 MiB', '1.0 GiB', '2.0 TiB']);
  });

  it('puts the noun in the right number', () => {
    assert.deepStrictEqual([0, 1, 2].map((count) => counted(count, 'file')), ['0 files', '1 file', '2 files']);
    assert.strictEqual(counted(1, 'copy', 'copies'), '1 copy');
    assert.strictEqual(counted(3, 'copy', 'copies'), '3 copies');
    const [own] = buildClientNodes('me', [{ clientId: 'me', files: 1, bytes: 3 * 1024 * 1024 }]);
    assert.strictEqual(own.description, 'you · 1 file, 3.0 MiB');
  });
});

describe('Upload Buffer: the editor\'s text in its saved file\'s encoding', () => {
  const text = 'Grüße, ✓\r\nline two';

  it('tells UTF-8, UTF-8 with a BOM and UTF-16 of either order from the saved bytes; a legacy encoding is not guessed', () => {
    assert.strictEqual(encodingOfSaved(undefined), 'utf8', 'an untitled editor is UTF-8, VS Code\'s default');
    assert.strictEqual(encodingOfSaved(Buffer.from(text, 'utf8')), 'utf8');
    assert.strictEqual(encodingOfSaved(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])), 'utf8bom');
    assert.strictEqual(encodingOfSaved(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')])), 'utf16le');
    assert.strictEqual(encodingOfSaved(Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()])), 'utf16be');
    assert.strictEqual(encodingOfSaved(Buffer.from('Gr\xfc\xdfe', 'latin1')), undefined, 'Latin-1 bytes are not valid UTF-8 and not re-encoded');
  });

  it('encodes the text back into the same bytes a save would write, byte-order mark included', () => {
    for (const saved of [
      Buffer.from(text, 'utf8'),
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]),
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]),
      Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()]),
    ]) {
      assert.ok(encodeText(text, encodingOfSaved(saved)!).equals(saved), `round trip of ${encodingOfSaved(saved)}`);
    }
  });
});

describe('extension model: rename and move from the tree', () => {
  const files = ['docs/a.txt', 'docs/sub/b.txt', 'other.txt', 'archive/docs/a.txt'].map((name, index) => record('alice', name, 10, index + 1));
  const tree = buildFileTree('alice', files, 4, NOW);
  const stored = new Set(files.map((file) => file.name));
  const docs = tree.find((node) => node.id === 'folder:alice/docs') as FolderNode;
  const other = tree.find((node) => node.id === 'file:alice/other.txt') as FileNode;

  it('moves every file below a folder, keeping its path below the new folder, each at the generation the tree showed', () => {
    assert.deepStrictEqual(renameSteps(docs, 'papers/docs/'), [
      { from: 'docs/sub/b.txt', to: 'papers/docs/sub/b.txt', generation: 2 },
      { from: 'docs/a.txt', to: 'papers/docs/a.txt', generation: 1 },
    ]);
    assert.deepStrictEqual(renameSteps(other, ' notes/other.txt '), [{ from: 'other.txt', to: 'notes/other.txt', generation: 3 }]);
  });

  it('refuses the same place, a move into itself, a taken name and the server\'s bad names', () => {
    assert.strictEqual(checkRenameTarget('papers', docs, stored), undefined);
    assert.match(checkRenameTarget('docs', docs, stored)!, /current folder/);
    assert.match(checkRenameTarget('docs/sub/deeper', docs, stored)!, /inside "docs"; a folder cannot move into itself/);
    assert.match(checkRenameTarget('archive/docs', docs, stored)!, /"archive\/docs\/a\.txt" is already stored/);
    assert.match(checkRenameTarget('other.txt', docs, stored)!, /"other\.txt" is a stored file/);
    assert.match(checkRenameTarget('../up', docs, stored)!, /"\.\." folder/);
    assert.strictEqual(checkRenameTarget('moved/other.txt', other, stored), undefined);
    assert.match(checkRenameTarget('docs/a.txt', other, stored)!, /already stored/);
    assert.match(checkRenameTarget('docs', other, stored)!, /is a folder/);
  });
});
