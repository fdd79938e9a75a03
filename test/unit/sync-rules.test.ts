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

  it('a path through a folder handle the trace never saw opened is reported, not skipped', () => {
    const found = violationsOf(replicaUpload(['open-tmp']));
    assert.ok(found.some((text) => /rule unreadable: .*\/proc\/self\/fd\/6\/k1-abc/.test(text)), found.join('\n\n'));
  });

  it('a journal write strace cut short is reported, not skipped', () => {
    const found = violationsOf(replicaUpload([], { 'sync-record': [`12 pwrite64(7<${JOURNAL}>, "{\\"r\\":{\\"clientId\\""..., 300, 120) = 300`] }));
    assert.ok(found.some((text) => /rule unreadable: a journal write was cut short/.test(text)), found.join('\n\n'));
  });
});
