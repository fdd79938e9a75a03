import * as assert from 'assert';
import { mkdtempSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readSettings } from '../../extension/model/settings';
import { parseSendFile } from '../../server/client/dfs-client';
import { NoPrimaryError, acrossPrimaries, defaultFailoverWaitMs } from '../../server/client/failover';
import { clientsAcrossReplicas, newestAcrossReplicas, newestVersions } from '../../server/client/newest-across-replicas';
import { HostPort, PrimaryAddresses, parseAddressList } from '../../server/client/primary-addresses';
import { parseCommandLine } from '../../server/cli/args';
import { loadConfigFile } from '../../server/config/settings';
import { DfsError, FileRecord } from '../../server/protocol';

const file = (name: string, generation: number, sha = 'a'.repeat(64)): FileRecord => ({ clientId: 'c', name, size: 1, mtimeMs: 0, sha256: sha, generation });

describe('client: several primary addresses', () => {
  it('parses HOST:PORT lists, from one comma-separated string or a list, dropping duplicates and refusing bad ones', () => {
    assert.deepStrictEqual(parseAddressList('a:1,b:2'), [
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
    ]);
    assert.deepStrictEqual(parseAddressList(['a:1', 'b:2,[::1]:3', 'a:1']), [
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
      { host: '::1', port: 3 },
    ]);
    assert.throws(() => parseAddressList('a:1,,b:2'), /empty address/);
    assert.throws(() => parseAddressList('a:1,b'), /"b" is not HOST:PORT/);
    assert.throws(() => parseAddressList([]), /no primary address/);
  });

  it('starts at the address that answered last, then the others in order after it', () => {
    const addresses = new PrimaryAddresses(parseAddressList('a:1,b:2,c:3'));
    assert.deepStrictEqual(addresses.order().map((a) => a.host), ['a', 'b', 'c']);
    addresses.answered({ host: 'c', port: 3 });
    assert.deepStrictEqual(addresses.order().map((a) => a.host), ['c', 'a', 'b']);
    assert.strictEqual(addresses.current.host, 'c');
    addresses.answered({ host: 'z', port: 9 });
    assert.strictEqual(addresses.current.host, 'c', 'an address not on the list changes nothing');
  });

  it('moves on past UNREACHABLE (no connection, or a standby that knows no leader) and remembers who answered', async () => {
    const addresses = new PrimaryAddresses(parseAddressList('a:1,b:2,c:3'));
    const tried: string[] = [];
    const result = await acrossPrimaries(addresses, 0, async (address: HostPort) => {
      tried.push(address.host);
      if (address.host === 'a') throw new DfsError('UNREACHABLE', 'cannot connect to a:1: nothing is listening there');
      if (address.host === 'b') throw new DfsError('UNREACHABLE', 'no primary leads (election under way)');
      return 'from c';
    });
    assert.strictEqual(result, 'from c');
    assert.deepStrictEqual(tried, ['a', 'b', 'c']);
    tried.length = 0;
    await acrossPrimaries(addresses, 0, async (address) => tried.push(address.host));
    assert.deepStrictEqual(tried, ['c'], 'the next request goes straight to the one that answered');
  });

  it('returns any other answer as it is, without trying further', async () => {
    const addresses = new PrimaryAddresses(parseAddressList('a:1,b:2'));
    const tried: string[] = [];
    await assert.rejects(
      acrossPrimaries(addresses, 5_000, async (address) => {
        tried.push(address.host);
        throw new DfsError('CONFLICT', 'name is at generation 7');
      }),
      (error: unknown) => error instanceof DfsError && error.code === 'CONFLICT' && !(error instanceof NoPrimaryError),
    );
    assert.deepStrictEqual(tried, ['a']);
  });

  it('retries every address with backoff until the wait is over, then says no primary answers and what to do', async () => {
    const addresses = new PrimaryAddresses(parseAddressList('a:1,b:2'));
    const attemptsAt: number[] = [];
    const answer = await acrossPrimaries(addresses, 3_000, async (address) => {
      attemptsAt.push(Date.now());
      // b comes back in the third round.
      if (attemptsAt.length < 6 || address.host !== 'b') throw new DfsError('UNREACHABLE', `${address.host} down`);
      return 'b answered';
    });
    assert.strictEqual(answer, 'b answered');
    assert.strictEqual(attemptsAt.length, 6);
    // Rounds 100 ms then 200 ms apart: backoff, not a busy loop.
    assert.ok(attemptsAt[2] - attemptsAt[1] >= 90 && attemptsAt[4] - attemptsAt[3] >= 190, JSON.stringify(attemptsAt.map((at) => at - attemptsAt[0])));

    const started = Date.now();
    const down = new PrimaryAddresses(parseAddressList('a:1,b:2'));
    let tries = 0;
    const nobody = async (address: HostPort): Promise<never> => {
      tries++;
      throw new DfsError('UNREACHABLE', `${address.host} down`);
    };
    await assert.rejects(
      acrossPrimaries(down, 700, nobody),
      (error: unknown) => error instanceof NoPrimaryError && error.code === 'UNREACHABLE' && /a down; b down/.test(error.message) && /read-only until a primary is back/.test(error.message),
    );
    const waited = Date.now() - started;
    assert.ok(waited >= 300 && waited < 2_000, `gave up after ${waited} ms, within the 700 ms wait`);
    // Once waited out, later requests try each address once, until one answers again.
    tries = 0;
    await assert.rejects(acrossPrimaries(down, 700, nobody), NoPrimaryError);
    assert.strictEqual(tries, 2);
    assert.strictEqual(await acrossPrimaries(down, 700, async (address) => address.host), 'a');
    assert.strictEqual(down.noneAnswering, false);
  });

  it('tries a single address once by default, as before, and several for 8 s', () => {
    assert.strictEqual(defaultFailoverWaitMs(1), 0);
    assert.strictEqual(defaultFailoverWaitMs(2), 8_000);
  });

  it('reads replaces and epoch from SEND_FILE, and nothing from a bare one', () => {
    assert.deepStrictEqual(parseSendFile('{"replaces":4,"epoch":17}'), { replaces: 4, epoch: 17 });
    assert.deepStrictEqual(parseSendFile('{"replaces":4}'), { replaces: 4, epoch: undefined });
    assert.deepStrictEqual(parseSendFile(undefined), { replaces: -1, epoch: undefined });
    assert.deepStrictEqual(parseSendFile('not json'), { replaces: -1, epoch: undefined });
  });

  it('takes --server and "server" in dfs.config.json as one address, a comma list or a list, and checks each', () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'dfs-servers-'));
    assert.deepStrictEqual(parseCommandLine('ls', ['--server', 'h1:8000,h2:8001'], work).settings.server, ['h1:8000', 'h2:8001']);
    assert.deepStrictEqual(parseCommandLine('ls', ['--server', 'h1:8000'], work).settings.server, ['h1:8000']);
    assert.deepStrictEqual(parseCommandLine('ls', ['--port', '8100'], work).settings.server, ['127.0.0.1:8100']);
    assert.strictEqual(parseCommandLine('ls', ['--failover-wait', '2500'], work).settings.failoverWaitMs, 2500);
    assert.throws(() => parseCommandLine('ls', ['--server', 'h1:8000,nope'], work), /"server" is "h1:8000,nope"; expected .*"nope" is not HOST:PORT/);
    writeFileSync(path.join(work, 'dfs.config.json'), JSON.stringify({ server: ['h1:8000', 'h2:8001'] }));
    assert.deepStrictEqual(loadConfigFile(work).server, ['h1:8000', 'h2:8001']);
    assert.deepStrictEqual(parseCommandLine('ls', [], work).settings.server, ['h1:8000', 'h2:8001']);
    writeFileSync(path.join(work, 'dfs.config.json'), JSON.stringify({ server: 'h1:8000,h2:8001' }));
    assert.deepStrictEqual(loadConfigFile(work).server, ['h1:8000', 'h2:8001']);
    writeFileSync(path.join(work, 'dfs.config.json'), JSON.stringify({ server: [8000] }));
    assert.throws(() => loadConfigFile(work), /"server" is \[8000\]; expected "HOST:PORT", "HOST:PORT,HOST:PORT,..." or a list/);
    writeFileSync(path.join(work, 'dfs.config.json'), JSON.stringify({ server: [] }));
    assert.throws(() => loadConfigFile(work), /"server" is \[\]/);
  });

  it('reads dfs.servers in the extension: empty means dfs.host:dfs.port, bad entries are named', () => {
    const settings = (values: Record<string, unknown>) => readSettings((key) => values[key], os.tmpdir());
    assert.deepStrictEqual(settings({ host: 'h', port: 8100 }).servers, [{ host: 'h', port: 8100 }]);
    assert.deepStrictEqual(settings({ host: 'h', port: 8100, servers: [] }).servers, [{ host: 'h', port: 8100 }]);
    assert.deepStrictEqual(settings({ servers: ['a:1', 'b:2'] }).servers, [
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
    ]);
    assert.throws(() => settings({ servers: ['a:1', 'b'] }), /dfs\.servers: "b" is not HOST:PORT/);
    assert.throws(() => settings({ servers: 'a:1' }), /dfs\.servers is "a:1"; expected a list/);
  });
});

describe('client: reading from the replicas', () => {
  it('takes the highest generation any replica lists, never a lower one, and counts the replicas that hold it', () => {
    const merged = newestAcrossReplicas([
      { replicaId: 1, synced: 0, files: [file('a', 3, '1'.repeat(64)), file('b', 5)] },
      { replicaId: 2, synced: 0, files: [file('a', 9, '2'.repeat(64)), file('b', 5)] },
      { replicaId: 3, synced: 0, files: [file('a', 9, '2'.repeat(64)), file('c', 2)] },
    ]);
    assert.deepStrictEqual(
      merged.map(({ record, holders }) => [record.name, record.generation, record.copies, holders]),
      [
        ['a', 9, 2, [2, 3]],
        ['b', 5, 2, [1, 2]],
        ['c', 2, 1, [3]],
      ],
    );
    assert.strictEqual(merged[0].record.sha256, '2'.repeat(64));
  });

  it('leaves out a name a replica certified complete past its generation does not hold (deleted), and keeps newer ones', () => {
    const merged = newestAcrossReplicas([
      // Behind: still lists gone.txt at 4 and old.txt at 6.
      { replicaId: 1, synced: 3, files: [file('gone.txt', 4), file('new.txt', 12), file('old.txt', 6)] },
      // Complete through 10, and lists neither gone.txt nor new.txt (12 is beyond what it certifies).
      { replicaId: 2, synced: 10, files: [file('old.txt', 6)] },
    ]);
    assert.deepStrictEqual(
      merged.map(({ record }) => [record.name, record.generation]),
      [
        ['new.txt', 12],
        ['old.txt', 6],
      ],
    );
  });

  it('merges client lists and picks the versions of the replica whose current version is newest', () => {
    assert.deepStrictEqual(
      clientsAcrossReplicas([[{ clientId: 'b', files: 1, bytes: 1 }], [{ clientId: 'a', files: 2, bytes: 5 }, { clientId: 'b', files: 3, bytes: 9 }]]),
      [
        { clientId: 'a', files: 2, bytes: 5 },
        { clientId: 'b', files: 3, bytes: 9 },
      ],
    );
    const version = (generation: number, current: boolean) => ({ generation, size: 1, sha256: 'x', mtimeMs: 0, current });
    assert.deepStrictEqual(newestVersions([[version(4, true)], [], [version(7, true), version(4, false)]])?.map((v) => v.generation), [7, 4]);
    assert.strictEqual(newestVersions([[], []]), undefined);
  });
});
