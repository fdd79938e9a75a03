import * as assert from 'assert';
import {
  DfsError,
  LineDecoder,
  checkRename,
  currentGenerationOf,
  decodeListing,
  encodeListing,
  formatFailure,
  formatPrecondition,
  formatReplicaChecksum,
  formatRequest,
  parseFileHeader,
  parsePrecondition,
  parseReplicaChecksum,
  parseReply,
  parseRequest,
  preconditionFailed,
  replyError,
  validateClientId,
  validateFileName,
} from '../../server/protocol';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof DfsError, `expected a DfsError, got ${String(error)}`);
    return error.code;
  }
  assert.fail('expected a failure');
}

describe('protocol: requests', () => {
  it('parses the report\'s three verbs', () => {
    assert.deepStrictEqual(parseRequest('UPLOAD alice notes.txt 42'), { verb: 'UPLOAD', clientId: 'alice', name: 'notes.txt', size: 42 });
    assert.deepStrictEqual(parseRequest('LIST alice'), { verb: 'LIST', clientId: 'alice' });
    assert.deepStrictEqual(parseRequest('REPLICA alice a/b.bin 0'), { verb: 'REPLICA', clientId: 'alice', name: 'a/b.bin', size: 0 });
  });

  it('keeps spaces and any UTF-8 in names: the size is the last token', () => {
    assert.deepStrictEqual(parseRequest('UPLOAD bob my  holiday  photo.jpg 7'), { verb: 'UPLOAD', clientId: 'bob', name: 'my  holiday  photo.jpg', size: 7 });
    assert.deepStrictEqual(parseRequest('DOWNLOAD bob relatório final ✓.pdf'), { verb: 'DOWNLOAD', clientId: 'bob', name: 'relatório final ✓.pdf' });
  });

  it('round-trips every request through formatRequest', () => {
    for (const line of ['UPLOAD a b c 1', 'LIST a', 'REPLICA a x/y 9', 'DOWNLOAD a n', 'DELETE a n m', 'FILES a', 'CLIENTS', 'STATUS', 'REPLICA_DELETE a 7 1700000000000 n m', 'INVENTORY', 'SCRUB', 'UPLOAD_IF a absent dir/x y 3', 'UPLOAD_IF a 12 x 0', 'DELETE_IF a 5 n', 'VERSIONS a n m', 'DOWNLOAD_VERSION a 3 n', 'RESTORE a 3 n', 'DROP_VERSION a 3 n', 'RESERVE 200', 'SYNCED 17 0123456789abcdef']) {
      assert.strictEqual(formatRequest(parseRequest(line)), line);
    }
  });

  it('refuses bad sizes, unknown verbs and missing arguments with codes', () => {
    assert.strictEqual(code(() => parseRequest('UPLOAD a f -1')), 'BAD_SIZE');
    assert.strictEqual(code(() => parseRequest('UPLOAD a f 1e3')), 'BAD_SIZE');
    assert.strictEqual(code(() => parseRequest('UPLOAD a f 99999999999999999')), 'BAD_SIZE');
    assert.strictEqual(code(() => parseRequest('UPLOAD a f 1000', 999)), 'TOO_LARGE');
    assert.strictEqual(code(() => parseRequest('UPLOAD a 5')), 'BAD_HEADER');
    assert.strictEqual(code(() => parseRequest('UPLOAD')), 'BAD_HEADER');
    assert.strictEqual(code(() => parseRequest('FETCH a b')), 'UNKNOWN_VERB');
    assert.strictEqual(code(() => parseRequest('')), 'UNKNOWN_VERB');
    assert.strictEqual(code(() => parseRequest('LIST a b')), 'BAD_HEADER');
    assert.strictEqual(code(() => parseRequest('STATUS now')), 'BAD_HEADER');
  });

  it('CHANGES takes a client id and one generation', () => {
    assert.deepStrictEqual(parseRequest('CHANGES alice 41'), { verb: 'CHANGES', clientId: 'alice', generation: 41 });
    assert.strictEqual(formatRequest({ verb: 'CHANGES', clientId: 'alice', generation: 0 }), 'CHANGES alice 0');
    for (const line of ['CHANGES alice', 'CHANGES alice 4 5', 'CHANGES alice x', 'CHANGES alice -1', 'CHANGES']) {
      assert.strictEqual(code(() => parseRequest(line)), 'BAD_HEADER', line);
    }
    assert.strictEqual(code(() => parseRequest('CHANGES .. 4')), 'BAD_CLIENT_ID');
  });

  it('refuses path traversal in client ids and file names', () => {
    for (const id of ['..', '.', 'a/b', 'a\\b', '.dfs', '', 'a\u0000b']) {
      assert.strictEqual(code(() => validateClientId(id)), 'BAD_CLIENT_ID', id);
    }
    for (const name of ['../x', 'a/../b', './a', 'a//b', '/etc/passwd', 'a\\b', 'a/', 'x\u0000y', '.', '..', 'a\nb']) {
      assert.strictEqual(code(() => validateFileName(name)), 'BAD_FILE_NAME', name);
    }
    assert.strictEqual(validateFileName('.gitignore'), '.gitignore');
    assert.strictEqual(validateFileName('docs/sub/..hidden'), 'docs/sub/..hidden');
  });
});

describe('protocol: rename', () => {
  it('names the two names apart with a tab, so either may hold spaces, and round-trips every form', () => {
    assert.deepStrictEqual(parseRequest('RENAME bob my old name.txt\tnew folder/my new name.txt'), { verb: 'RENAME', clientId: 'bob', from: 'my old name.txt', to: 'new folder/my new name.txt' });
    assert.deepStrictEqual(parseRequest('RENAME_IF bob 7 absent a\tb'), {
      verb: 'RENAME_IF',
      clientId: 'bob',
      source: { kind: 'generation', generation: 7 },
      destination: { kind: 'absent' },
      from: 'a',
      to: 'b',
    });
    for (const line of ['RENAME a x y\tz', 'RENAME_IF a any any x\ty', 'RENAME_IF a 3 12 x\ty', 'RENAME_IF a any absent x\ty', 'REPLICA_RENAME a 3 4 1700000000000 5 x y\td/z']) {
      assert.strictEqual(formatRequest(parseRequest(line)), line);
    }
  });

  it('refuses a rename without exactly two valid names, or with a bad rule, with codes', () => {
    assert.strictEqual(code(() => parseRequest('RENAME a only-one')), 'BAD_HEADER');
    assert.strictEqual(code(() => parseRequest('RENAME a x\ty\tz')), 'BAD_HEADER');
    assert.strictEqual(code(() => parseRequest('RENAME a x\t../up')), 'BAD_FILE_NAME');
    assert.strictEqual(code(() => parseRequest('RENAME_IF a absent any x\ty')), 'BAD_HEADER');
    assert.strictEqual(code(() => parseRequest('RENAME_IF a any maybe x\ty')), 'BAD_HEADER');
  });

  it('decides from both names\' generations: NOT_FOUND, CONFLICT on the source, EXISTS on the destination, each with the current generation', () => {
    const sides = { from: 'a', to: 'b' };
    assert.doesNotThrow(() => checkRename({ ...sides, source: 4, destination: undefined }, { kind: 'any' }, { kind: 'absent' }));
    assert.doesNotThrow(() => checkRename({ ...sides, source: 4, destination: 9 }, { kind: 'generation', generation: 4 }, { kind: 'generation', generation: 9 }));
    assert.doesNotThrow(() => checkRename({ ...sides, source: 4, destination: 9 }, { kind: 'any' }, { kind: 'any' }));
    assert.doesNotThrow(() => checkRename({ ...sides, source: 4, destination: undefined }, { kind: 'any' }, { kind: 'any' }));
    const refusal = (source: number | undefined, destination: number | undefined, rules: Parameters<typeof checkRename>[1], rule: Parameters<typeof checkRename>[2]): DfsError => {
      try {
        checkRename({ ...sides, source, destination }, rules, rule);
      } catch (error) {
        return error as DfsError;
      }
      throw new Error('not refused');
    };
    assert.strictEqual(refusal(undefined, undefined, { kind: 'any' }, { kind: 'absent' }).code, 'NOT_FOUND');
    const stale = refusal(5, undefined, { kind: 'generation', generation: 4 }, { kind: 'absent' });
    assert.strictEqual(stale.code, 'CONFLICT');
    assert.strictEqual(currentGenerationOf(stale), 5);
    const exists = refusal(4, 9, { kind: 'any' }, { kind: 'absent' });
    assert.strictEqual(exists.code, 'EXISTS');
    assert.match(exists.message, /^\[current generation 9\] b exists already/);
    assert.strictEqual(currentGenerationOf(exists), 9, 'a client reads the destination\'s generation to offer replacing it');
    assert.strictEqual(refusal(4, 10, { kind: 'any' }, { kind: 'generation', generation: 9 }).code, 'EXISTS');
    assert.strictEqual(refusal(4, undefined, { kind: 'any' }, { kind: 'generation', generation: 9 }).code, 'CONFLICT');
    assert.strictEqual(code(() => checkRename({ from: 'a', to: 'a', source: 1, destination: 1 }, { kind: 'any' }, { kind: 'any' })), 'BAD_FILE_NAME');
    assert.strictEqual(code(() => checkRename({ from: 'a', to: 'a/b', source: 1, destination: undefined }, { kind: 'any' }, { kind: 'any' })), 'CONFLICT');
    assert.strictEqual(code(() => checkRename({ from: 'd/a', to: 'd', source: 1, destination: undefined }, { kind: 'any' }, { kind: 'any' })), 'CONFLICT');
  });
});

describe('protocol: replies', () => {
  it('parses failures with a code and a reason', () => {
    assert.deepStrictEqual(parseReply('UPLOAD_FAILURE QUORUM only 1 of 3 replicas'), { token: 'UPLOAD_FAILURE', code: 'QUORUM', message: 'only 1 of 3 replicas' });
    assert.deepStrictEqual(parseReply('UPLOAD_FAILURE'), { token: 'UPLOAD_FAILURE', code: 'INTERNAL', message: 'the server gave no reason' });
    assert.deepStrictEqual(parseReply('UPLOAD_SUCCESS {"a":1}'), { token: 'UPLOAD_SUCCESS', payload: '{"a":1}' });
    assert.deepStrictEqual(parseReply('SEND_FILE'), { token: 'SEND_FILE' });
  });
});

describe('protocol: line decoder', () => {
  it('finds a header split across chunks and hands back the bytes after it', () => {
    const decoder = new LineDecoder(8192);
    assert.strictEqual(decoder.push(Buffer.from('UPLOAD al')), undefined);
    assert.strictEqual(decoder.push(Buffer.from('ice f 3')), undefined);
    const line = decoder.push(Buffer.from('\r\nabc'));
    assert.ok(line);
    assert.strictEqual(line.line, 'UPLOAD alice f 3');
    assert.strictEqual(line.terminated, true);
    assert.strictEqual(line.rest.toString(), 'abc');
  });

  it('takes an unterminated header at a pause, the report\'s framing', () => {
    const decoder = new LineDecoder(8192);
    assert.strictEqual(decoder.push(Buffer.from('LIST alice')), undefined);
    assert.deepStrictEqual(decoder.takeUnterminated(), { line: 'LIST alice', terminated: false, rest: Buffer.alloc(0) });
    assert.strictEqual(decoder.takeUnterminated(), undefined);
  });

  it('refuses headers over the limit and invalid UTF-8', () => {
    const decoder = new LineDecoder(16);
    assert.strictEqual(code(() => decoder.push(Buffer.alloc(17, 0x41))), 'HEADER_TOO_LONG');
    assert.strictEqual(code(() => new LineDecoder(16).push(Buffer.from('0123456789abcdefg\n'))), 'HEADER_TOO_LONG');
    assert.strictEqual(code(() => new LineDecoder(16).push(Buffer.from([0x4c, 0xff, 0xfe, 0x0a]))), 'BAD_HEADER');
  });
});

describe('protocol: listings, preconditions and replica steps', () => {
  it('a listing ends with its count, so one cut short is an error, never a shorter list', () => {
    const text = encodeListing([{ a: 1 }, { a: 2 }], { synced: 4 });
    assert.deepStrictEqual(decodeListing(text), { header: { synced: 4 }, records: [{ a: 1 }, { a: 2 }] });
    assert.deepStrictEqual(decodeListing(encodeListing([])).records, []);
    const cut = text.slice(0, text.indexOf('END'));
    assert.strictEqual(code(() => decodeListing(cut)), 'PROTOCOL');
    assert.strictEqual(code(() => decodeListing(text.replace('END 2', 'END 3'))), 'PROTOCOL');
    assert.strictEqual(code(() => decodeListing('ERROR AUTH no secret\n')), 'AUTH');
  });

  it('preconditions read and write as "absent" or a generation', () => {
    assert.deepStrictEqual(parsePrecondition('absent'), { kind: 'absent' });
    assert.deepStrictEqual(parsePrecondition('42'), { kind: 'generation', generation: 42 });
    assert.strictEqual(formatPrecondition({ kind: 'generation', generation: 7 }), '7');
    assert.strictEqual(code(() => parsePrecondition('-1')), 'BAD_HEADER');
    assert.strictEqual(code(() => parsePrecondition('latest')), 'BAD_HEADER');
  });

  it('a failed precondition carries the current generation for a client to retry against', () => {
    const changed = preconditionFailed('notes.md', { kind: 'generation', generation: 3 }, 9);
    assert.strictEqual(changed.code, 'CONFLICT');
    assert.strictEqual(currentGenerationOf(changed), 9);
    assert.strictEqual(currentGenerationOf(preconditionFailed('notes.md', { kind: 'generation', generation: 3 }, undefined)), null);
    assert.strictEqual(currentGenerationOf(new DfsError('CONFLICT', 'a folder of that name exists')), undefined);
    // Across the wire: the reply line keeps it.
    assert.strictEqual(currentGenerationOf(replyError(parseReply(formatFailure('UPLOAD_FAILURE', changed)))), 9);
  });

  it('the replica checksum step carries the checksum, generation, time and versions to keep', () => {
    const step = { sha256: 'f'.repeat(64), generation: 12, mtimeMs: 1_700_000_000_123, keep: 5 };
    assert.deepStrictEqual(parseReplicaChecksum(formatReplicaChecksum(step)), step);
    assert.strictEqual(code(() => parseReplicaChecksum(`CHECKSUM ${'f'.repeat(64)}`)), 'PROTOCOL');
    assert.deepStrictEqual(parseFileHeader(`12 ${'a'.repeat(64)} 7`), { size: 12, sha256: 'a'.repeat(64), generation: 7 });
  });
});
