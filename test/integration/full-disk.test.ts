import * as assert from 'assert';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import { ClusterStatus, DfsError, VersionRecord } from '../../server/protocol';
import { JournalCatalog } from '../../server/storage/journal-catalog';
import { TestCluster, stagedFiles } from '../support/cluster';
import { treeDigest } from '../support/convergence';
import { RawClient } from '../support/raw-client';
import { SmallDisk, cannotMount } from '../support/small-disk';

const KiB = 1024;
const MiB = 1024 * KiB;
const RESERVE = 1 * MiB;

/** A data folder on its own small disk: `<dataDir>/<folder>` links to a folder on the tmpfs, which also holds the ballast. */
async function dataFolderOn(disk: SmallDisk, dataDir: string, folder: string): Promise<void> {
  const real = path.join(disk.mountPoint, folder);
  await fs.mkdir(real);
  await fs.symlink(real, path.join(dataDir, folder));
}

/** Every byte a node holds for clients: current files and kept older versions. */
async function holdings(root: string): Promise<Record<string, string>> {
  const current = await treeDigest(root);
  const older = await treeDigest(path.join(root, '.dfs', 'versions'));
  return { ...Object.fromEntries(current), ...Object.fromEntries([...older].map(([name, digest]) => [`.dfs/versions/${name}`, digest])) };
}

async function assertNothingStaged(cluster: TestCluster): Promise<void> {
  for (const root of cluster.allRoots()) {
    assert.deepStrictEqual(await stagedFiles(root), [], `staged bytes left under ${root}`);
  }
}

/** Header, wait for SEND_FILE, then `beforeBody`, then the bytes: the disk can be filled between the check and the transfer. */
async function uploadInSteps(port: number, clientId: string, name: string, body: Buffer, beforeBody: () => Promise<void>): Promise<{ first: string; final: string }> {
  const client = await RawClient.connect(port);
  try {
    await client.send(`UPLOAD ${clientId} ${name} ${body.length}\n`);
    const first = await client.recvLine();
    if (!first.startsWith('SEND_FILE')) {
      return { first, final: '' };
    }
    await beforeBody();
    // The server may answer and stop reading before the last byte: that is the point.
    await client.send(body).catch(() => undefined);
    return { first, final: (await client.readToClose(20_000)).trim() };
  } finally {
    client.destroy();
  }
}

async function assertReadsServed(cluster: TestCluster, port: number, expected: Map<string, Buffer>): Promise<void> {
  const client = new DfsClient({ host: '127.0.0.1', port, clientId: 'full' });
  assert.deepStrictEqual((await client.list()).sort(), [...expected.keys()].sort());
  for (const [name, bytes] of expected) {
    const chunks: Buffer[] = [];
    const { Writable } = await import('stream');
    await client.download(
      name,
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          chunks.push(chunk);
          done();
        },
      }),
    );
    assert.ok(Buffer.concat(chunks).equals(bytes), `${name} downloaded from port ${port} differs`);
  }
  const status = (await cluster.client('full').status()) as ClusterStatus;
  assert.ok(status.replicas.every((replica) => replica.reachable), `a replica reported down: ${JSON.stringify(status.replicas)}`);
}

const skipReason = cannotMount();

describe('full disks', function () {
  this.timeout(60_000);
  let disk: SmallDisk | undefined;
  let cluster: TestCluster | undefined;
  let dataDir: string;

  before(function () {
    if (skipReason) {
      console.log(`    skipped: ${skipReason}`);
      this.skip();
    }
  });

  beforeEach(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-full-'));
    disk = await SmallDisk.mount(24 * MiB);
  });

  afterEach(async () => {
    await cluster?.destroy();
    cluster = undefined;
    await disk?.unmount();
    disk = undefined;
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  /** Three files stored everywhere before the disk fills. */
  async function storeSome(): Promise<Map<string, Buffer>> {
    const stored = new Map<string, Buffer>();
    for (const name of ['a.bin', 'b.bin', 'docs/c.bin']) {
      const bytes = randomBytes(200 * KiB);
      await cluster!.client('full').upload(name, [bytes], bytes.length);
      stored.set(name, bytes);
    }
    // An older version kept too: a full disk must not lose it either.
    const newer = randomBytes(100 * KiB);
    await cluster!.client('full').upload('a.bin', [newer], newer.length);
    stored.set('a.bin', newer);
    return stored;
  }

  it('a replica whose disk is full: NO_SPACE naming it, before SEND_FILE when it knows, mid-transfer when the disk fills; reads go on, nothing is lost or staged, and the next upload after freeing space succeeds', async () => {
    await dataFolderOn(disk!, dataDir, 'replica1');
    cluster = await TestCluster.start({ replicas: 2, dataDir, args: ['--min-free', String(RESERVE)] });
    const stored = await storeSome();
    const before = await holdings(cluster.replicaRoot(0));
    const replicaPid = cluster.replicas[0]!.child.pid;

    // Known before any byte is sent: the replica's reserve check refuses the REPLICA header.
    await disk!.fill(RESERVE + 512 * KiB);
    const early = await uploadInSteps(cluster.primaryPort, 'full', 'big.bin', randomBytes(MiB), async () => undefined);
    assert.match(early.first, /^UPLOAD_FAILURE NO_SPACE replication impossible: .*replica 1 \(127\.0\.0\.1:\d+\): replica 1's disk is too full: .* free under .*replica1.*--min-free.*Free space on the full disk/);
    assert.doesNotMatch(early.first, /Start the missing replicas/);
    await assert.rejects(cluster.client('full').upload('big.bin', [randomBytes(MiB)], MiB), (error: unknown) => error instanceof DfsError && error.code === 'NO_SPACE');

    // Unknowable before: the disk fills after the replica said it had room.
    await disk!.free();
    const late = await uploadInSteps(cluster.primaryPort, 'full', 'big.bin', randomBytes(4 * MiB), () => disk!.fill());
    assert.match(late.first, /^SEND_FILE/);
    assert.match(late.final, /^UPLOAD_FAILURE NO_SPACE .*replica 1 \(127\.0\.0\.1:\d+\): replica 1's disk is full: no space left under .*replica1 to write the bytes being received/);
    assert.doesNotMatch(late.final, /connection is already closed|Start the missing replicas/);

    await assertNothingStaged(cluster);
    assert.deepStrictEqual(await holdings(cluster.replicaRoot(0)), before, 'the full replica lost or changed what it held');
    await assertReadsServed(cluster, cluster.primaryPort, stored);
    await assertReadsServed(cluster, cluster.replicas[0]!.port, stored);

    // Space freed: the same processes take the next upload.
    await disk!.free();
    const big = randomBytes(4 * MiB);
    await cluster.client('full').upload('big.bin', [big], big.length);
    stored.set('big.bin', big);
    assert.strictEqual(cluster.replicas[0]!.child.pid, replicaPid);
    await assertReadsServed(cluster, cluster.replicas[0]!.port, stored);

    // Full again, then restarted: its catalog is intact and it serves what it held.
    await disk!.fill();
    const full = await holdings(cluster.replicaRoot(0));
    await cluster.killReplica(0);
    await cluster.startReplica(0);
    assert.deepStrictEqual(await holdings(cluster.replicaRoot(0)), full);
    await assertReadsServed(cluster, cluster.replicas[0]!.port, stored);
    await assertNothingStaged(cluster);
  });

  it("the primary's disk is full: NO_SPACE naming it before SEND_FILE when it knows and mid-transfer when the disk fills, the replicas keep nothing; reads go on and freeing space is enough", async () => {
    await dataFolderOn(disk!, dataDir, 'servidor');
    cluster = await TestCluster.start({ replicas: 2, dataDir, args: ['--min-free', String(RESERVE)] });
    const stored = await storeSome();
    const before = await Promise.all(cluster.allRoots().map(holdings));
    const primaryPid = cluster.primary.child.pid;

    await disk!.fill(RESERVE + 512 * KiB);
    const early = await uploadInSteps(cluster.primaryPort, 'full', 'big.bin', randomBytes(MiB), async () => undefined);
    assert.match(early.first, /^UPLOAD_FAILURE NO_SPACE the primary's disk is too full: .* free under .*servidor, and 1\.0 MiB more would leave less than the 1\.0 MiB it keeps free \(--min-free\)\. Free space on that disk/);

    await disk!.free();
    const late = await uploadInSteps(cluster.primaryPort, 'full', 'big.bin', randomBytes(4 * MiB), () => disk!.fill());
    assert.match(late.first, /^SEND_FILE/);
    assert.match(late.final, /^UPLOAD_FAILURE NO_SPACE the primary's disk is full: no space left under .*servidor/);

    await assertNothingStaged(cluster);
    assert.deepStrictEqual(await Promise.all(cluster.allRoots().map(holdings)), before, 'a node lost, changed or kept something');
    await assertReadsServed(cluster, cluster.primaryPort, stored);

    await disk!.free();
    const big = randomBytes(4 * MiB);
    await cluster.client('full').upload('big.bin', [big], big.length);
    stored.set('big.bin', big);
    assert.strictEqual(cluster.primary.child.pid, primaryPid);
    await assertReadsServed(cluster, cluster.primaryPort, stored);

    await disk!.fill();
    await cluster.restartPrimary();
    await assertReadsServed(cluster, cluster.primaryPort, stored);
  });

  it('a catalog journal append that meets a full disk fails with NO_SPACE, changes nothing, and the catalog reopens (full or not) with exactly the acknowledged changes', async () => {
    const logged: string[] = [];
    const folder = path.join(disk!.mountPoint, 'catalog');
    // Compaction every few lines: its snapshot meets the full disk too.
    const open = async (): Promise<JournalCatalog> => {
      const catalog = new JournalCatalog(folder, { compactAfterLines: 5, log: (line) => logged.push(line) });
      await catalog.open();
      return catalog;
    };
    const record = (generation: number): VersionRecord => ({ clientId: 'full', name: `f${generation}`, generation, size: 1, sha256: 'ab'.repeat(32), mtimeMs: generation });
    let catalog = await open();
    const acknowledged: number[] = [];
    for (let generation = 1; generation <= 3; generation++) {
      await catalog.commit([{ kind: 'record', record: record(generation), keep: 0 }]);
      acknowledged.push(generation);
    }
    await disk!.fill();
    let refused: DfsError | undefined;
    for (let generation = 4; generation < 2_000 && !refused; generation++) {
      try {
        await catalog.commit([{ kind: 'record', record: record(generation), keep: 0 }]);
        acknowledged.push(generation);
      } catch (error) {
        refused = error as DfsError;
        assert.strictEqual(catalog.index.get('full', `f${generation}`), undefined, 'a refused change was applied');
      }
    }
    assert.ok(refused, 'no append ever met the full disk');
    assert.strictEqual(refused.code, 'NO_SPACE');
    assert.match(refused.message, /disk is full: no space left under .* to write the catalog journal/);
    await catalog.settled();
    assert.deepStrictEqual(
      (await fs.readdir(folder)).filter((file) => file.endsWith('.new')),
      [],
      'a snapshot cut short by the full disk was left behind',
    );
    const names = (c: JournalCatalog): string[] =>
      c.index
        .live('full')
        .map((file) => file.name)
        .sort();
    const expected = acknowledged.map((generation) => `f${generation}`).sort();
    assert.deepStrictEqual(names(catalog), expected);
    await catalog.close();

    catalog = await open();
    assert.deepStrictEqual(names(catalog), expected, 'reopened on a full disk, the catalog differs from what was acknowledged');
    await catalog.close();

    await disk!.free();
    catalog = await open();
    await catalog.commit([{ kind: 'record', record: record(5_000), keep: 0 }]);
    await catalog.close();
    catalog = await open();
    assert.deepStrictEqual(names(catalog), [...expected, 'f5000'].sort());
    await catalog.close();
  });
});
