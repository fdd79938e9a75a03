import * as assert from 'assert';
import { parseReplicationMode } from '../../server/config/cluster-layout';
import { checkSettings } from '../../server/config/settings';
import { resolveReplication } from '../../server/primary/replica-transfer';
import { ChainHop, DfsError, formatChainHops, formatRequest, parseChainHops, parseRequest } from '../../server/protocol';

describe('replication mode', () => {
  it('fan-out unless asked; auto is a pipeline only when a replica is on another host', () => {
    assert.strictEqual(resolveReplication(undefined, ['10.0.0.2']), 'fanout');
    assert.strictEqual(resolveReplication('fanout', ['10.0.0.2']), 'fanout');
    assert.strictEqual(resolveReplication('pipeline', ['127.0.0.1']), 'pipeline');
    assert.strictEqual(resolveReplication('auto', ['127.0.0.1', 'localhost', '::1', '127.0.1.1']), 'fanout');
    assert.strictEqual(resolveReplication('auto', ['127.0.0.1', '10.0.0.3']), 'pipeline');
    assert.strictEqual(resolveReplication('auto', ['replica-b.example']), 'pipeline');
  });

  it('a mode that is not one of the three is refused with the choices', () => {
    assert.throws(() => parseReplicationMode('chain'), /fanout, pipeline, auto/);
    assert.throws(() => checkSettings({ replication: 'chain' }, 'command line'), (error: unknown) => error instanceof DfsError && /replication/.test(error.message) && /"fanout", "pipeline" or "auto"/.test(error.message));
    assert.strictEqual(checkSettings({ replication: 'auto' }, 'dfs.config.json').replication, 'auto');
  });
});

describe('REPLICA_CHAIN header', () => {
  it('round-trips the hops, names with spaces and the size', () => {
    const next: ChainHop[] = [
      { id: 2, host: '10.0.0.2', port: 9001 },
      { id: 3, host: '::1', port: 9002 },
    ];
    const line = formatRequest({ verb: 'REPLICA_CHAIN', clientId: 'c', next, name: 'a b/c.txt', size: 12 });
    assert.strictEqual(line, 'REPLICA_CHAIN c 2@10.0.0.2:9001,3@::1:9002 a b/c.txt 12');
    assert.deepStrictEqual(parseRequest(line), { verb: 'REPLICA_CHAIN', clientId: 'c', next, name: 'a b/c.txt', size: 12 });
    assert.deepStrictEqual(parseChainHops(formatChainHops([])), []);
  });

  it('refuses a malformed hop or a replica named twice', () => {
    assert.throws(() => parseChainHops('2@host'), /not a chain hop/);
    assert.throws(() => parseChainHops('2@h:0'), /not a chain hop/);
    assert.throws(() => parseChainHops('2@h:1,2@g:2'), /same replica twice/);
  });
});
