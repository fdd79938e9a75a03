import * as assert from 'assert';
import * as http from 'http';
import type { AddressInfo } from 'net';
import { EtcdClient, EtcdError } from '../../server/ha/etcd-client';
import { makeCertificates } from '../support/certificates';
import { EtcdCluster, startEtcdClusterOrSkip } from '../support/etcd-cluster';
import { rejectsWithCode } from '../support/rejects';
import { waitFor } from '../support/wait';

function rejectsWith(promise: Promise<unknown>, code: EtcdError['code']): Promise<EtcdError> {
  return rejectsWithCode(promise, EtcdError, code);
}

describe('etcd client over the JSON gateway (real 3-member etcd)', function () {
  let cluster: EtcdCluster;
  let client: EtcdClient;

  before(async function () {
    cluster = await startEtcdClusterOrSkip(this);
  });

  after(async () => {
    await cluster?.destroy();
  });

  beforeEach(() => {
    client = new EtcdClient({ endpoints: cluster.endpoints(), timeoutMs: 500 });
  });

  afterEach(() => client?.close());

  it('puts, ranges (one key and a prefix), deletes, with revisions, versions and leases as etcd reports them', async () => {
    const first = await client.put('/t1/a', 'one');
    const second = await client.put('/t1/a', 'two ünïcode');
    await client.put('/t1/b', 'bee');
    await client.put('/t1x', 'not under the prefix /t1/');
    assert.ok(second > first);

    const one = await client.range('/t1/a');
    assert.strictEqual(one.kvs.length, 1);
    assert.deepStrictEqual(one.kvs[0], { key: '/t1/a', value: 'two ünïcode', createRevision: first, modRevision: second, version: 2, lease: '0' });
    assert.ok(one.revision >= second + 2);

    const prefixed = await client.range('/t1/', { prefix: true });
    assert.deepStrictEqual(prefixed.kvs.map((kv) => [kv.key, kv.value]), [['/t1/a', 'two ünïcode'], ['/t1/b', 'bee']]);

    assert.deepStrictEqual((await client.range('/t1/none')).kvs, []);
    assert.strictEqual(await client.deleteRange('/t1/', { prefix: true }), 2);
    assert.strictEqual(await client.deleteRange('/t1/', { prefix: true }), 0);
    assert.deepStrictEqual((await client.range('/t1x')).kvs.map((kv) => kv.value), ['not under the prefix /t1/']);
  });

  it('grants, refreshes, inspects and revokes leases; a key under a revoked lease is gone at once', async () => {
    const lease = await client.grantLease(5);
    assert.match(lease.id, /^\d+$/);
    assert.strictEqual(lease.ttl, 5);
    await client.put('/t2/leased', 'x', { lease: lease.id });
    assert.strictEqual((await client.range('/t2/leased')).kvs[0].lease, lease.id);

    assert.strictEqual(await client.keepAliveOnce(lease.id), 5);
    const alive = await client.leaseTimeToLive(lease.id, { keys: true });
    assert.strictEqual(alive.grantedTtl, 5);
    assert.ok(alive.ttl > 0 && alive.ttl <= 5, `ttl ${alive.ttl}`);
    assert.deepStrictEqual(alive.keys, ['/t2/leased']);

    await client.revokeLease(lease.id);
    assert.deepStrictEqual((await client.range('/t2/leased')).kvs, []);
    assert.strictEqual(await client.keepAliveOnce(lease.id), 0, 'a keep-alive of a revoked lease answers TTL 0');
    assert.strictEqual((await client.leaseTimeToLive(lease.id)).ttl, -1);
    await client.revokeLease(lease.id); // already gone: not an error
    await rejectsWith(client.put('/t2/leased', 'x', { lease: lease.id }), 'LEASE_NOT_FOUND');
  });

  it('raises a TTL below etcd\'s minimum and lets a lease expire by itself', async () => {
    // etcd's minimum is 1.5 election timeouts rounded up to a second: 1 s with 500 ms.
    const lease = await client.grantLease(1);
    assert.strictEqual(lease.ttl, 1);
    await client.put('/t3/short', 'x', { lease: lease.id });
    const granted = Date.now();
    await waitFor(async () => (await client.range('/t3/short')).kvs.length === 0, 'the leased key to expire');
    assert.ok(Date.now() - granted >= 900, 'the key outlived most of its one-second lease');
    assert.strictEqual(await client.keepAliveOnce(lease.id), 0);
  });

  it('transactions compare on CREATE, MOD, VERSION, VALUE and LEASE, and run success or failure ops', async () => {
    const created = await client.put('/t4/k', 'v1');
    const lease = await client.grantLease(10);
    const cases: Array<[Parameters<EtcdClient['txn']>[0][number], boolean]> = [
      [{ key: '/t4/k', target: 'CREATE', result: 'EQUAL', operand: created }, true],
      [{ key: '/t4/k', target: 'CREATE', result: 'EQUAL', operand: 0 }, false],
      [{ key: '/t4/absent', target: 'CREATE', result: 'EQUAL', operand: 0 }, true],
      [{ key: '/t4/k', target: 'MOD', result: 'LESS', operand: created + 1 }, true],
      [{ key: '/t4/k', target: 'MOD', result: 'GREATER', operand: created }, false],
      [{ key: '/t4/k', target: 'VERSION', result: 'EQUAL', operand: 1 }, true],
      [{ key: '/t4/k', target: 'VERSION', result: 'NOT_EQUAL', operand: 1 }, false],
      [{ key: '/t4/k', target: 'VALUE', result: 'EQUAL', operand: 'v1' }, true],
      [{ key: '/t4/k', target: 'VALUE', result: 'EQUAL', operand: 'v2' }, false],
      [{ key: '/t4/k', target: 'LEASE', result: 'EQUAL', operand: '0' }, true],
      [{ key: '/t4/k', target: 'LEASE', result: 'EQUAL', operand: lease.id }, false],
    ];
    for (const [compare, expected] of cases) {
      const result = await client.txn([compare], [{ type: 'range', key: '/t4/k' }], [{ type: 'range', key: '/t4/absent' }]);
      assert.strictEqual(result.succeeded, expected, JSON.stringify(compare));
      assert.deepStrictEqual(result.responses.map((response) => response.type), ['range']);
      const kvs = result.responses[0].type === 'range' ? result.responses[0].kvs : [];
      assert.strictEqual(kvs.length, expected ? 1 : 0);
    }

    // Several compares must all hold; success puts (under a lease) and deletes in one revision.
    const write = await client.txn(
      [
        { key: '/t4/k', target: 'VALUE', result: 'EQUAL', operand: 'v1' },
        { key: '/t4/new', target: 'CREATE', result: 'EQUAL', operand: 0 },
      ],
      [
        { type: 'put', key: '/t4/new', value: 'n', lease: lease.id },
        { type: 'delete', key: '/t4/k' },
      ],
    );
    assert.strictEqual(write.succeeded, true);
    assert.deepStrictEqual(write.responses, [{ type: 'put', revision: write.revision }, { type: 'delete', deleted: 1 }]);
    const fresh = (await client.range('/t4/new')).kvs[0];
    assert.strictEqual(fresh.createRevision, write.revision, 'a key created by a transaction has the transaction\'s revision');
    assert.strictEqual(fresh.lease, lease.id);

    const again = await client.txn([{ key: '/t4/new', target: 'CREATE', result: 'EQUAL', operand: 0 }], [{ type: 'put', key: '/t4/new', value: 'overwritten' }], [{ type: 'range', key: '/t4/new' }]);
    assert.strictEqual(again.succeeded, false);
    assert.deepStrictEqual(again.responses[0], { type: 'range', kvs: [fresh] });
    await client.revokeLease(lease.id);
  });

  it('watches a prefix: events from a start revision on, PUT with the new value, DELETE, until aborted', async () => {
    const first = await client.put('/t7/a', 'before the watch');
    const events: Array<[string, string, string]> = [];
    const controller = new AbortController();
    const watching = client.watch('/t7/', { prefix: true, startRevision: first, signal: controller.signal, onEvent: (event) => events.push([event.type, event.kv.key, event.kv.value]) });
    await client.put('/t7/b', 'bee');
    await client.put('/t7x', 'outside the prefix');
    await client.deleteRange('/t7/a');
    await waitFor(() => events.length >= 3, 'three events');
    controller.abort();
    await watching;
    assert.deepStrictEqual(events, [['PUT', '/t7/a', 'before the watch'], ['PUT', '/t7/b', 'bee'], ['DELETE', '/t7/a', '']]);
  });

  it('reports etcd\'s refusals as REJECTED with its message, and retries nothing', async () => {
    const error = await rejectsWith(client.put('', 'empty key'), 'REJECTED');
    assert.match(error.message, /key is not provided/);
    assert.strictEqual(error.mayHaveApplied, false);
  });

  it('moves on to the next endpoint when a member is killed, then serves from the rest', async () => {
    await client.put('/t5/before', 'b');
    // A follower, so that no raft election stalls the cluster meanwhile; the client tries it first.
    const victim = await cluster.followerIndex();
    client.close();
    client = new EtcdClient({ endpoints: [victim, ...[0, 1, 2].filter((index) => index !== victim)].map((index) => cluster.members[index].clientUrl), timeoutMs: 500 });
    await cluster.kill(victim);
    try {
      const started = Date.now();
      for (let round = 0; round < 5; round++) {
        await client.put(`/t5/k${round}`, String(round));
      }
      assert.deepStrictEqual((await client.range('/t5/', { prefix: true })).kvs.map((kv) => kv.value), ['b', '0', '1', '2', '3', '4']);
      assert.ok(Date.now() - started < 2_000, 'a refused connection costs no timeout');
      const onlyDead = new EtcdClient({ endpoints: [cluster.members[victim].clientUrl], timeoutMs: 500 });
      const error = await rejectsWith(onlyDead.range('/t5/before'), 'UNAVAILABLE');
      assert.match(error.message, /ECONNREFUSED/);
      assert.strictEqual(error.mayHaveApplied, false, 'a refused connection carried nothing');
      const watchError = await rejectsWith(onlyDead.watch('/t5/', { signal: new AbortController().signal, onEvent: () => undefined }), 'UNAVAILABLE');
      assert.match(watchError.message, /ECONNREFUSED/);
      onlyDead.close();
    } finally {
      await cluster.restart(victim);
    }
  });

  it('times out on a paused member within the attempt timeout and goes on to a live one', async () => {
    const victim = await cluster.followerIndex();
    const live = [0, 1, 2].find((index) => index !== victim)!;
    // The paused member is the first one the client tries.
    const pausedFirst = new EtcdClient({ endpoints: [cluster.members[victim].clientUrl, cluster.members[live].clientUrl], timeoutMs: 300 });
    await pausedFirst.range('/t6'); // opens a keep-alive connection to the member about to hang
    cluster.pause(victim);
    try {
      const started = Date.now();
      await pausedFirst.put('/t6/k', 'v');
      const took = Date.now() - started;
      assert.ok(took >= 290 && took < 1_500, `the put took ${took} ms: one 300 ms timeout, then the live member`);

      const onlyPaused = new EtcdClient({ endpoints: [cluster.members[victim].clientUrl], timeoutMs: 300 });
      const error = await rejectsWith(onlyPaused.put('/t6/k', 'v2'), 'TIMEOUT');
      assert.strictEqual(error.mayHaveApplied, true, 'a write that reached a member and got no answer may have been applied');

      const controller = new AbortController();
      const pending = onlyPaused.range('/t6/k', { timeoutMs: 10_000, signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      const abortStarted = Date.now();
      await rejectsWith(pending, 'ABORTED');
      assert.ok(Date.now() - abortStarted < 1_000, 'the abort ended the call, not its 10 s timeout');

      const noRetry = new EtcdClient({ endpoints: [cluster.members[victim].clientUrl, cluster.members[live].clientUrl], timeoutMs: 300 });
      await rejectsWith(noRetry.put('/t6/k', 'v3', { retryAfterSend: false }), 'TIMEOUT');
      onlyPaused.close();
      noRetry.close();
    } finally {
      cluster.resume(victim);
      pausedFirst.close();
    }
    assert.deepStrictEqual((await client.range('/t6/k')).kvs.map((kv) => kv.value).length, 1);
  });

  it('speaks https to members that present a certificate, checked against a CA file', async function () {
    const certificates = await makeCertificates();
    const secure = await EtcdCluster.start({ members: 1, tls: certificates });
    try {
      const trusting = await EtcdClient.fromFiles({ endpoints: secure.endpoints(), caFile: certificates.ca });
      await trusting.put('/tls', 'over https');
      assert.strictEqual((await trusting.range('/tls')).kvs[0].value, 'over https');
      trusting.close();
      const untrusting = new EtcdClient({ endpoints: secure.endpoints() });
      const error = await rejectsWith(untrusting.range('/tls'), 'UNAVAILABLE');
      assert.match(error.message, /SELF_SIGNED|UNABLE_TO_VERIFY|certificate/i);
      untrusting.close();
    } finally {
      await secure.destroy();
    }
  });

  it('presents a client certificate to members that require one (--client-cert-auth); without one it is refused', async function () {
    const certificates = await makeCertificates();
    const strict = await EtcdCluster.start({ members: 1, tls: certificates, clientCertAuth: true });
    try {
      const anonymous = await EtcdClient.fromFiles({ endpoints: strict.endpoints(), caFile: certificates.ca });
      const error = await rejectsWith(anonymous.range('/mtls'), 'UNAVAILABLE');
      assert.match(error.message, /certificate|ECONNRESET|EPROTO/i);
      anonymous.close();
      // The test CA's one certificate has no extended key usage, so it serves as a client certificate too.
      const identified = await EtcdClient.fromFiles({ endpoints: strict.endpoints(), caFile: certificates.ca, certFile: certificates.cert, keyFile: certificates.key });
      const written = await identified.put('/mtls', 'with a client certificate');
      assert.strictEqual((await identified.range('/mtls')).kvs[0].value, 'with a client certificate');
      const controller = new AbortController();
      const events: string[] = [];
      const watching = identified.watch('/mtls', { startRevision: written + 1, signal: controller.signal, onEvent: (event) => events.push(event.kv.value) });
      await identified.put('/mtls', 'watched over https');
      await waitFor(() => events.length === 1, 'the watch event over https');
      controller.abort();
      await watching;
      assert.deepStrictEqual(events, ['watched over https']);
      identified.close();
    } finally {
      await strict.destroy();
    }
  });

  it('says what answered when an endpoint is not etcd', async () => {
    const impostor = http.createServer((_, response) => response.end('<html>hello</html>'));
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    const port = (impostor.address() as AddressInfo).port;
    try {
      const confused = new EtcdClient({ endpoints: [`http://127.0.0.1:${port}`] });
      const error = await rejectsWith(confused.range('/x'), 'PROTOCOL');
      assert.match(error.message, /other than JSON: <html>/);
      confused.close();
    } finally {
      await new Promise((resolve) => impostor.close(resolve));
    }
  });
});
