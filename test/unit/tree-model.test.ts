import * as assert from 'assert';
import { readFileSync, readdirSync } from 'fs';
import * as path from 'path';
import { clusterLaunches, launchFor, parseListeningLine } from '../../extension/cluster/node-launch';
import { statusBarView, statusReport } from '../../extension/model/cluster-state';
import { dfsPath, parseDfsPath } from '../../extension/model/dfs-uri';
import { formatAge, formatBytes } from '../../extension/model/format';
import { readSettings } from '../../extension/model/settings';
import { FileNode, FolderNode, buildClientNodes, buildFileTree, expectedCopies } from '../../extension/model/tree-model';
import type { ClusterStatus, FileRecord } from '../../server/protocol';
import { REPO_ROOT } from '../support/processes';

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
const record = (name: string, size: number, copies = 4, ageMs = 0): FileRecord => ({ clientId: 'alice', name, size, mtimeMs: NOW - ageMs, sha256: 'ab'.repeat(32), generation: 1, copies });

describe('extension model: the tree of stored files', () => {
  it('puts the own client first even before it stores anything, the others sorted', () => {
    const nodes = buildClientNodes('me', [
      { clientId: 'zed', files: 1, bytes: 10 },
      { clientId: 'amy', files: 2, bytes: 2048 },
    ]);
    assert.deepStrictEqual(
      nodes.map((node) => [node.label, node.own, node.description]),
      [
        ['me', true, 'you · 0 files, 0 B'],
        ['amy', false, '2 files, 2.0 KiB'],
        ['zed', false, '1 file, 10 B'],
      ],
    );
    assert.ok(nodes.every((node) => node.contextValue === 'dfsClient'));
  });

  it('keeps the own client once when it also has files', () => {
    const nodes = buildClientNodes('me', [{ clientId: 'me', files: 3, bytes: 3 }]);
    assert.deepStrictEqual(nodes.map((node) => node.description), ['you · 3 files, 3 B']);
  });

  it('makes folders from "/" in names, folders before files, each sorted', () => {
    const tree = buildFileTree('alice', [record('b.txt', 1), record('docs/z.md', 2), record('a.txt', 3), record('docs/sub/deep.bin', 4), record('docs/a.md', 5)], 4, NOW);
    const shape = (nodes: (FolderNode | FileNode)[]): unknown[] => nodes.map((node) => (node.kind === 'folder' ? { [node.label]: shape(node.children) } : node.label));
    assert.deepStrictEqual(shape(tree), [{ docs: [{ sub: ['deep.bin'] }, 'a.md', 'z.md'] }, 'a.txt', 'b.txt']);
    const docs = tree[0] as FolderNode;
    assert.strictEqual(docs.path, 'docs');
    assert.strictEqual(docs.description, '3 files, 11 B');
    assert.strictEqual((docs.children[0] as FolderNode).path, 'docs/sub');
    assert.strictEqual(docs.contextValue, 'dfsFolder');
    assert.deepStrictEqual(buildFileTree('alice', [], 4, NOW), []);
  });

  it('describes a file with size and age, and a tooltip with size, stored time, generation, checksum and copies', () => {
    const [file] = buildFileTree('alice', [record('notes/plan.txt', 1536, 4, 3 * 3_600_000)], 4, NOW) as FolderNode[];
    const plan = file.children[0] as FileNode;
    assert.strictEqual(plan.label, 'plan.txt');
    assert.strictEqual(plan.description, '1.5 KiB · 3 hours ago');
    assert.strictEqual(plan.id, 'file:alice/notes/plan.txt');
    assert.strictEqual(plan.contextValue, 'dfsFile');
    assert.strictEqual(plan.underReplicated, false);
    assert.deepStrictEqual(plan.tooltip.split('\n'), [
      'alice/notes/plan.txt',
      'Size: 1.5 KiB (1,536 bytes)',
      'Stored: 2026-11-27T09:00:00.000Z (3 hours ago)',
      'Generation: 1',
      `SHA-256: ${'ab'.repeat(32)}`,
      'Copies: 4 of 4',
    ]);
  });

  it('marks a file with fewer copies than configured', () => {
    const [file] = buildFileTree('alice', [record('a', 1, 2)], expectedCopies(3), NOW) as FileNode[];
    assert.strictEqual(file.underReplicated, true);
    assert.match(file.description, /2\/4 copies$/);
    assert.match(file.tooltip, /Copies: 2 of 4 \(fewer than configured/);
    const [unknown] = buildFileTree('alice', [{ ...record('b', 1), copies: undefined }], 4, NOW) as FileNode[];
    assert.strictEqual(unknown.underReplicated, false, 'an unknown count is not reported as missing copies');
  });

  it('formats sizes and ages for people', () => {
    assert.deepStrictEqual([0, 1023, 1024, 1536, 10 * 1024, 5 * 1024 ** 3].map(formatBytes), ['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '10.0 KiB', '5.0 GiB']);
    assert.deepStrictEqual(
      [0, 59_000, 60_000, 2 * 3_600_000, 86_400_000, 40 * 86_400_000, 800 * 86_400_000, -5_000].map((age) => formatAge(NOW - age, NOW)),
      ['just now', 'just now', '1 minute ago', '2 hours ago', '1 day ago', '1 month ago', '2 years ago', 'just now'],
    );
  });
});

describe('extension model: cluster state', () => {
  const status = (reachable: boolean[], behind = 0): ClusterStatus => ({
    role: 'primary',
    address: '127.0.0.1:8000',
    writeQuorum: 3,
    replicas: reachable.map((up, index) => ({ id: index + 1, address: `127.0.0.1:${9000 + index}`, reachable: up, filesBehind: up ? 0 : behind, repairs: 0, lastError: up ? undefined : 'refused' })),
    files: 2,
    bytes: 2048,
    uptimeMs: 125_000,
    generation: 12,
    keepVersions: 5,
  });

  it('shows DFS up/total in the status bar, warning when a replica is down', () => {
    assert.deepStrictEqual(statusBarView({ kind: 'online', address: 'h:1', status: status([true, true, true]) }).text, '$(database) DFS 3/3');
    const degraded = statusBarView({ kind: 'online', address: 'h:1', status: status([true, false, true], 4) });
    assert.strictEqual(degraded.text, '$(database) DFS 2/3');
    assert.ok(degraded.warning);
    assert.match(degraded.tooltip, /4 file copies behind/);
    assert.strictEqual(statusBarView({ kind: 'offline', address: 'h:1', reason: 'refused' }).text, '$(debug-disconnect) DFS offline');
  });

  it('reports each replica with the files it is behind', () => {
    const report = statusReport({ kind: 'online', address: '127.0.0.1:8000', status: status([true, false], 7) });
    assert.strictEqual(report.headline, 'DFS: primary 127.0.0.1:8000 is up, 1 of 2 replicas up.');
    assert.deepStrictEqual(report.details, [
      'Primary 127.0.0.1:8000: up 2 min, 2 files, 2.0 KiB, write quorum 3',
      'Replica 1 127.0.0.1:9000: up, 0 files behind',
      'Replica 2 127.0.0.1:9001: DOWN, 7 files behind (refused)',
    ]);
    assert.match(statusReport({ kind: 'offline', address: 'h:1', reason: 'nothing is listening there' }).details.join(' '), /Start Cluster/);
  });

  it('names the leader, its epoch and the standbys when primaries are elected through etcd, and nothing of it for a lone primary', () => {
    const elected = { ...status([true, true]), leader: '10.0.0.1:8000', epoch: 42, leaderSinceMs: NOW, standbys: ['10.0.0.2:8000'] };
    const view = statusBarView({ kind: 'online', address: '10.0.0.2:8000', status: elected });
    assert.match(view.tooltip, /Leader 10\.0\.0\.1:8000 \(epoch 42\) since .*; standing by: 10\.0\.0\.2:8000\./);
    assert.ok(statusReport({ kind: 'online', address: '10.0.0.2:8000', status: elected }).details.some((line) => /^Leader 10\.0\.0\.1:8000 \(epoch 42\).*standing by: 10\.0\.0\.2:8000/.test(line)));
    const lone = { ...status([true, true]), leader: '127.0.0.1:8000', epoch: 0 };
    assert.doesNotMatch(statusBarView({ kind: 'online', address: '127.0.0.1:8000', status: lone }).tooltip, /Leader/);
    assert.ok(!statusReport({ kind: 'online', address: '127.0.0.1:8000', status: lone }).details.some((line) => /Leader/.test(line)));
  });
});

describe('extension model: settings, addresses and launches', () => {
  const settings = (values: Record<string, unknown>) => readSettings((key) => values[key], '/storage');

  it('fills in defaults: the report layout, the OS user as client id, global storage for data', () => {
    const defaults = settings({});
    assert.strictEqual(defaults.host, '127.0.0.1');
    assert.strictEqual(defaults.port, 8000);
    assert.strictEqual(defaults.replicas, 3);
    assert.strictEqual(defaults.basePort, 9000);
    assert.strictEqual(defaults.dataDir, '/storage');
    assert.strictEqual(defaults.writeQuorum, 'all');
    assert.match(defaults.clientId, /^[A-Za-z0-9_@+-]+$/);
  });

  it('refuses settings that cannot work, naming the setting', () => {
    assert.throws(() => settings({ clientId: 'has space' }), /dfs\.clientId/);
    assert.throws(() => settings({ port: 70000 }), /dfs\.port/);
    assert.throws(() => settings({ writeQuorum: 'most' }), /dfs\.writeQuorum/);
    assert.throws(() => settings({ writeQuorum: '4', replicas: 3 }), /dfs\.writeQuorum/);
    assert.throws(() => settings({ port: 9001 }), /inside the replica ports/);
    assert.strictEqual(settings({ writeQuorum: '2' }).writeQuorum, 2);
  });

  it('starts replicas before the primary, with the same layout flags', () => {
    const launches = clusterLaunches(settings({ replicas: 2, basePort: 7000, port: 6000, dataDir: '/d', writeQuorum: 'majority' }));
    assert.deepStrictEqual(
      launches.map((launch) => [launch.label, launch.key, launch.args.join(' ')]),
      [
        ['replica 1', 'replica:7000', 'replica --port 7000 --host 127.0.0.1 --base-port 7000 --replicas 2 --data-dir /d'],
        ['replica 2', 'replica:7001', 'replica --port 7001 --host 127.0.0.1 --base-port 7000 --replicas 2 --data-dir /d'],
        ['primary', 'primary:6000', 'primary --port 6000 --write-quorum majority --host 127.0.0.1 --base-port 7000 --replicas 2 --data-dir /d'],
      ],
    );
    assert.strictEqual(launchFor({ type: 'dfs', role: 'replica', port: 7001 }, settings({ basePort: 7000 })).label, 'replica 2');
  });

  it('passes the TLS certificate settings to every server it starts, resolved to absolute paths; half of them is an error', () => {
    const tls = settings({ tlsCaFile: 'certs/ca.pem', tlsCertFile: '/c/server.pem', tlsKeyFile: '/c/server.key' });
    assert.strictEqual(tls.tlsCaFile, path.resolve('certs/ca.pem'));
    for (const launch of clusterLaunches(tls)) {
      assert.ok(launch.args.join(' ').endsWith(`--tls-cert /c/server.pem --tls-key /c/server.key --tls-ca ${path.resolve('certs/ca.pem')}`), launch.args.join(' '));
    }
    assert.ok(!clusterLaunches(settings({ tlsCaFile: '/c/ca.pem' })).some((launch) => launch.args.includes('--tls-ca')), 'a CA alone is for this window only');
    assert.throws(() => settings({ tlsCertFile: '/c/server.pem', tlsCaFile: '/c/ca.pem' }), /dfs\.tlsCertFile and dfs\.tlsKeyFile go together/);
    assert.throws(() => settings({ tlsCertFile: '/c/server.pem', tlsKeyFile: '/c/server.key' }), /dfs\.tlsCertFile also needs dfs\.tlsCaFile/);
  });

  it('tells a client id from dfs.clientId apart from the default one a client key may replace', () => {
    assert.strictEqual(settings({ clientId: 'ana' }).clientIdFromSettings, true);
    assert.strictEqual(settings({ clientId: '  ' }).clientIdFromSettings, false);
  });

  it('reads the listening line the servers print', () => {
    assert.deepStrictEqual(parseListeningLine('2026-11-27T10:00:00.000Z [replica 1] listening on 127.0.0.1:9000'), { host: '127.0.0.1', port: 9000 });
    assert.deepStrictEqual(parseListeningLine('[primary] listening on [::1]:8000'), { host: '[::1]', port: 8000 });
    assert.strictEqual(parseListeningLine('storing under /x'), undefined);
  });

  it('maps dfs: paths to a client and a stored name', () => {
    assert.strictEqual(dfsPath('alice', 'docs/a b.txt'), '/alice/docs/a b.txt');
    assert.deepStrictEqual(parseDfsPath('/alice/docs/a b.txt'), { clientId: 'alice', name: 'docs/a b.txt' });
    assert.deepStrictEqual(parseDfsPath('/alice'), { clientId: 'alice', name: '' });
    assert.throws(() => parseDfsPath('/'), /client id/);
  });
});

describe('extension layering', () => {
  it('keeps model, upload, cluster and sync code free of the vscode module, so it unit-tests under plain mocha', () => {
    const pureDirs = ['model', 'upload', 'cluster', 'sync'].map((dir) => path.join(REPO_ROOT, 'extension', dir));
    const files = pureDirs.flatMap((dir) => readdirSync(dir).map((file) => path.join(dir, file)));
    assert.ok(files.length >= 10);
    for (const file of files) {
      assert.doesNotMatch(readFileSync(file, 'utf8'), /from 'vscode'|require\('vscode'\)/, `${path.relative(REPO_ROOT, file)} imports vscode`);
    }
  });
});
