import * as assert from 'assert';
import * as path from 'path';
import { clientKeyStorageKey, readClusters, resolveConnection } from '../../extension/model/cluster-choice';
import { ClusterLayout, ServerNode, StartedHere, clusterNodes, downReplicaAdvice, downReplicas, inVsCodeWords, restartLabel } from '../../extension/model/cluster-health';
import { ClusterState, statusReport } from '../../extension/model/cluster-state';
import { readSettings } from '../../extension/model/settings';
import type { ClusterStatus, ReplicaStatus } from '../../server/protocol';

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);

const replica = (id: number, up: boolean, behind = 0, extra: Partial<ReplicaStatus> = {}): ReplicaStatus => ({
  id,
  address: `127.0.0.1:${9000 + id - 1}`,
  reachable: up,
  filesBehind: behind,
  lastSyncMs: NOW - 3 * 60_000,
  repairs: 0,
  lastError: up ? undefined : 'connect ECONNREFUSED',
  ...extra,
});

const online = (replicas: ReplicaStatus[], extra: Partial<ClusterStatus> = {}): ClusterState => ({
  kind: 'online',
  address: '127.0.0.1:8000',
  status: { role: 'primary', address: '127.0.0.1:8000', writeQuorum: 3, replicas, files: 2, bytes: 2048, uptimeMs: 1_000, generation: 7, keepVersions: 5, leader: '127.0.0.1:8000', epoch: 0, ...extra },
});

/** This window started the given ports (role:port -> running/stopped). */
const layoutWith = (started: Record<string, StartedHere> | undefined): ClusterLayout => ({
  primaries: ['127.0.0.1:8000'],
  basePort: 9000,
  startedHere: started ? (role, port) => started[`${role}:${port}`] : undefined,
  replicaPortsHere: started ? Object.keys(started).filter((key) => key.startsWith('replica:')).map((key) => Number(key.split(':')[1])) : [],
});

const servers = (nodes: ReturnType<typeof clusterNodes>): ServerNode[] => nodes.filter((node): node is ServerNode => node.kind === 'server');

describe('extension model: the Cluster view', () => {
  it('lists the primary and every replica: up or down, files behind, last sync', () => {
    const nodes = servers(clusterNodes(online([replica(1, true), replica(2, false, 3), replica(3, true, 1, { lastSyncMs: undefined })]), layoutWith(undefined), NOW));
    assert.deepStrictEqual(
      nodes.map((node) => [node.label, node.description, node.health]),
      [
        ['primary 127.0.0.1:8000', 'up · 2 files, 2.0 KiB · not started here', 'up'],
        ['replica 1', 'up · in step · synced 3 minutes ago · not started here', 'up'],
        ['replica 2', 'down · 3 files behind · synced 3 minutes ago · not started here', 'down'],
        ['replica 3', 'up · 1 file behind · never fully synced · not started here', 'behind'],
      ],
    );
    assert.match(nodes[2].tooltip, /State: down \(connect ECONNREFUSED\)/);
    assert.match(nodes[2].tooltip, /Last sync: 2026-12-01T11:57:00\.000Z \(3 minutes ago\)/);
    assert.match(nodes[2].tooltip, /Not started from this window/);
    assert.ok(nodes.every((node) => node.contextValue === 'dfsServerExternal' && node.launchKey === undefined));
  });

  it('gives servers this window started Restart and Stop (running) or Restart (exited), matched by port', () => {
    const nodes = servers(clusterNodes(online([replica(1, true), replica(2, false, 2)]), layoutWith({ 'primary:8000': 'running', 'replica:9000': 'running', 'replica:9001': 'stopped' }), NOW));
    assert.deepStrictEqual(
      nodes.map((node) => [node.label, node.contextValue, node.launchKey]),
      [
        ['primary 127.0.0.1:8000', 'dfsServerRunningHere', 'primary:8000'],
        ['replica 1', 'dfsServerRunningHere', 'replica:9000'],
        ['replica 2', 'dfsServerStoppedHere', 'replica:9001'],
      ],
    );
    assert.strictEqual(nodes[2].description, 'down · 2 files behind · synced 3 minutes ago');
    assert.match(nodes[2].tooltip, /Restart starts it again/);
  });

  it('finds a replica\'s port from its id when STATUS hides addresses (a client key\'s view)', () => {
    const hidden = online([{ ...replica(2, false), address: '' }]);
    const [, node] = servers(clusterNodes(hidden, layoutWith({ 'replica:9001': 'stopped' }), NOW));
    assert.strictEqual(node.launchKey, 'replica:9001');
  });

  it('names the leader and its epoch, and lists the standbys, when primaries are elected through etcd', () => {
    const elected = online([replica(1, true)], { leader: '10.0.0.1:8000', epoch: 42, standbys: ['10.0.0.2:8000', '10.0.0.3:8000'] });
    const nodes = servers(clusterNodes(elected, layoutWith(undefined), NOW));
    assert.deepStrictEqual(
      nodes.map((node) => [node.role, node.label, node.description]),
      [
        ['primary', 'primary 10.0.0.1:8000', 'up · leader, epoch 42 · 2 files, 2.0 KiB · not started here'],
        ['standby', 'standby 10.0.0.2:8000', 'standing by · not started here'],
        ['standby', 'standby 10.0.0.3:8000', 'standing by · not started here'],
        ['replica', 'replica 1', 'up · in step · synced 3 minutes ago · not started here'],
      ],
    );
    // A lone primary (epoch 0) has no leadership to show and no standbys.
    assert.ok(!servers(clusterNodes(online([], { standbys: ['x:1'] }), layoutWith(undefined), NOW)).some((node) => node.role === 'standby'));
  });

  it('with no primary: nothing when this window runs nothing (the welcome content shows), else the servers it started', () => {
    const offline: ClusterState = { kind: 'offline', address: '127.0.0.1:8000', reason: 'connect ECONNREFUSED' };
    assert.deepStrictEqual(clusterNodes(offline, layoutWith(undefined), NOW), []);
    const nodes = servers(clusterNodes(offline, layoutWith({ 'primary:8000': 'stopped', 'replica:9000': 'running' }), NOW));
    assert.deepStrictEqual(
      nodes.map((node) => [node.label, node.description, node.contextValue, node.health]),
      [
        ['primary 127.0.0.1:8000', 'down · does not answer', 'dfsServerStoppedHere', 'down'],
        ['replica 1', 'running · no primary reports on it', 'dfsServerRunningHere', 'unknown'],
      ],
    );
    const readOnly = clusterNodes({ kind: 'readOnly', address: '127.0.0.1:8000', reason: 'refused', replicasUp: 2, replicas: 3 }, layoutWith(undefined), NOW);
    assert.deepStrictEqual(
      readOnly.map((node) => node.label),
      ['primary 127.0.0.1:8000', 'Read-only: 2 of 3 replicas answer'],
    );
    const readOnlyHere = clusterNodes({ kind: 'readOnly', address: '127.0.0.1:8000', reason: 'refused', replicasUp: 1, replicas: 1 }, layoutWith({ 'primary:8000': 'stopped', 'replica:9000': 'running' }), NOW);
    assert.deepStrictEqual(
      readOnlyHere.map((node) => [node.label, node.kind === 'server' ? node.contextValue : node.kind]),
      [
        ['primary 127.0.0.1:8000', 'dfsServerStoppedHere'],
        ['Read-only: 1 of 1 replicas answer', 'note'],
        ['replica 1', 'dfsServerRunningHere'],
      ],
    );
    assert.deepStrictEqual(clusterNodes({ kind: 'unknown' }, layoutWith(undefined), NOW).map((node) => node.kind), ['note']);
  });

  it('offers Restart Replica only for down replicas this window started, and says what to do in VS Code\'s words', () => {
    const nodes = clusterNodes(online([replica(1, false), replica(2, false), replica(3, true)]), layoutWith({ 'replica:9000': 'stopped' }), NOW);
    const down = downReplicas(nodes);
    assert.deepStrictEqual(down.restartable.map((node) => node.label), ['replica 1']);
    assert.deepStrictEqual(down.elsewhere.map((node) => node.label), ['replica 2']);
    assert.strictEqual(restartLabel(down), 'Restart Replica');
    const advice = downReplicaAdvice(down);
    assert.match(advice, /Replica 1 was started from this window: Restart \(here, or in the Cluster view\) starts it again/);
    assert.match(advice, /Replica 2 was not started from this window: start it where it runs, then run DFS: Refresh\./);
    assert.match(advice, /dfs\.writeQuorum \(Open Settings\)/);
    assert.doesNotMatch(advice, /\bdfs (status|replica|cluster)\b/, 'no command line');

    const both = downReplicas(clusterNodes(online([replica(1, false), replica(2, false)]), layoutWith({ 'replica:9000': 'stopped', 'replica:9001': 'running' }), NOW));
    assert.strictEqual(restartLabel(both), 'Restart Replicas');
    assert.match(downReplicaAdvice(both), /^Replica 1 and Replica 2 were started from this window: Restart .* starts them again, and the primary catches them up\./);
    const none = downReplicas(clusterNodes(online([replica(1, true)]), layoutWith(undefined), NOW));
    assert.strictEqual(restartLabel(none), undefined);
    assert.strictEqual(downReplicaAdvice(none), '');
  });

  it('Show Cluster Status says when each replica was last in step', () => {
    const report = statusReport(online([replica(1, true), replica(2, false, 4, { lastSyncMs: undefined })]), NOW);
    assert.deepStrictEqual(report.details.slice(1), ['Replica 1 127.0.0.1:9000: up, 0 files behind, last sync 3 minutes ago', 'Replica 2 127.0.0.1:9001: DOWN, 4 files behind (connect ECONNREFUSED)']);
  });

  it('takes the command-line advice out of the primary\'s quorum refusal', () => {
    const refusal = 'DFS upload: 0 uploaded, 1 failed. First failure: a.txt: only 1 of 2 replicas prepared, 2 required (replica 2 (127.0.0.1:9001): connect ECONNREFUSED). Nothing was stored. Start the missing replicas (dfs status shows which) or lower the write quorum.';
    assert.strictEqual(inVsCodeWords(refusal), 'DFS upload: 0 uploaded, 1 failed. First failure: a.txt: only 1 of 2 replicas prepared, 2 required (replica 2 (127.0.0.1:9001): connect ECONNREFUSED). Nothing was stored.');
    assert.strictEqual(inVsCodeWords('nothing to change'), 'nothing to change');
  });
});

describe('extension model: several clusters (dfs.clusters)', () => {
  const base = readSettings((key) => ({ host: '127.0.0.1', port: 8000, clientId: 'me', tlsCaFile: '/etc/dfs/local-ca.pem' } as Record<string, unknown>)[key], '/storage');

  it('reads named connections, each checked, with relative TLS paths made absolute', () => {
    const clusters = readClusters([
      { name: 'prod', servers: ['10.0.0.1:8000', '10.0.0.2:8000'], clientId: 'alice', tlsCaFile: 'certs/prod-ca.pem', replicas: 2, basePort: 9100 },
      { name: 'lab', servers: ['lab.example:8000'] },
    ]);
    assert.deepStrictEqual(clusters, [
      { name: 'prod', servers: [{ host: '10.0.0.1', port: 8000 }, { host: '10.0.0.2', port: 8000 }], clientId: 'alice', tlsCaFile: path.resolve('certs/prod-ca.pem'), replicas: 2, basePort: 9100 },
      { name: 'lab', servers: [{ host: 'lab.example', port: 8000 }] },
    ]);
    assert.deepStrictEqual(readClusters(undefined), []);
    assert.deepStrictEqual(readClusters([]), []);
  });

  it('says which entry and which field is wrong', () => {
    const refuses = (value: unknown, message: RegExp): void => assert.throws(() => readClusters(value), (error: Error & { code?: string }) => error.code === 'BAD_HEADER' && message.test(error.message));
    refuses({ name: 'x' }, /^dfs\.clusters is .*expected a list/);
    refuses(['x'], /^dfs\.clusters\[0\] is "x"/);
    refuses([{ servers: ['h:1'] }], /^dfs\.clusters\[0\]\.name is undefined/);
    refuses([{ name: 'a', servers: ['h:1'] }, { name: 'a', servers: ['h:2'] }], /^dfs\.clusters\[1\]\.name "a" is used by an earlier entry too/);
    refuses([{ name: 'a', servers: [] }], /^dfs\.clusters\[0\] \("a"\)\.servers is \[\]; expected a list of "HOST:PORT" strings, at least one/);
    refuses([{ name: 'a', servers: ['no-port'] }], /^dfs\.clusters\[0\] \("a"\)\.servers: /);
    refuses([{ name: 'a', servers: ['h:1'], clientId: 'has space' }], /^dfs\.clusters\[0\] \("a"\)\.clientId: /);
    refuses([{ name: 'a', servers: ['h:1'], replicas: -1 }], /replicas is -1; expected a whole number from 0 to 64/);
    refuses([{ name: 'a', servers: ['h:1'], host: 'h' }], /has "host", which DFS does not know/);
  });

  it('with no choice, or dfs.clusters empty, the dfs.* settings are used unchanged', () => {
    const clusters = readClusters([{ name: 'prod', servers: ['10.0.0.1:8000'] }]);
    assert.strictEqual(resolveConnection(base, clusters, undefined).settings, base);
    assert.strictEqual(resolveConnection(base, [], undefined).settings, base);
    assert.strictEqual(base.cluster, undefined);
  });

  it('a chosen cluster brings its servers, client id and TLS CA; Start Cluster\'s own settings stay', () => {
    const clusters = readClusters([
      { name: 'prod', servers: ['10.0.0.1:8000', '10.0.0.2:8000'], clientId: 'alice', tlsCaFile: '/etc/dfs/prod-ca.pem', replicas: 2 },
      { name: 'lab', servers: ['lab.example:8000'] },
    ]);
    const prod = resolveConnection(base, clusters, 'prod');
    assert.strictEqual(prod.current?.name, 'prod');
    assert.deepStrictEqual(prod.settings.servers, [{ host: '10.0.0.1', port: 8000 }, { host: '10.0.0.2', port: 8000 }]);
    assert.strictEqual(prod.settings.clientId, 'alice');
    assert.strictEqual(prod.settings.clientIdFromSettings, true);
    assert.strictEqual(prod.settings.tlsCaFile, '/etc/dfs/prod-ca.pem');
    assert.strictEqual(prod.settings.replicas, 2);
    assert.strictEqual(prod.settings.cluster, 'prod');
    assert.deepStrictEqual([prod.settings.host, prod.settings.port, prod.settings.dataDir], [base.host, base.port, base.dataDir]);

    const lab = resolveConnection(base, clusters, 'lab').settings;
    assert.strictEqual(lab.clientId, 'me', 'no clientId: dfs.clientId');
    assert.strictEqual(lab.tlsCaFile, undefined, "the dfs.tlsCaFile of this machine's cluster is not another cluster's CA");
    assert.strictEqual(lab.replicas, base.replicas);
  });

  it('a remembered cluster that was removed from dfs.clusters falls back to the dfs.* settings and says so', () => {
    const choice = resolveConnection(base, readClusters([{ name: 'lab', servers: ['lab.example:8000'] }]), 'gone');
    assert.strictEqual(choice.settings, base);
    assert.strictEqual(choice.current, undefined);
    assert.match(choice.note ?? '', /"gone" chosen earlier is no longer in dfs\.clusters/);
  });

  it('keeps each cluster\'s client key under its own name, the dfs.* one where it always was', () => {
    assert.strictEqual(clientKeyStorageKey(undefined), 'dfs.clientKey');
    assert.strictEqual(clientKeyStorageKey('prod'), 'dfs.clientKey:prod');
    assert.notStrictEqual(clientKeyStorageKey('prod'), clientKeyStorageKey('lab'));
  });
});
