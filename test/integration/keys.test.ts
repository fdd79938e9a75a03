import * as assert from 'assert';
import fc from 'fast-check';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { DfsClient } from '../../server/client/dfs-client';
import { ClientKey, ClusterStatus, DfsError, formatKey, formatResponse, issueKey, newNonce, parseChallenge, parseKey } from '../../server/protocol';
import { TestCluster, storedFiles } from '../support/cluster';
import { runDfs, stopChild } from '../support/processes';
import { RawClient } from '../support/raw-client';
import { waitFor } from '../support/wait';

const SECRET = 'the cluster secret, long enough for the rule';
const secret = Buffer.from(SECRET);

function isCode(code: string, message?: RegExp): (error: unknown) => boolean {
  return (error: unknown) => error instanceof DfsError && error.code === code && (!message || message.test(error.message));
}

describe('keys: each client touches only its own files', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let aliceKey: ClientKey;
  let adminKey: ClientKey;
  let alice: DfsClient;
  let member: DfsClient;
  const asAlice = (port: number, clientId = 'alice'): DfsClient => new DfsClient({ host: '127.0.0.1', port, clientId, security: { key: aliceKey } });

  before(async () => {
    cluster = await TestCluster.start({ replicas: 3, args: ['--sync-interval', '200'], env: { DFS_SECRET: SECRET }, clientSecurity: { secret } });
    aliceKey = issueKey(secret, 'client', 'alice');
    adminKey = issueKey(secret, 'admin');
    alice = asAlice(cluster.primaryPort);
    member = cluster.client('bob');
    await member.upload('secret.txt', [Buffer.from('bob only')], 8);
    await member.upload('secret.txt', [Buffer.from('bob v2')], 6);
  });

  after(async () => {
    await cluster.destroy();
  });

  it("alice's key stores, lists, reads and deletes her own files", async () => {
    const receipt = await alice.upload('mine.txt', [Buffer.from('alice')], 5);
    assert.strictEqual(receipt.copies, 4);
    assert.deepStrictEqual((await alice.files()).map((file) => file.name), ['mine.txt']);
    assert.deepStrictEqual(await alice.list(), ['mine.txt']);
    assert.strictEqual((await alice.versions('mine.txt')).length, 1);
    await alice.delete('mine.txt');
  });

  it("alice's key cannot read, list, overwrite, delete, restore or see the versions of bob's files, on the primary or a replica", async () => {
    const bobOnDisk = async (): Promise<string[]> => Promise.all(cluster.allRoots().map((root) => fs.readFile(path.join(root, 'bob', 'secret.txt'), 'utf8')));
    const before = await bobOnDisk();
    for (const port of [cluster.primaryPort, cluster.replicas[0]!.port]) {
      const asBob = asAlice(port, 'bob');
      assert.deepStrictEqual(await asBob.files(), [], 'FILES of another client answers as for an unknown one');
      assert.deepStrictEqual(await asBob.list(), []);
      const sink = new PassThrough();
      sink.resume();
      await assert.rejects(asBob.download('secret.txt', sink), isCode('FORBIDDEN', /this key is for client alice: it cannot read or change the files of client bob/));
      await assert.rejects(asBob.versions('secret.txt'), isCode('FORBIDDEN'));
    }
    const asBob = asAlice(cluster.primaryPort, 'bob');
    await assert.rejects(asBob.upload('secret.txt', [Buffer.from('pwned')], 5), isCode('FORBIDDEN'));
    await assert.rejects(asBob.upload('new.txt', [Buffer.from('pwned')], 5), isCode('FORBIDDEN'));
    await assert.rejects(asBob.delete('secret.txt'), isCode('FORBIDDEN'));
    await assert.rejects(asBob.restore('secret.txt', 1), isCode('FORBIDDEN'));
    assert.deepStrictEqual((await alice.clients()).map((client) => client.clientId).filter((id) => id !== 'alice'), [], 'CLIENTS shows only itself');
    assert.deepStrictEqual(await bobOnDisk(), before, "nothing of bob's changed");
    for (const root of cluster.allRoots()) {
      assert.ok(!(await storedFiles(root)).some((file) => file === 'bob/new.txt'));
    }
    assert.ok(cluster.primary.output.some((line) => /failed \(from 127\.0\.0\.1:\d+\): FORBIDDEN this key is for client alice/.test(line)), 'refusals are logged with the peer address');
  });

  it('a client key sees a status without addresses or errors; an admin key sees all of it, and every client', async () => {
    const forAlice = (await alice.status()) as ClusterStatus;
    assert.strictEqual(forAlice.replicas.length, 3);
    assert.ok(forAlice.replicas.every((replica) => replica.address === '' && replica.lastError === undefined));
    assert.strictEqual(forAlice.revokedKeys, undefined);
    const admin = new DfsClient({ host: '127.0.0.1', port: cluster.primaryPort, clientId: 'bob', security: { key: adminKey } });
    const full = (await admin.status()) as ClusterStatus;
    assert.match(full.replicas[0].address, /^127\.0\.0\.1:\d+$/);
    assert.ok((await admin.clients()).some((client) => client.clientId === 'bob'));
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (chunk: Buffer) => chunks.push(chunk));
    await admin.download('secret.txt', sink);
    assert.strictEqual(Buffer.concat(chunks).toString(), 'bob v2');
    assert.strictEqual((await admin.scrub()).unrecoverable.length, 0);
    await assert.rejects(alice.scrub(), isCode('FORBIDDEN', /SCRUB needs an admin key or the cluster secret/));
  });

  it("client and admin keys are refused the replicas' verbs: REPLICA, REPLICA_DELETE, INVENTORY, SCRUB", async () => {
    for (const key of [aliceKey, adminKey]) {
      for (const header of ['REPLICA alice forged.bin 3', 'REPLICA_DELETE alice 9 1700000000000 mine.txt', 'INVENTORY', 'SCRUB', 'RESERVE 999999', 'REVOKE 0123456789abcdef']) {
        const raw = await RawClient.connectAs(cluster.replicas[1]!.port, { key });
        await raw.send(header + '\n');
        assert.match(await raw.readToClose(), /^(REPLICA_FAILURE|ERROR) FORBIDDEN .*(served only to the cluster's own servers)/, `${key.kind} key: ${header}`);
      }
    }
    assert.ok(!(await storedFiles(cluster.replicaRoot(1))).some((file) => file.includes('forged')));
  });

  it('a forged key, a key of another cluster and a replayed handshake are refused', async () => {
    const forged: ClientKey = { ...aliceKey, clientId: 'bob' };
    await assert.rejects(new DfsClient({ host: '127.0.0.1', port: cluster.primaryPort, clientId: 'bob', security: { key: forged } }).files(), isCode('AUTH', /not issued for this cluster/));
    const foreign = issueKey(Buffer.from('another cluster entirely, long enough'), 'admin');
    await assert.rejects(new DfsClient({ host: '127.0.0.1', port: cluster.primaryPort, clientId: 'bob', security: { key: foreign } }).files(), isCode('AUTH'));

    const first = await RawClient.connect(cluster.primaryPort);
    const answer = formatResponse({ key: aliceKey }, parseChallenge(await first.recvLine()), newNonce());
    await first.send(answer + '\n');
    assert.match(await first.recvLine(), /^AUTH_OK /);
    first.destroy();
    const replay = await RawClient.connect(cluster.primaryPort);
    await replay.recvLine();
    await replay.send(answer + '\n');
    await replay.send('FILES alice\n');
    assert.match(await replay.readToClose(), /^AUTH_FAILURE AUTH authentication failed/);
  });

  it('a revoked key is refused by every server within seconds, a replica that was down included', async () => {
    const doomed = issueKey(secret, 'client', 'carol');
    const carol = (port: number): DfsClient => new DfsClient({ host: '127.0.0.1', port, clientId: 'carol', security: { key: doomed } });
    await carol(cluster.primaryPort).upload('c.txt', [Buffer.from('c')], 1);
    await cluster.killReplica(2);
    const revoked = await runDfs(['key', 'revoke', formatKey(doomed), '--server', cluster.address], { env: { DFS_SECRET: SECRET } });
    assert.strictEqual(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`revoked key ${doomed.keyId}: refused by the primary and by 2 of 3 replicas now`));
    for (const port of [cluster.primaryPort, cluster.replicas[0]!.port, cluster.replicas[1]!.port]) {
      await assert.rejects(carol(port).files(), isCode('AUTH', /has been revoked/));
    }
    await cluster.startReplica(2);
    await waitFor(
      () =>
        carol(cluster.replicas[2]!.port)
          .files()
          .then(
            () => false,
            (error: unknown) => isCode('AUTH', /has been revoked/)(error),
          ),
      'the replica that was down to refuse the revoked key',
      10_000,
    );
    assert.strictEqual((await alice.upload('after-revoke.txt', [Buffer.from('still works')], 11)).copies, 4, "another client's key still works");
    const status = (await member.status()) as ClusterStatus;
    assert.ok(status.revokedKeys?.includes(doomed.keyId));
    const printed = await runDfs(['status', '--server', cluster.address], { env: { DFS_SECRET: SECRET } });
    assert.match(printed.stdout, new RegExp(`revoked keys: .*${doomed.keyId}`));

  });

  it('the session fuzzer with a key: whatever it sends, only its own client folder is ever written', async () => {
    const fuzzKey = issueKey(secret, 'client', 'fuzz');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('UPLOAD', 'UPLOAD_IF', 'DELETE', 'DOWNLOAD', 'LIST', 'FILES', 'VERSIONS', 'RESTORE', 'REPLICA', 'INVENTORY', 'SCRUB', 'CLIENTS'),
        fc.constantFrom('fuzz', 'bob', 'other', '..', '.dfs'),
        fc.constantFrom('x.txt', 'd/y', '../z', 'a b', '.dfs/x'),
        fc.nat({ max: 64 }),
        fc.constantFrom(cluster.primaryPort, cluster.replicas[0]!.port),
        async (verb, client, name, size, port) => {
          const raw = await RawClient.connectAs(port, { key: fuzzKey });
          try {
            const header =
              verb === 'LIST' || verb === 'FILES'
                ? `${verb} ${client}`
                : verb === 'INVENTORY' || verb === 'SCRUB' || verb === 'CLIENTS'
                  ? verb
                  : verb === 'UPLOAD' || verb === 'REPLICA'
                    ? `${verb} ${client} ${name} ${size}`
                    : verb === 'UPLOAD_IF'
                      ? `${verb} ${client} absent ${name} ${size}`
                      : verb === 'RESTORE'
                        ? `${verb} ${client} 1 ${name}`
                        : `${verb} ${client} ${name}`;
            await raw.send(header + '\n');
            await raw.send(Buffer.alloc(size, 0x66)).catch(() => undefined);
            await raw.readToClose(5_000).catch(() => undefined);
          } finally {
            raw.destroy();
          }
        },
      ),
      { numRuns: 200, seed: 20261201 },
    );
    assert.ok((await storedFiles(cluster.primaryRoot())).some((file) => file.startsWith('fuzz/')), 'the fuzzer got through the handshake and stored into its own folder');
    for (const root of cluster.allRoots()) {
      for (const file of await storedFiles(root)) {
        assert.ok(['alice/', 'bob/', 'carol/', 'fuzz/'].some((prefix) => file.startsWith(prefix)), `${root}: ${file}`);
      }
      assert.strictEqual(await fs.readFile(path.join(root, 'bob', 'secret.txt'), 'utf8'), 'bob v2');
    }
  });
});

describe('keys: dfs key issue and client defaults', function () {
  this.timeout(60_000);

  it('issues a one-line key from the cluster secret; a client using it is that client by default', async () => {
    const cluster = await TestCluster.start({ replicas: 1, env: { DFS_SECRET: SECRET }, clientSecurity: { secret } });
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-keys-'));
    try {
      const issued = await runDfs(['key', 'issue', '--client', 'dora'], { env: { DFS_SECRET: SECRET } });
      assert.strictEqual(issued.code, 0, issued.stderr);
      const line = issued.stdout.trim();
      assert.strictEqual(issued.stdout.split('\n').filter(Boolean).length, 1);
      assert.strictEqual(parseKey(line).clientId, 'dora');
      assert.ok(!line.includes(SECRET) && !line.includes(secret.toString('hex')), 'the key does not carry the secret');
      assert.match(issued.stderr, /dfs key revoke [0-9a-f]{16}/);
      await fs.writeFile(path.join(work, 'dora.key'), line + '\n');
      await fs.writeFile(path.join(work, 'note.txt'), 'from dora');
      const upload = await runDfs(['upload', path.join(work, 'note.txt'), '--server', cluster.address, '--key-file', path.join(work, 'dora.key')], { env: { DFS_SECRET: '' } });
      assert.strictEqual(upload.code, 0, upload.stderr);
      assert.strictEqual(await fs.readFile(path.join(cluster.primaryRoot(), 'dora', 'note.txt'), 'utf8'), 'from dora');
      const viaEnv = await runDfs(['ls', '--json', '--server', cluster.address], { env: { DFS_SECRET: '', DFS_KEY: line } });
      assert.deepStrictEqual(JSON.parse(viaEnv.stdout).map((file: { name: string }) => file.name), ['note.txt']);

      const noSecret = await runDfs(['key', 'issue', '--client', 'dora'], { env: { DFS_SECRET: '' } });
      assert.strictEqual(noSecret.code, 1);
      assert.match(noSecret.stderr, /needs the cluster secret/);
      const neither = await runDfs(['key', 'issue'], { env: { DFS_SECRET: SECRET } });
      assert.strictEqual(neither.code, 1);
      assert.match(neither.stderr, /either --client ID .* or --admin/);
      const bad = await runDfs(['ls', '--server', cluster.address], { env: { DFS_SECRET: '', DFS_KEY: 'not a key' } });
      assert.strictEqual(bad.code, 1);
      assert.match(bad.stderr, /DFS_KEY: that is not a DFS key/);
    } finally {
      await cluster.destroy();
      await fs.rm(work, { recursive: true, force: true });
    }
  });
});

describe('keys: a revocation outlives the primary’s disk', function () {
  this.timeout(60_000);

  it('a primary whose data folder is replaced learns the revoked keys back from its replicas', async () => {
    const cluster = await TestCluster.start({ replicas: 2, env: { DFS_SECRET: SECRET }, clientSecurity: { secret } });
    try {
      const doomed = issueKey(secret, 'client', 'carol');
      const carol = new DfsClient({ host: '127.0.0.1', port: cluster.primaryPort, clientId: 'carol', security: { key: doomed } });
      await carol.upload('c.txt', [Buffer.from('c')], 1);
      const revoked = await runDfs(['key', 'revoke', doomed.keyId, '--server', cluster.address], { env: { DFS_SECRET: SECRET } });
      assert.strictEqual(revoked.code, 0, revoked.stderr);
      const port = cluster.primaryPort;
      await stopChild(cluster.primary.child, 'SIGKILL');
      await fs.rm(cluster.primaryRoot(), { recursive: true, force: true });
      await cluster.startPrimary(port);
      const member = cluster.client('carol');
      await waitFor(async () => ((await member.files().catch(() => [])) as { name: string }[]).some((file) => file.name === 'c.txt'), 'the new primary to serve what the replicas hold', 20_000);
      await assert.rejects(carol.files(), isCode('AUTH', /has been revoked/));
      assert.ok(((await member.status()) as ClusterStatus).revokedKeys?.includes(doomed.keyId));
    } finally {
      await cluster.destroy();
    }
  });
});
