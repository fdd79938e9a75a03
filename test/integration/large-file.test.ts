import * as assert from 'assert';
import { createHash, randomBytes } from 'crypto';
import { createReadStream, promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TestCluster } from '../support/cluster';
import { peakRss } from '../support/memory';

const MiB = 1024 * 1024;

async function hashOf(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * MiB })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

describe('large files stream', function () {
  this.timeout(240_000);
  let cluster: TestCluster;
  let source: string;

  before(async () => {
    cluster = await TestCluster.start({ replicas: 3 });
    source = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-large-')), 'big.bin');
    const handle = await fs.open(source, 'w');
    for (let i = 0; i < 256; i++) {
      await handle.write(randomBytes(MiB));
    }
    await handle.close();
  });

  after(async () => {
    await cluster.destroy();
    await fs.rm(path.dirname(source), { recursive: true, force: true });
  });

  it('a 256 MiB upload keeps the primary and the replicas far below the file size in memory', async () => {
    const expected = await hashOf(source);
    const receipt = await cluster.client('big').uploadFile(source, 'big.bin');
    assert.strictEqual(receipt.sha256, expected);
    const primaryPeak = await peakRss(cluster.primary.child.pid!);
    const replicaPeak = await peakRss(cluster.replicas[0]!.child.pid!);
    console.log(`      peak RSS: primary ${(primaryPeak / MiB).toFixed(1)} MiB, replica 1 ${(replicaPeak / MiB).toFixed(1)} MiB`);
    assert.ok(primaryPeak < 100 * MiB, `primary peaked at ${(primaryPeak / MiB).toFixed(1)} MiB for a 256 MiB file`);
    assert.ok(replicaPeak < 100 * MiB, `replica peaked at ${(replicaPeak / MiB).toFixed(1)} MiB for a 256 MiB file`);
    for (const root of cluster.allRoots()) {
      assert.strictEqual(await hashOf(path.join(root, 'big', 'big.bin')), expected, root);
    }
  });
});
