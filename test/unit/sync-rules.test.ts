import * as assert from 'assert';
import { decodeStrings, parseStrace } from '../support/strace-parse';
import { checkSyncOrder, describeViolation } from '../support/sync-rules';

/**
 * The strace parser and the sync ordering rules on hand-written traces, shaped like
 * what `strace -f -yy` prints for a node: one correct upload on a replica, then the
 * same with one sync taken out or moved, which must be the one violation reported.
 */

const R = '/d/replica1';
const JOURNAL = `${R}/.dfs/catalog/journal-00000001.log`;
const STAGED = `${R}/.dfs/tmp/k1-abc`;
const RECORD = String.raw`{\"r\":{\"clientId\":\"c\",\"name\":\"f.txt\",\"generation\":1,\"size\":5,\"sha256\":\"00\",\"mtimeMs\":1},\"k\":5,\"s\":\"k1-abc\"}\n`;
const SOCKET = 'TCP:[127.0.0.1:9000->127.0.0.1:5000]';

/** A replica's REPLICA exchange, step by step; `without` drops steps by name to break a rule. */
function replicaUpload(without: string[] = [], extra: Record<string, string[]> = {}): string {
  const steps: [string, string][] = [
    ['open-catalog', `10 openat(AT_FDCWD</w>, "${R}/.dfs/catalog", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY) = 5<${R}/.dfs/catalog>`],
    ['open-tmp', `10 openat(AT_FDCWD</w>, "${R}/.dfs/tmp", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY) = 6<${R}/.dfs/tmp>`],
    ['open-journal', `10 openat(AT_FDCWD</w>, "/proc/self/fd/5/journal-00000001.log", O_RDWR|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0644) = 7<${JOURNAL}>`],
    ['sync-catalog', `10 fsync(5<${R}/.dfs/catalog>) = 0`],
    ['request', `10 read(9<${SOCKET}>, "REPLICA c f.txt 5\\n", 65536) = 18`],
    ['open-staged', `11 openat(AT_FDCWD</w>, "/proc/self/fd/6/k1-abc", O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0644) = 8<${STAGED}>`],
    ['write-staged', `12 write(8<${STAGED}>, "hello", 5 <unfinished ...>`],
    ['write-staged-end', `12 <... write resumed>)              = 5`],
    ['sync-staged', `13 fsync(8<${STAGED}>) = 0`],
    ['sync-tmp', `14 fsync(6<${R}/.dfs/tmp>) = 0`],
    ['prepared', `10 write(9<${SOCKET}>, "REPLICA_PREPARED\\n", 17) = 17`],
    ['commit', `10 read(9<${SOCKET}>, "COMMIT\\n", 65536) = 7`],
    ['record', `12 pwrite64(7<${JOURNAL}>, "${RECORD}", 120, 0) = 120`],
    ['sync-record', `13 fsync(7<${JOURNAL}>) = 0`],
    ['open-folder', `14 openat(AT_FDCWD</w>, "${R}/c", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY) = 4<${R}/c>`],
    ['rename', `14 rename("/proc/self/fd/6/k1-abc", "/proc/self/fd/4/f.txt") = 0`],
    ['sync-folder', `15 fsync(4<${R}/c>) = 0`],
    ['success', `10 write(9<${SOCKET}>, "REPLICA_SUCCESS\\n", 16) = 16`],
  ];
  return steps
    .filter(([name]) => !without.includes(name))
    .flatMap(([name, line]) => [...(extra[name] ?? []), line])
    .join('\n');
}

const INLINE_RECORD = String.raw`{\"r\":{\"clientId\":\"c\",\"name\":\"f.txt\",\"generation\":2,\"size\":5,\"sha256\":\"00\",\"mtimeMs\":1},\"k\":5,\"b\":\"aGVsbG8=\"}\n`;
const NOTE = String.raw`{\"f\":[\"c\",\"f.txt\",2,77,5,1]}\n`;
const LIVE = `${R}/c/f.txt`;
const HISTORY = `${R}/.dfs/versions/c`;

/**
 * A replica's REPLICA of a small file whose record carries its bytes: no sync of the
 * staged file or of the live folder before REPLICA_SUCCESS; later, batched, the placed
 * file (through the fd that wrote it) and its folder, then the note confirming it.
 * `overwrite` puts an older version at the live name first, linked into history
 * (and that folder synced) before the rename.
 */
function inlineUpload(without: string[] = [], extra: Record<string, string[]> = {}, overwrite = false): string {
  const steps: [string, string][] = [
    ['open-catalog', `10 openat(AT_FDCWD</w>, "${R}/.dfs/catalog", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY) = 5<${R}/.dfs/catalog>`],
    ['open-tmp', `10 openat(AT_FDCWD</w>, "${R}/.dfs/tmp", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY) = 6<${R}/.dfs/tmp>`],
    ['open-journal', `10 openat(AT_FDCWD</w>, "/proc/self/fd/5/journal-00000001.log", O_RDWR|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0644) = 7<${JOURNAL}>`],
    ['sync-catalog', `10 fsync(5<${R}/.dfs/catalog>) = 0`],
    ['open-folder', `14 openat(AT_FDCWD</w>, "${R}/c", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY) = 4<${R}/c>`],
    ['open-history', `14 openat(AT_FDCWD</w>, "${HISTORY}", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY) = 3<${HISTORY}>`],
    ['request', `10 read(9<${SOCKET}>, "REPLICA c f.txt 5\\n", 65536) = 18`],
    ['open-staged', `11 openat(AT_FDCWD</w>, "/proc/self/fd/6/k1-abc", O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0644) = 8<${STAGED}>`],
    ['write-staged', `12 write(8<${STAGED}>, "hello", 5) = 5`],
    ['prepared', `10 write(9<${SOCKET}>, "REPLICA_PREPARED\\n", 17) = 17`],
    ['commit', `10 read(9<${SOCKET}>, "COMMIT\\n", 65536) = 7`],
    ['record', `12 pwrite64(7<${JOURNAL}>, "${INLINE_RECORD}", 140, 0) = 140`],
    ['sync-record', `13 fsync(7<${JOURNAL}>) = 0`],
    ...(overwrite
      ? ([
          ['link-history', `14 link("/proc/self/fd/4/f.txt", "/proc/self/fd/3/1") = 0`],
          ['sync-history', `15 fsync(3<${HISTORY}>) = 0`],
        ] as [string, string][])
      : []),
    ['rename', `14 rename("/proc/self/fd/6/k1-abc", "/proc/self/fd/4/f.txt") = 0`],
    ['success', `10 write(9<${SOCKET}>, "REPLICA_SUCCESS\\n", 16) = 16`],
    ['sync-file', `16 fsync(8<${LIVE}>) = 0`],
    ['sync-folder', `15 fsync(4<${R}/c>) = 0`],
    ['note', `12 pwrite64(7<${JOURNAL}>, "${NOTE}", 30, 140) = 30`],
  ];
  return steps
    .filter(([name]) => !without.includes(name))
    .flatMap(([name, line]) => [...(extra[name] ?? []), line])
    .join('\n');
}

function violationsOf(text: string): string[] {
  const trace = parseStrace(text);
  return checkSyncOrder(trace).violations.map((violation) => describeViolation(violation, trace));
}

describe('strace parsing', () => {
  it('joins an unfinished call with its resumption and keeps what each returned', () => {
    const { calls } = parseStrace(['12 write(8</a/b>, "hel", 3 <unfinished ...>', '13 fsync(7</a/c>) = 0', '12 <... write resumed>)  = 3', '14 unlink("/x") = -1 ENOENT (No such file or directory)'].join('\n'));
    assert.deepStrictEqual(
      calls.map((call) => [call.name, call.start, call.end, call.target ?? call.paths[0], call.ok, call.data]),
      [
        ['fsync', 1, 1, '/a/c', true, undefined],
        ['write', 0, 2, '/a/b', true, 'hel'],
        ['unlink', 3, 3, '/x', false, undefined],
      ],
    );
  });

  it('resolves /proc/self/fd/<n> paths with the fd as it was when the call began', () => {
    const { calls } = parseStrace(
      ['1 openat(AT_FDCWD</w>, "/d/a", O_RDONLY|O_DIRECTORY) = 5</d/a>', '1 rename("/proc/self/fd/5/x", "/proc/self/fd/5/y") = 0', '1 openat(AT_FDCWD</w>, "/d/b", O_RDONLY|O_DIRECTORY) = 5</d/b>', '1 unlink("/proc/self/fd/5/z") = 0'].join('\n'),
    );
    assert.deepStrictEqual(calls[1].paths, ['/d/a/x', '/d/a/y']);
    assert.deepStrictEqual(calls[3].paths, ['/d/b/z']);
  });

  it('decodes escapes, joins writev iovecs and notices a string strace cut short', () => {
    assert.deepStrictEqual(decodeStrings(String.raw`"a\"b\\c\n\1\x41"`), { text: 'a"b\\c\n\u0001A', truncated: false });
    assert.deepStrictEqual(decodeStrings('[{iov_base="ab", iov_len=2}, {iov_base="cd"..., iov_len=9}]'), { text: 'abcd', truncated: true });
  });
});

describe('sync ordering rules', () => {
  it('a correct replica upload passes, and every rule was exercised', () => {
    const trace = parseStrace(replicaUpload());
    const { violations, coverage } = checkSyncOrder(trace);
    assert.deepStrictEqual(violations, []);
    assert.strictEqual(coverage.recorded.get('REPLICA -> REPLICA_SUCCESS'), 1);
    assert.strictEqual(coverage.messages.get('REPLICA -> REPLICA_PREPARED'), 1);
    assert.deepStrictEqual([coverage.renames, coverage.stagedRecords, coverage.entries], [1, 1, 1]);
  });

  it('rule a: staged bytes not fsynced before the record naming them, before PREPARED, and before their rename', () => {
    const found = violationsOf(replicaUpload(['sync-staged']));
    assert.strictEqual(found.length, 3, found.join('\n\n'));
    assert.match(found.join('\n'), /rule a: .*k1-abc were not fsynced after their last write and before the journal record naming them/);
    assert.match(found.join('\n'), /before REPLICA_PREPARED/);
    assert.match(found.join('\n'), /k1-abc was renamed to \/d\/replica1\/c\/f\.txt but the bytes written to it were not fsynced/);
  });

  it('rule a: a sync that began before the last write returned does not count', () => {
    const found = violationsOf(replicaUpload(['sync-staged'], { 'write-staged-end': [`13 fsync(8<${STAGED}>) = 0`] }));
    assert.ok(found.length >= 1 && found.every((text) => text.startsWith('rule a')), found.join('\n\n'));
  });

  it('rule a: the staging folder not synced after the staged file was created', () => {
    const found = violationsOf(replicaUpload(['sync-tmp']));
    assert.strictEqual(found.length, 2, found.join('\n\n'));
    assert.match(found[0], /rule a: the staging folder was not fsynced after .*k1-abc was created/);
  });

  it('rule b: the folder not synced after the rename, before the reply', () => {
    const found = violationsOf(replicaUpload(['sync-folder']));
    assert.strictEqual(found.length, 1, found.join('\n\n'));
    assert.match(found[0], /rule b: REPLICA -> REPLICA_SUCCESS: rename of \/d\/replica1\/c\/f\.txt was not followed by an fsync of \/d\/replica1\/c before the reply/);
    assert.match(found[0], />\s+\d+\s+14 rename/);
  });

  it('rule b: a folder sync that returns only after the reply is too late', () => {
    const found = violationsOf(replicaUpload(['sync-folder'], { success: [`15 fsync(4<${R}/c> <unfinished ...>`] }) + `\n15 <... fsync resumed>) = 0`);
    assert.strictEqual(found.length, 1, found.join('\n\n'));
    assert.match(found[0], /^rule b/);
  });

  it('rule c: the journal record not synced before REPLICA_SUCCESS', () => {
    const found = violationsOf(replicaUpload(['sync-record']));
    assert.strictEqual(found.length, 1, found.join('\n\n'));
    assert.match(found[0], /rule c: REPLICA -> REPLICA_SUCCESS: a journal record it announces was not fsynced/);
  });

  it('rule c: a journal file created with no sync of its folder', () => {
    const found = violationsOf(replicaUpload(['sync-catalog']));
    assert.strictEqual(found.length, 1, found.join('\n\n'));
    assert.match(found[0], /rule c: .*the journal file holding its record was created but its folder not fsynced/);
  });

  it('rule d: an old journal removed before the new snapshot\'s rename was synced in its folder', () => {
    const catalog = `${R}/.dfs/catalog`;
    const compaction = (synced: boolean): string =>
      [
        `1 openat(AT_FDCWD</w>, "${catalog}", O_RDONLY|O_DIRECTORY) = 5<${catalog}>`,
        `2 openat(AT_FDCWD</w>, "/proc/self/fd/5/snapshot.jsonl.new", O_WRONLY|O_CREAT|O_TRUNC|O_NOFOLLOW, 0644) = 9<${catalog}/snapshot.jsonl.new>`,
        `2 write(9<${catalog}/snapshot.jsonl.new>, "{}\\n", 3) = 3`,
        `2 fsync(9<${catalog}/snapshot.jsonl.new>) = 0`,
        `2 rename("/proc/self/fd/5/snapshot.jsonl.new", "/proc/self/fd/5/snapshot.jsonl") = 0`,
        ...(synced ? [`3 fsync(5<${catalog}>) = 0`] : []),
        `2 unlink("/proc/self/fd/5/journal-00000001.log") = 0`,
      ].join('\n');
    assert.deepStrictEqual(violationsOf(compaction(true)), []);
    const found = violationsOf(compaction(false));
    assert.strictEqual(found.length, 1, found.join('\n\n'));
    assert.match(found[0], /rule d: .*journal-00000001\.log was removed before .*catalog was fsynced after the new snapshot was renamed into place/);
  });

  it('rule a: the primary commits a version only after its replica answered REPLICA_PREPARED', () => {
    const P = '/d/servidor';
    const link = 'TCP:[127.0.0.1:6000->127.0.0.1:9000]';
    const primary = (preparedFirst: boolean): string => {
      const prepared = `1 read(8<${link}>, "REPLICA_PREPARED\\n", 65536) = 17`;
      const record = `2 pwrite64(7<${P}/.dfs/catalog/journal-00000001.log>, "{\\"r\\":{\\"clientId\\":\\"c\\",\\"name\\":\\"f.txt\\",\\"generation\\":1},\\"k\\":5}\\n", 60, 0) = 60`;
      return [
        `1 write(8<${link}>, "REPLICA c f.txt 5\\n", 18) = 18`,
        ...(preparedFirst ? [prepared, record] : [record, prepared]),
        `3 fsync(7<${P}/.dfs/catalog/journal-00000001.log>) = 0`,
        `1 write(8<${link}>, "COMMIT\\n", 7) = 7`,
      ].join('\n');
    };
    assert.deepStrictEqual(violationsOf(primary(true)), []);
    const found = violationsOf(primary(false));
    assert.strictEqual(found.length, 1, found.join('\n\n'));
    assert.match(found[0], /rule a: the primary wrote the record committing a version before its replica answered REPLICA_PREPARED/);
  });

  it('rule a holds for the version the REPLICA carries: a newer record of the same name crossing a catch-up transfer is not its commit', () => {
    const P = '/d/servidor';
    const link = 'TCP:[127.0.0.1:6000->127.0.0.1:9000]';
    const sha = 'a'.repeat(64);
    const record = (generation: number): string =>
      `2 pwrite64(7<${P}/.dfs/catalog/journal-00000001.log>, "{\\"r\\":{\\"clientId\\":\\"c\\",\\"name\\":\\"f.txt\\",\\"generation\\":${generation}},\\"k\\":5}\\n", 60, 0) = 60`;
    const transfer = (crossing: number): string =>
      [
        `1 write(8<${link}>, "REPLICA c f.txt 5\\n", 18) = 18`,
        `1 write(8<${link}>, "CHECKSUM ${sha} 3 1796000000000 5\\n", 91) = 91`,
        record(crossing),
        `3 fsync(7<${P}/.dfs/catalog/journal-00000001.log>) = 0`,
        `1 read(8<${link}>, "REPLICA_PREPARED\\n", 65536) = 17`,
        `1 write(8<${link}>, "COMMIT\\n", 7) = 7`,
      ].join('\n');
    // Catch-up sends generation 3, recorded long before; a rename over f.txt records generation 4 meanwhile.
    assert.deepStrictEqual(violationsOf(record(3) + '\n' + `3 fsync(7<${P}/.dfs/catalog/journal-00000001.log>) = 0` + '\n' + transfer(4)), []);
    // The version the REPLICA carries, recorded before its PREPARED, is still caught.
    const found = violationsOf(transfer(3));
    assert.strictEqual(found.length, 1, found.join('\n\n'));
    assert.match(found[0], /rule a: the primary wrote the record committing a version before its replica answered REPLICA_PREPARED/);
  });

  it('an inline placement: no sync before the reply, then the file and its folder before the note; passes and is counted', () => {
    const { violations, coverage } = checkSyncOrder(parseStrace(inlineUpload()));
    assert.deepStrictEqual(violations, []);
    assert.deepStrictEqual([coverage.inlineRecords, coverage.inlinePlacements, coverage.confirmedInline], [1, 1, 1]);
    assert.strictEqual(coverage.recorded.get('REPLICA -> REPLICA_SUCCESS'), 1);
    assert.deepStrictEqual(violationsOf(inlineUpload([], {}, true)), []);
  });

  it('rule e: the placed file not fsynced before the note confirming it', () => {
    const found = violationsOf(inlineUpload(['sync-file']));
    assert.strictEqual(found.length, 1, found.join('\n\n'));
    assert.match(found[0], /rule e: the placement of \/d\/replica1\/c\/f\.txt \(bytes carried inline\) was confirmed before the placed file was fsynced/);
  });

  it('rule e: the placed file fsynced only after the note is too late', () => {
    const found = violationsOf(inlineUpload(['sync-file'], { 'sync-folder': [], note: [] }) + `\n16 fsync(8<${LIVE}>) = 0`);
    assert.strictEqual(found.length, 1, found.join('\n\n'));
    assert.match(found[0], /^rule e: .*placed file was fsynced/);
  });

  it('rule e: an fsync of the fd number after another open reused it is not the placed file\'s', () => {
    const reuse = `17 openat(AT_FDCWD</w>, "/proc/self/fd/6/k2-def", O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0644) = 8<${R}/.dfs/tmp/k2-def>`;
    const found = violationsOf(inlineUpload(['sync-file'], { 'sync-folder': [reuse, `16 fsync(8<${R}/.dfs/tmp/k2-def>) = 0`] }));
    assert.strictEqual(found.length, 1, found.join('\n\n'));
    assert.match(found[0], /^rule e: .*placed file was fsynced/);
  });

  it('rule e: the folder not fsynced after the rename, before the note', () => {
    const found = violationsOf(inlineUpload(['sync-folder']));
    assert.strictEqual(found.length, 1, found.join('\n\n'));
    assert.match(found[0], /rule e: the placement of .*f\.txt \(bytes carried inline\) was confirmed before \/d\/replica1\/c was fsynced after the rename/);
  });

  it('rule e: an older version linked into history not synced in its folder before the inline rename over it', () => {
    // Synced after the rename (so before the reply, rule b holds), but too late for e.
    const found = violationsOf(inlineUpload(['sync-history'], { success: [`15 fsync(3<${HISTORY}>) = 0`] }, true));
    assert.strictEqual(found.length, 1, found.join('\n\n'));
    assert.match(found[0], /rule e: \/d\/replica1\/\.dfs\/versions\/c\/1 \(the version .*f\.txt held\) was linked into history but its folder not fsynced before the inline placement/);
    // Not synced at all: rule b as well.
    const both = violationsOf(inlineUpload(['sync-history'], {}, true));
    assert.deepStrictEqual(both.map((text) => text.slice(0, 6)).sort(), ['rule b', 'rule e'], both.join('\n\n'));
  });

  it('rule c still holds for inline records: the record not synced before REPLICA_SUCCESS', () => {
    const found = violationsOf(inlineUpload(['sync-record']));
    assert.strictEqual(found.length, 1, found.join('\n\n'));
    assert.match(found[0], /rule c: REPLICA -> REPLICA_SUCCESS: a journal record it announces was not fsynced/);
  });

  it('the exemption is only for records carrying their bytes: the same trace with a record naming staged bytes breaks a and b', () => {
    const staged = inlineUpload().replace(String.raw`\"b\":\"aGVsbG8=\"`, String.raw`\"s\":\"k1-abc\"`);
    const found = violationsOf(staged);
    const rules = found.map((text) => text.slice(0, 6));
    assert.ok(rules.includes('rule a') && rules.includes('rule b'), found.join('\n\n'));
    assert.match(found.join('\n'), /k1-abc was renamed to \/d\/replica1\/c\/f\.txt but the bytes written to it were not fsynced/);
    assert.match(found.join('\n'), /rule b: REPLICA -> REPLICA_SUCCESS: rename of \/d\/replica1\/c\/f\.txt was not followed by an fsync/);
  });

  it('a path through a folder handle the trace never saw opened is reported, not skipped', () => {
    const found = violationsOf(replicaUpload(['open-tmp']));
    assert.ok(found.some((text) => /rule unreadable: .*\/proc\/self\/fd\/6\/k1-abc/.test(text)), found.join('\n\n'));
  });

  it('a journal write strace cut short is reported, not skipped', () => {
    const found = violationsOf(replicaUpload([], { 'sync-record': [`12 pwrite64(7<${JOURNAL}>, "{\\"r\\":{\\"clientId\\""..., 300, 120) = 300`] }));
    assert.ok(found.some((text) => /rule unreadable: a journal write was cut short/.test(text)), found.join('\n\n'));
  });
});
