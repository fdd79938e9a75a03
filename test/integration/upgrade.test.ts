import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { catalogOnDisk } from '../support/catalog-on-disk';
import { TestCluster, storedFiles } from '../support/cluster';
import { assertIdenticalCopies, sha256, waitForConvergence } from '../support/convergence';
import { REPO_ROOT } from '../support/processes';

/**
 * A data folder written by release 0.1 (no catalog: plain files, a checksum log, and
 * the primary's "joined" marker), made by running that release: three replicas and a
 * primary under quorum majority; replica 3 was down while notes.md was overwritten,
 * old.txt deleted and new.txt added, so it still holds the old state.
 */
const FIXTURE = path.join(REPO_ROOT, 'test', 'fixtures', 'data-v0.1.0');

describe('upgrade: a data folder of release 0.1 opens and is upgraded in place', function () {
  this.timeout(60_000);
  let cluster: TestCluster;
  let dataDir: string;

  before(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-upgrade-'));
    await fs.cp(FIXTURE, dataDir, { recursive: true });
  });

  after(async () => {
    await cluster?.destroy();
  });

  it('records every file in the catalog, says so in the log, and the primary it followed wins', async () => {
    assert.deepStrictEqual((await storedFiles(path.join(dataDir, 'replica3'))).filter((file) => file.startsWith('alice/')), [
      'alice/docs/guide.md',
      'alice/docs/img/logo.png',
      'alice/kept.txt',
      'alice/notes.md',
      'alice/old.txt',
    ]);
    const startedAt = Date.now();
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', dataDir, args: ['--sync-interval', '200'] });
    assert.ok(
      cluster.primary.output.some((line) => /upgraded a data folder of release 0\.1 in place: 6 files recorded in the catalog at generations 1\.\.6/.test(line)),
      cluster.primary.output.join('\n'),
    );
    for (const replica of cluster.replicas) {
      assert.ok(replica!.output.some((line) => /upgraded a data folder of release 0\.1 in place: \d files recorded in the catalog at generation 0/.test(line)), replica!.output.join('\n'));
    }
    await waitForConvergence(cluster, startedAt);
    const copies = await assertIdenticalCopies(cluster);
    assert.deepStrictEqual([...copies.keys()].sort(), ['alice/docs/guide.md', 'alice/docs/img/logo.png', 'alice/kept.txt', 'alice/new.txt', 'alice/notes.md', 'bob/notes.md']);
    assert.strictEqual(copies.get('alice/notes.md'), sha256('notes v2\n'), 'replica 3 took the newer notes.md');
    assert.strictEqual(copies.get('bob/notes.md'), sha256('notes v1\n'));
    for (const root of cluster.allRoots()) {
      await assert.rejects(fs.stat(path.join(root, '.dfs', 'checksums.log')), `${root}: the checksum log is replaced by the catalog`);
      await assert.rejects(fs.stat(path.join(root, '.dfs', 'joined')));
    }
    const primary = await catalogOnDisk(cluster.primaryRoot());
    assert.deepStrictEqual([...primary.names.values()].map((state) => state.versions[0].generation).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);
    const receipt = await cluster.client('alice').upload('after.txt', [Buffer.from('after the upgrade')], 17);
    assert.ok(receipt.generation > 6);
  });

  it('opens as an upgraded folder from then on: no second upgrade, nothing lost', async () => {
    await cluster.stop();
    const startedAt = Date.now();
    cluster = await TestCluster.start({ replicas: 3, writeQuorum: 'majority', dataDir, args: ['--sync-interval', '200'] });
    assert.ok(!cluster.primary.output.some((line) => /upgraded/.test(line)));
    await waitForConvergence(cluster, startedAt);
    const copies = await assertIdenticalCopies(cluster);
    assert.strictEqual(copies.size, 7);
    assert.strictEqual(copies.get('alice/after.txt'), sha256('after the upgrade'));
  });
});
