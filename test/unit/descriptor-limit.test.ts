import * as assert from 'assert';
import { connectionLimit, openFilesSoftLimit } from '../../server/config/descriptor-limit';
import { checkSettings } from '../../server/config/settings';
import { parseCommandLine } from '../../server/cli/args';
import { DfsError } from '../../server/protocol';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max processes             63704                63704                processes
Max open files            256                  4096                 files
Max locked memory         8388608              8388608              bytes
`;

describe('connection and disk limits', () => {
  it('reads the soft open-file limit from /proc/self/limits text, and nothing from an unlimited or missing one', () => {
    assert.strictEqual(openFilesSoftLimit(LIMITS), 256);
    assert.strictEqual(openFilesSoftLimit(LIMITS.replace('256 ', 'unlimited ')), undefined);
    assert.strictEqual(openFilesSoftLimit('nothing here'), undefined);
    if (process.platform === 'linux') {
      assert.ok((openFilesSoftLimit() ?? 0) > 0);
    }
  });

  it('defaults --max-connections to half of the open-file limit less 64, at most 1024, and 1024 when the limit is unknown', () => {
    assert.deepStrictEqual(connectionLimit(undefined, 256), { maxConnections: 96 });
    assert.deepStrictEqual(connectionLimit(undefined, 1024), { maxConnections: 480 });
    assert.deepStrictEqual(connectionLimit(undefined, 1_048_576), { maxConnections: 1024 });
    assert.deepStrictEqual(connectionLimit(undefined, undefined), { maxConnections: 1024 });
    assert.deepStrictEqual(connectionLimit(undefined, 64), { maxConnections: 1 });
  });

  it('keeps an explicit --max-connections, warning only when it is more than the open-file limit allows', () => {
    assert.deepStrictEqual(connectionLimit(96, 256), { maxConnections: 96 });
    assert.deepStrictEqual(connectionLimit(5000, 20_000), { maxConnections: 5000 });
    const over = connectionLimit(1000, 256);
    assert.strictEqual(over.maxConnections, 1000);
    assert.match(over.warning ?? '', /--max-connections 1000 is more than this process's open-file limit of 256 allows \(96/);
  });

  it('checks --min-free and minFree like the other byte settings', () => {
    assert.strictEqual(parseCommandLine('replica', ['--min-free', '1048576'], '/nonexistent').settings.minFree, 1_048_576);
    assert.strictEqual(parseCommandLine('replica', [], '/nonexistent').settings.minFree, 64 * 1024 * 1024);
    assert.throws(() => parseCommandLine('replica', ['--min-free', '1MiB'], '/nonexistent'), (error: unknown) => error instanceof DfsError && /--min-free "1MiB" is not a whole number/.test(error.message));
    assert.throws(() => checkSettings({ minFree: -1 }, 'dfs.config.json'), /dfs.config.json: "minFree" is -1; expected a whole number, zero or more/);
    assert.throws(() => checkSettings({ maxConnections: 0 }, 'dfs.config.json'), /"maxConnections" is 0; expected a whole number, one or more/);
  });
});
