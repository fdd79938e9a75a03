import * as assert from 'assert';
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import { TestCluster } from '../support/cluster';
import { CuttingRelay } from '../support/cutting-relay';
import { freePortRange } from '../support/ports';
import { runDfs, stopChild } from '../support/processes';
import { waitFor } from '../support/wait';

/** Our clients with several primary addresses, and reading from the replicas when no primary answers. */
describe('clients: several primaries, and read-only from the replicas', function () {
  let cluster: TestCluster;
  let work: string;

  afterEach(async () => {
    await cluster?.destroy();
    if (work) {
      await fs.rm(work, { recursive: true, force: true });
    }
  });

  const dfsWith = (servers: string, ...args: string[]) =>
    runDfs([...args, '--server', servers, '--base-port', String(cluster.basePort), '--replicas', String(cluster.replicaCount), '--client', 'ha'], { cwd: work });

  const write = async (name: string, content: string): Promise<string> => {
    const local = path.join(work, name);
    await fs.writeFile(local, content);
    return local;
  };

  it('uses the second address when nothing listens at the first', async () => {
    cluster = await TestCluster.start({ replicas: 2 });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ha-'));
    const dead = `127.0.0.1:${await freePortRange(1)}`;
    const servers = `${dead},${cluster.address}`;
    await write('first.txt', 'through the second address');

    const upload = await dfsWith(servers, 'upload', 'first.txt');
    assert.strictEqual(upload.code, 0, upload.stderr);
    assert.match(upload.stdout, /uploaded first\.txt .*generation \d+, 3 copies/);
    assert.strictEqual(await fs.readFile(path.join(cluster.replicaRoot(1), 'ha', 'first.txt'), 'utf8'), 'through the second address');
    const ls = await dfsWith(servers, 'ls', '--json');
    assert.strictEqual(ls.code, 0, ls.stderr);
    assert.deepStrictEqual(JSON.parse(ls.stdout).map((file: { name: string }) => file.name), ['first.txt']);
    assert.doesNotMatch(ls.stderr, /READ-ONLY/);

    // One client remembers which address answered: after the first request it goes straight there.
    const client = new DfsClient({ primaries: [{ host: '127.0.0.1', port: Number(dead.split(':')[1]) }, { host: '127.0.0.1', port: cluster.primaryPort }], clientId: 'ha' });
    assert.strictEqual((await client.files()).length, 1);
    assert.strictEqual(client.address, cluster.address);
  });

  it('follows a primary killed and started again on the address listed second, without the caller doing anything', async () => {
    cluster = await TestCluster.start({ replicas: 2 });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ha-'));
    const first = cluster.primaryPort;
    const second = await freePortRange(1);
    const client = new DfsClient({ primaries: [{ host: '127.0.0.1', port: first }, { host: '127.0.0.1', port: second }], clientId: 'ha', failoverWaitMs: 20_000 });
    const before = await client.uploadFile(await write('before.txt', 'v1'), 'before.txt');
    assert.strictEqual(client.address, `127.0.0.1:${first}`);

    await stopChild(cluster.primary.child, 'SIGKILL');
    // The upload starts while nothing listens anywhere; the primary comes up on the second address meanwhile.
    const restarting = cluster.startPrimary(second);
    const after = await client.uploadFile(await write('after.txt', 'v2'), 'after.txt');
    await restarting;
    assert.ok(after.generation > before.generation, `${after.generation} after ${before.generation}`);
    assert.strictEqual(client.address, `127.0.0.1:${second}`);
    assert.strictEqual(await fs.readFile(path.join(cluster.primaryRoot(), 'ha', 'after.txt'), 'utf8'), 'v2');
    assert.strictEqual(await fs.readFile(path.join(cluster.replicaRoot(0), 'ha', 'after.txt'), 'utf8'), 'v2');
    const status = await client.status();
    assert.strictEqual(status.role === 'primary' && status.address, `127.0.0.1:${second}`);
    assert.deepStrictEqual((await client.files()).map((file) => file.name), ['after.txt', 'before.txt']);
  });

  it('sends an upload cut before its last byte again, once, through the next address; the cut one stored nothing', async () => {
    cluster = await TestCluster.start({ replicas: 2 });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ha-'));
    const content = randomBytes(4 * 1024 * 1024);
    // A leader dying mid-upload: the path to it breaks after 1 MiB and nothing listens there any more.
    const relay = await CuttingRelay.start(cluster.primaryPort, { cut: { at: 'after-bytes', bytes: 1024 * 1024 }, afterCut: 'refuse' });
    const client = new DfsClient({ primaries: [{ host: '127.0.0.1', port: relay.port }, { host: '127.0.0.1', port: cluster.primaryPort }], clientId: 'ha' });
    const local = path.join(work, 'big.bin');
    await fs.writeFile(local, content);
    const receipt = await client.uploadFile(local, 'big.bin');
    await relay.cut;
    assert.strictEqual(receipt.sha256, createHash('sha256').update(content).digest('hex'));
    assert.strictEqual(client.address, cluster.address);
    assert.deepStrictEqual((await client.versions('big.bin')).map((version) => version.generation), [receipt.generation], 'one version: the cut transfer left none');
    for (const root of cluster.allRoots()) {
      assert.ok((await fs.readFile(path.join(root, 'ha', 'big.bin'))).equals(content), root);
    }
  });

  it('settles an upload whose answer was lost by asking the primary that took over on the next address: stored, reported once', async () => {
    cluster = await TestCluster.start({ replicas: 2 });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ha-'));
    // A leader dying as it answers.
    const relay = await CuttingRelay.start(cluster.primaryPort, { cut: { at: 'after-the-answer' }, afterCut: 'refuse' });
    const second = await freePortRange(1);
    const client = new DfsClient({ primaries: [{ host: '127.0.0.1', port: relay.port }, { host: '127.0.0.1', port: second }], clientId: 'ha', failoverWaitMs: 20_000, outcomeWaitMs: 30_000 });
    const outcome = client.upload('answer.txt', [Buffer.from('committed, answer lost')], 22);
    await relay.cut;
    await stopChild(cluster.primary.child, 'SIGKILL');
    await cluster.startPrimary(second);
    const receipt = await outcome;
    assert.strictEqual(receipt.size, 22);
    assert.strictEqual(client.address, `127.0.0.1:${second}`);
    const versions = await client.versions('answer.txt');
    assert.deepStrictEqual(versions.map((version) => version.generation), [receipt.generation], 'stored once, not sent again');
    assert.strictEqual(await fs.readFile(path.join(cluster.primaryRoot(), 'ha', 'answer.txt'), 'utf8'), 'committed, answer lost');
  });

  it('with every primary down, ls, get and versions read from the replicas saying once that the cluster is read-only; an upload fails saying what to do', async () => {
    cluster = await TestCluster.start({ replicas: 3 });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ha-'));
    const servers = `${cluster.address},127.0.0.1:${await freePortRange(1)}`;
    assert.strictEqual((await dfsWith(servers, 'upload', await write('kept.txt', 'version one'))).code, 0);
    const overwrite = await dfsWith(servers, 'upload', await write('kept.txt', 'version two'));
    assert.strictEqual(overwrite.code, 0, overwrite.stderr);
    const current = (await cluster.client('ha').files())[0];
    await stopChild(cluster.primary.child, 'SIGKILL');

    const ls = await dfsWith(servers, 'ls', '--json', '--failover-wait', '1000');
    assert.strictEqual(ls.code, 0, ls.stderr);
    const listed = JSON.parse(ls.stdout);
    assert.deepStrictEqual(
      listed.map((file: { name: string; generation: number; sha256: string; copies: number }) => [file.name, file.generation, file.sha256, file.copies]),
      [['kept.txt', current.generation, current.sha256, 3]],
    );
    const notices = ls.stderr.split('\n').filter((line) => /READ-ONLY/.test(line));
    assert.strictEqual(notices.length, 1, ls.stderr);
    assert.match(notices[0], /no primary answers .*read from the replicas \(3 of 3 answer\).*read-only until a primary is back/);

    const copy = path.join(work, 'copy.txt');
    const get = await dfsWith(servers, 'get', 'kept.txt', '-o', copy, '--failover-wait', '1000');
    assert.strictEqual(get.code, 0, get.stderr);
    assert.match(get.stdout, new RegExp(`downloaded kept\\.txt generation ${current.generation} .*verified`));
    assert.strictEqual(await fs.readFile(copy, 'utf8'), 'version two');
    assert.strictEqual(get.stderr.split('\n').filter((line) => /READ-ONLY/.test(line)).length, 1, get.stderr);

    const versions = await dfsWith(servers, 'versions', 'kept.txt', '--json', '--failover-wait', '1000');
    assert.strictEqual(versions.code, 0, versions.stderr);
    assert.deepStrictEqual(
      JSON.parse(versions.stdout).map((version: { current: boolean }) => version.current),
      [true, false],
    );

    const upload = await dfsWith(servers, 'upload', await write('new.txt', 'refused'), '--failover-wait', '1000');
    assert.strictEqual(upload.code, 1);
    assert.match(upload.stderr, /failed new\.txt: no primary answers: could not reach any of the primaries .*The cluster is read-only until a primary is back: start one/);
    for (const root of cluster.allRoots()) {
      await assert.rejects(fs.stat(path.join(root, 'ha', 'new.txt')), `${root} holds nothing of the refused upload`);
    }
  });

  it('a replica that is behind never wins over one with the newer generation, and brings no deleted file back', async () => {
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', args: ['--sync-interval', '200'] });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-ha-'));
    const servers = cluster.address;
    const client = cluster.client('ha');
    await client.uploadFile(await write('doc.txt', 'old bytes'), 'doc.txt');
    await client.uploadFile(await write('doomed.txt', 'to be deleted'), 'doomed.txt');
    // Replica 1 goes down; doc.txt is overwritten and doomed.txt deleted without it.
    await cluster.killReplica(0);
    const newer = await client.uploadFile(await write('doc.txt', 'new bytes'), 'doc.txt');
    assert.deepStrictEqual(newer.replicasBehind, [1]);
    const deleted = await client.delete('doomed.txt');
    // The primary certifies replicas 2 and 3 complete past the delete (the proof that doomed.txt is gone).
    for (const index of [1, 2]) {
      const replica = new DfsClient({ host: '127.0.0.1', port: cluster.basePort + index, clientId: 'ha' });
      await waitFor(async () => {
        const status = await replica.status();
        return status.role === 'replica' && status.synced >= deleted.generation;
      }, `replica ${index + 1} certified through generation ${deleted.generation}`);
    }
    await stopChild(cluster.primary.child, 'SIGKILL');
    await cluster.startReplica(0);
    // Replica 1 still holds what it had: the old doc.txt and doomed.txt.
    assert.strictEqual(await fs.readFile(path.join(cluster.replicaRoot(0), 'ha', 'doc.txt'), 'utf8'), 'old bytes');
    assert.strictEqual(await fs.readFile(path.join(cluster.replicaRoot(0), 'ha', 'doomed.txt'), 'utf8'), 'to be deleted');
    // Only the behind replica and one up to date answer.
    await cluster.killReplica(2);

    const ls = await dfsWith(servers, 'ls', '--json');
    assert.strictEqual(ls.code, 0, ls.stderr);
    assert.match(ls.stderr, /READ-ONLY: .*2 of 3 answer/);
    assert.deepStrictEqual(
      JSON.parse(ls.stdout).map((file: { name: string; generation: number; copies: number }) => [file.name, file.generation, file.copies]),
      [['doc.txt', newer.generation, 1]],
    );
    const copy = path.join(work, 'doc-copy.txt');
    const get = await dfsWith(servers, 'get', 'doc.txt', '-o', copy);
    assert.strictEqual(get.code, 0, get.stderr);
    assert.strictEqual(await fs.readFile(copy, 'utf8'), 'new bytes');
    const gone = await dfsWith(servers, 'get', 'doomed.txt', '-o', path.join(work, 'doomed-copy.txt'));
    assert.strictEqual(gone.code, 1);
    assert.match(gone.stderr, /doomed\.txt is not stored for client ha on any replica that answers/);
  });
});
