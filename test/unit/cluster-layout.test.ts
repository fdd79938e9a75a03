import * as assert from 'assert';
import { mkdtempSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { replicaAddresses, replicaIdForPort, replicaPorts, replicasRequired } from '../../server/config/cluster-layout';
import { loadConfigFile, resolveSettings } from '../../server/config/settings';
import { DfsError } from '../../server/protocol';

describe('config: the report\'s replica layout', () => {
  it('derives contiguous ports and ids from the base port', () => {
    assert.deepStrictEqual(replicaPorts(9000, 3), [9000, 9001, 9002]);
    assert.strictEqual(replicaIdForPort(9000, 9000, 3), 1);
    assert.strictEqual(replicaIdForPort(9002, 9000, 3), 3);
    assert.deepStrictEqual(
      replicaAddresses({ host: '127.0.0.1', basePort: 9000, replicas: 2 }).map((r) => [r.id, r.port]),
      [
        [1, 9000],
        [2, 9001],
      ],
    );
  });

  it('refuses a replica port outside the list with a message naming the allowed ports', () => {
    assert.throws(() => replicaIdForPort(9003, 9000, 3), (error: unknown) => error instanceof DfsError && /9000-9002/.test(error.message));
    assert.throws(() => replicaIdForPort(8999, 9000, 3), DfsError);
  });

  it('turns write quorums into replica counts', () => {
    assert.strictEqual(replicasRequired('all', 3), 3);
    assert.strictEqual(replicasRequired('majority', 3), 2);
    assert.strictEqual(replicasRequired('majority', 5), 3);
    assert.strictEqual(replicasRequired('majority', 0), 0);
    assert.strictEqual(replicasRequired(1, 3), 1);
    assert.throws(() => replicasRequired(4, 3), DfsError);
  });

  it('uses remote replicas given as HOST:PORT instead of the local range', () => {
    const remote = replicaAddresses({ host: '127.0.0.1', basePort: 9000, replicas: 3, remote: ['10.0.0.2:9000', '[::1]:9001'] });
    assert.deepStrictEqual(remote, [
      { id: 1, host: '10.0.0.2', port: 9000 },
      { id: 2, host: '::1', port: 9001 },
    ]);
  });
});

describe('config: dfs.config.json', () => {
  const dirWith = (content: string): string => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dfs-config-'));
    writeFileSync(path.join(dir, 'dfs.config.json'), content);
    return dir;
  };

  it('reads settings, and flags win over the file', () => {
    const fromFile = loadConfigFile(dirWith('{"replicas": 5, "basePort": 9100, "writeQuorum": "majority"}'));
    const settings = resolveSettings({ basePort: 9200 }, fromFile);
    assert.strictEqual(settings.replicas, 5);
    assert.strictEqual(settings.basePort, 9200);
    assert.strictEqual(settings.writeQuorum, 'majority');
  });

  it('explains invalid files instead of throwing a stack trace', () => {
    assert.throws(() => loadConfigFile(dirWith('{"replicas": ')), /not valid JSON/);
    assert.throws(() => loadConfigFile(dirWith('{"replcas": 3}')), /unknown setting "replcas"/);
    assert.throws(() => loadConfigFile(dirWith('{"port": "eighty"}')), /"port" is "eighty"; expected a port number/);
    assert.throws(() => loadConfigFile(dirWith('{"writeQuorum": "most"}')), /writeQuorum/);
    assert.throws(() => loadConfigFile(dirWith('[1]')), /JSON object/);
  });

  it('is optional', () => {
    assert.deepStrictEqual(loadConfigFile(mkdtempSync(path.join(os.tmpdir(), 'dfs-config-'))), {});
  });
});
