import * as assert from 'assert';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import { connect } from '../../server/net/tcp';
import { DfsError, formatResponse, newNonce, parseChallenge } from '../../server/protocol';
import { makeCertificates } from '../support/certificates';
import { TestCluster, storedFiles } from '../support/cluster';
import { freePortRange } from '../support/ports';
import { runDfs, spawnDfs, stopChild } from '../support/processes';
import { RawClient, seedUpload } from '../support/raw-client';

const SECRET = 'correct horse battery staple, 32+ bytes';
const secret = Buffer.from(SECRET);

function isCode(code: string): (error: unknown) => boolean {
  return (error: unknown) => error instanceof DfsError && error.code === code;
}

async function assertNothingStored(cluster: TestCluster): Promise<void> {
  for (const root of cluster.allRoots()) {
    assert.deepStrictEqual(await storedFiles(root), [], `something was written under ${root}`);
  }
}

describe('security: the cluster secret', function () {
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start({ replicas: 2, env: { DFS_SECRET: SECRET }, clientSecurity: { secret } });
  });

  after(async () => {
    await cluster.destroy();
  });

  afterEach(async () => {
    // Each refusal test must leave nothing on disk; clean what the successful ones stored.
    for (const name of (await cluster.client('member').files()).map((file) => file.name)) {
      await cluster.client('member').delete(name);
    }
  });

  it('members with the secret upload, replicate and read as usual', async () => {
    const data = randomBytes(100_000);
    const receipt = await cluster.client('member').upload('ok.bin', [data], data.length);
    assert.strictEqual(receipt.copies, 3);
    assert.ok((await fs.readFile(path.join(cluster.replicaRoot(1), 'member', 'ok.bin'))).equals(data));
  });

  it('a wrong secret is refused before any verb, and nothing is written', async () => {
    const intruder = cluster.client('intruder', { secret: Buffer.from('not the secret, but long enough') });
    await assert.rejects(intruder.upload('x.bin', [Buffer.from('x')], 1), (error: unknown) => isCode('AUTH')(error) && /secret does not match/.test((error as Error).message));
    await assertNothingStored(cluster);
  });

  it('no secret at all: our client and a client of the report both get a clear refusal', async () => {
    await assert.rejects(cluster.client('anon', {}).upload('x.bin', [Buffer.from('x')], 1), (error: unknown) => isCode('AUTH')(error) && /requires authentication/.test((error as Error).message));
    const { first } = await seedUpload(cluster.primaryPort, 'anon', 'seed.txt', Buffer.from('seed'));
    assert.match(first, /^AUTH_CHALLENGE/);
    const raw = await RawClient.connect(cluster.primaryPort);
    await raw.send('LIST anon');
    assert.match(await raw.readToClose(), /AUTH_FAILURE AUTH this cluster requires authentication/);
    await assertNothingStored(cluster);
  });

  it('a replayed handshake is refused', async () => {
    const first = await RawClient.connect(cluster.primaryPort);
    const serverNonce = parseChallenge((await first.recv()).trim());
    const answer = formatResponse({ secret, role: 'client' }, serverNonce, newNonce());
    await first.send(answer + '\n');
    assert.match(await first.recv(), /^AUTH_OK [0-9a-f]{64}\n$/);
    first.destroy();

    const replay = await RawClient.connect(cluster.primaryPort);
    await replay.recv();
    await replay.send(answer + '\n');
    await replay.send('UPLOAD member replayed.bin 1\n');
    assert.match(await replay.readToClose(), /^AUTH_FAILURE AUTH authentication failed/);
    await assertNothingStored(cluster);
  });

  it('a client cannot send replication verbs to a replica, even with the secret', async () => {
    const replicaPort = cluster.replicas[0]!.port;
    const asClient = await connect({ host: '127.0.0.1', port: replicaPort, security: { secret }, role: 'client' });
    await asClient.writeLine('REPLICA member forged.bin 3');
    assert.match(await asClient.readLine(), /^REPLICA_FAILURE FORBIDDEN REPLICA is served only to the cluster's primary/);
    asClient.destroy();

    const anonymous = await RawClient.connect(replicaPort);
    await anonymous.send('REPLICA member forged.bin 3');
    const reply = await anonymous.readToClose();
    assert.match(reply, /AUTH_FAILURE/);
    await assertNothingStored(cluster);
  });

  it('a primary without the secret cannot write to the replicas', async () => {
    const port = await freePortRange(1);
    const rogue = await spawnDfs(['primary', '--port', String(port), '--base-port', String(cluster.basePort), '--replicas', '2', '--data-dir', path.join(cluster.dataDir, 'rogue')]);
    try {
      const client = new DfsClient({ host: '127.0.0.1', port, clientId: 'rogue' });
      await assert.rejects(client.upload('r.bin', [Buffer.from('r')], 1), (error: unknown) => isCode('QUORUM')(error) && /requires authentication/.test((error as Error).message));
      for (const index of [0, 1]) {
        assert.deepStrictEqual(await storedFiles(cluster.replicaRoot(index)), []);
      }
    } finally {
      await stopChild(rogue.child, 'SIGKILL');
    }
  });
});

describe('security: safe defaults, TLS and limits', function () {
  it('refuses to listen beyond loopback without a secret unless --insecure, and warns then', async () => {
    const port = await freePortRange(1);
    const refused = await runDfs(['primary', '--host', '0.0.0.0', '--port', String(port), '--replicas', '0', '--data-dir', '/tmp/dfs-never-used']);
    assert.strictEqual(refused.code, 1);
    assert.match(refused.stderr, /refusing to listen on 0\.0\.0\.0 without a cluster secret/);
    const insecure = await spawnDfs(['primary', '--host', '0.0.0.0', '--port', String(port), '--replicas', '0', '--insecure', '--data-dir', await fs.mkdtemp('/tmp/dfs-insecure-')]);
    try {
      assert.ok(insecure.output.some((line) => /WARNING: listening on 0\.0\.0\.0 with no cluster secret/.test(line)), insecure.output.join('\n'));
    } finally {
      await stopChild(insecure.child, 'SIGKILL');
    }
  });

  it('TLS protects every connection: members with the CA work, plaintext peers do not', async () => {
    const certs = await makeCertificates();
    const tlsArgs = ['--tls-cert', certs.cert, '--tls-key', certs.key, '--tls-ca', certs.ca];
    const cluster = await TestCluster.start({
      replicas: 2,
      args: [...tlsArgs, '--header-timeout', '2000'],
      env: { DFS_SECRET: SECRET },
      clientSecurity: { secret, tls: { ca: await fs.readFile(certs.ca) } },
    });
    try {
      const data = randomBytes(50_000);
      const receipt = await cluster.client('tls').upload('t.bin', [data], data.length);
      assert.strictEqual(receipt.copies, 3);
      assert.ok((await fs.readFile(path.join(cluster.replicaRoot(0), 'tls', 't.bin'))).equals(data));
      await assert.rejects(cluster.client('plain', { secret }).files());
      await assert.rejects(cluster.client('wrongca', { secret, tls: { ca: await fs.readFile(certs.cert) } }).files(), /TLS failed/);
    } finally {
      await cluster.destroy();
      await fs.rm(certs.dir, { recursive: true, force: true });
    }
  });

  it('a client over its quota and connections over the limit get clear LIMIT failures', async () => {
    const cluster = await TestCluster.start({ replicas: 1, primaryArgs: ['--quota', '1000', '--max-connections', '20'] });
    try {
      await cluster.client('q').upload('a.bin', [Buffer.alloc(600)], 600);
      await assert.rejects(cluster.client('q').upload('b.bin', [Buffer.alloc(600)], 600), (error: unknown) => isCode('LIMIT')(error) && /over its quota of 1000/.test((error as Error).message));
      // The replaced version is kept as an older one, and older versions count.
      await assert.rejects(cluster.client('q').upload('a.bin', [Buffer.alloc(900)], 900), (error: unknown) => isCode('LIMIT')(error) && /older versions included/.test((error as Error).message));
      // A delete frees the file and its older versions.
      await cluster.client('q').delete('a.bin');
      await cluster.client('q').upload('a.bin', [Buffer.alloc(900)], 900);

      const held = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(cluster.primaryPort)));
      const extra = await RawClient.connect(cluster.primaryPort);
      assert.match(await extra.readToClose(), /^ERROR LIMIT the primary is serving its limit of 20 connections/);
      held.forEach((client) => client.destroy());
    } finally {
      await cluster.destroy();
    }
  });

  it('without older versions kept, replacing a file counts its new size only', async () => {
    const cluster = await TestCluster.start({ replicas: 1, primaryArgs: ['--quota', '1000', '--keep-versions', '0'] });
    try {
      await cluster.client('q').upload('a.bin', [Buffer.alloc(600)], 600);
      const receipt = await cluster.client('q').upload('a.bin', [Buffer.alloc(900)], 900);
      assert.strictEqual(receipt.size, 900);
      assert.deepStrictEqual((await cluster.client('q').versions('a.bin')).map((version) => version.size), [900]);
      await assert.rejects(cluster.client('q').upload('b.bin', [Buffer.alloc(200)], 200), isCode('LIMIT'));
    } finally {
      await cluster.destroy();
    }
  });

  it('500 idle or trickling connections do not keep a normal upload from finishing in its usual time', async function () {
    this.timeout(120_000);
    const cluster = await TestCluster.start({ replicas: 3, args: ['--header-timeout', '60000', '--idle-timeout', '60000'] });
    try {
      const data = randomBytes(8 * 1024 * 1024);
      const timeUpload = async (): Promise<number> => {
        const started = process.hrtime.bigint();
        const receipt = await cluster.client('busy').upload('normal.bin', [data], data.length);
        assert.strictEqual(receipt.copies, 4);
        return Number(process.hrtime.bigint() - started) / 1e6;
      };
      const usual = Math.max(await timeUpload(), await timeUpload());
      const loiterers = await Promise.all(Array.from({ length: 500 }, () => RawClient.connect(cluster.primaryPort)));
      // Half of them trickle a header a byte at a time; the rest say nothing.
      let trickling = true;
      const trickle = (async () => {
        for (let i = 0; trickling; i++) {
          await Promise.all(loiterers.slice(0, 250).map((client) => client.send(i === 0 ? 'U' : 'P').catch(() => undefined)));
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      const loaded = await timeUpload();
      trickling = false;
      await trickle;
      loiterers.forEach((client) => client.destroy());
      console.log(`      8 MiB upload: ${usual.toFixed(0)} ms alone, ${loaded.toFixed(0)} ms beside 500 idle or trickling connections`);
      assert.ok(loaded < usual * 4 + 2_000, `upload took ${loaded.toFixed(0)} ms beside the loiterers, ${usual.toFixed(0)} ms alone`);
    } finally {
      await cluster.destroy();
    }
  });
});
