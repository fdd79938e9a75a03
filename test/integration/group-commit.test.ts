import * as assert from 'assert';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import { DfsError } from '../../server/protocol';
import { TestCluster, stagedFiles } from '../support/cluster';
import { sha256, waitForConvergence } from '../support/convergence';
import { freePortRange } from '../support/ports';
import { SpawnedNode, spawnDfs, stopChild } from '../support/processes';
import { Checked, assertNoViolations, checkTraceFile, straceLauncher, straceUnavailable, stopTraced } from '../support/traced';

/**
 * Small files travel inside their catalog record: one journal sync, shared by every
 * concurrent commit, makes bytes and record durable together on each node. These
 * tests show the syncs are shared (strace), that the ordering rules hold for this
 * path too (rule e: inline bytes are forgotten only once their placed file is durably
 * in place), and that crashes at any moment lose nothing acknowledged, leave nothing
 * partial, and end with every acknowledged file a plain file in the report's layout
 * on every node.
 */

const SMALL = 4 * 1024;
const WRITERS = 16;
/** What a sync costs on a disk that writes through: 20 ms. */
const SYNC_DELAY_MICROS = 20_000;
const JOURNAL = /\/\.dfs\/catalog\/journal-\d+\.log$/;

/** Successful fsyncs of the catalog journal in a trace, and of anything at all. */
function syncCounts({ trace }: Checked): { journal: number; all: number } {
  const syncs = trace.calls.filter((call) => (call.name === 'fsync' || call.name === 'fdatasync') && call.ok);
  return { journal: syncs.filter((call) => JOURNAL.test(call.target ?? '')).length, all: syncs.length };
}

describe('group commit: concurrent small uploads share journal syncs on every node (strace)', function () {
  this.timeout(180_000);
  let dataDir: string;
  const nodes: SpawnedNode[] = [];
  let primary: Checked;
  let replica: Checked;
  let uploads = 0;
  let deletes = 0;

  before(async function () {
    const reason = await straceUnavailable();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-group-'));
    const base = await freePortRange(1);
    const common = ['--host', '127.0.0.1', '--base-port', String(base), '--replicas', '1', '--data-dir', dataDir];
    const traces = { primary: path.join(dataDir, 'primary.trace'), replica: path.join(dataDir, 'replica.trace') };
    // A batch of 16 records of 4 KiB in base64 must show whole in the trace.
    const replicaNode = await spawnDfs(['replica', '--port', String(base), ...common], { launcher: straceLauncher(traces.replica, 1 << 20, SYNC_DELAY_MICROS), readyTimeoutMs: 30_000 });
    nodes.push(replicaNode);
    const primaryNode = await spawnDfs(['primary', '--port', '0', ...common], { launcher: straceLauncher(traces.primary, 1 << 20, SYNC_DELAY_MICROS), readyTimeoutMs: 30_000 });
    nodes.push(primaryNode);
    const client = new DfsClient({ host: '127.0.0.1', port: primaryNode.port, clientId: 'group' });
    // The client's folder and its folder of older versions are made first, one upload at
    // a time: the rule b checker counts them as every name's folders, so one made by a
    // concurrent commit of another name would have to be synced before this name's reply.
    for (let index = 0; index < 2; index++) {
      await client.upload('warm.bin', [randomBytes(SMALL)], SMALL);
      uploads++;
    }
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, writer) => {
        for (let index = 0; index < 8; index++) {
          // Every fourth upload overwrites the writer's own name, so older versions are kept too.
          const name = index % 4 === 3 ? `w${writer}/shared.bin` : `w${writer}/f${index}.bin`;
          await client.upload(name, [randomBytes(SMALL)], SMALL);
          uploads++;
        }
        await client.delete(`w${writer}/f0.bin`);
        deletes++;
      }),
    );
    await Promise.all([stopTraced(primaryNode), stopTraced(replicaNode)]);
    [primary, replica] = await Promise.all([checkTraceFile(traces.primary), checkTraceFile(traces.replica)]);
  });

  after(async () => {
    await Promise.all(nodes.map((node) => stopChild(node.child, 'SIGKILL')));
    if (dataDir) {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });

  for (const [label, checked] of [
    ['the primary', (): Checked => primary],
    ['the replica', (): Checked => replica],
  ] as const) {
    it(`${label}: fewer than one journal sync per upload under ${WRITERS} concurrent writers, every record carrying its bytes, the ordering rules holding`, () => {
      const node = checked();
      assertNoViolations(node, label);
      const { coverage } = node.report;
      assert.ok(coverage.inlineRecords >= uploads, `${label}: every upload's record carries its bytes (saw ${coverage.inlineRecords} of ${uploads})`);
      assert.ok(coverage.inlinePlacements >= uploads, `${label}: every upload was an inline placement, its rename exempt from rules a and b (saw ${coverage.inlinePlacements} of ${uploads})`);
      // A clean stop syncs and confirms every placement: rule e checked each one.
      assert.strictEqual(coverage.confirmedInline, coverage.inlinePlacements, `${label}: every inline placement was confirmed before the server stopped`);
      const counts = syncCounts(node);
      const changes = uploads + deletes;
      console.log(`      ${label}: ${counts.journal} journal syncs and ${counts.all} syncs in all for ${uploads} uploads and ${deletes} deletes (${(counts.journal / changes).toFixed(2)} journal syncs and ${(counts.all / changes).toFixed(2)} syncs per change)`);
      assert.ok(counts.journal < uploads, `${label}: ${counts.journal} journal syncs for ${uploads} concurrent uploads`);
    });
  }
});

describe('group commit: crashes during concurrent small uploads', function () {
  this.timeout(300_000);

  it('kill -9 of the primary, or of every node at once: nothing unacknowledged is listed, every acknowledged file is a plain identical file on every node', async () => {
    const cluster = await TestCluster.start({ replicas: 2, args: ['--sync-interval', '200'] });
    const acknowledged = new Map<string, string>();
    let cut = 0;
    try {
      for (let round = 0; round < 8; round++) {
        const everyNode = round % 2 === 1;
        const killAfter = 1 + (round % 4) * 3;
        let acks = 0;
        let stopping = false;
        let kill: () => void = () => undefined;
        const killNow = new Promise<void>((resolve) => (kill = resolve));
        const writer = async (worker: number): Promise<void> => {
          for (let index = 0; !stopping; index++) {
            // Small files (inline) mostly, some just above the inline size, some overwrites.
            const name = index % 3 === 2 ? `shared-${worker}.bin` : `r${round}/w${worker}-${index}.bin`;
            const data = randomBytes(index % 5 === 4 ? 70 * 1024 : 1 + Math.floor(Math.random() * SMALL));
            try {
              const receipt = await cluster.client('crash').upload(name, [data], data.length);
              assert.strictEqual(receipt.sha256, sha256(data));
              acknowledged.set(name, receipt.sha256);
              if (++acks >= killAfter) {
                kill();
              }
            } catch (error) {
              assert.ok(error instanceof DfsError, String(error));
              cut++;
              return;
            }
          }
        };
        const writers = Array.from({ length: WRITERS }, (_, worker) => writer(worker));
        await killNow;
        stopping = true;
        if (everyNode) {
          await cluster.stop();
          for (let index = 0; index < cluster.replicaCount; index++) {
            await cluster.startReplica(index);
          }
          await cluster.startPrimary(cluster.primaryPort);
        } else {
          await cluster.restartPrimary();
        }
        const restartedAt = Date.now();
        await Promise.all(writers);
        await waitForConvergence(cluster, restartedAt, 60_000);
        for (const root of cluster.allRoots()) {
          assert.deepStrictEqual(await stagedFiles(root), [], `round ${round}: staged bytes left under ${root}`);
        }
        for (const record of await cluster.client('crash').files()) {
          assert.strictEqual(record.sha256, acknowledged.get(record.name), `round ${round}: ${record.name} is listed but was never acknowledged with that content`);
        }
      }
      for (const root of cluster.allRoots()) {
        for (const [name, digest] of acknowledged) {
          const file = path.join(root, 'crash', name);
          const stat = await fs.lstat(file);
          assert.ok(stat.isFile(), `${file} is a plain file`);
          assert.strictEqual(sha256(await fs.readFile(file)), digest, `${file} holds the acknowledged bytes`);
        }
      }
      console.log(`      ${acknowledged.size} acknowledged files intact as plain files on 3 nodes; ${cut} uploads cut off by the kills`);
    } finally {
      await cluster.destroy();
    }
  });
});

describe('group commit: a placement a crash left unconfirmed is finished from the bytes in the record', function () {
  this.timeout(120_000);

  it('files missing, cut short or never confirmed after a crash are written again from the journal on every node before it serves', async () => {
    const cluster = await TestCluster.start({ replicas: 1 });
    try {
      const client = cluster.client('cut');
      const first = Buffer.from('first bytes of a, kept as an older version');
      const second = Buffer.from('second bytes of a, the current version');
      const deep = randomBytes(3000);
      const never = randomBytes(2000);
      await client.upload('a.txt', [first], first.length);
      await client.upload('a.txt', [second], second.length);
      await client.upload('deep/er/b.bin', [deep], deep.length);
      await client.upload('never-synced.bin', [never], never.length);
      await cluster.stop();
      // What a power cut between a record's sync and its placement's leaves: the notes
      // confirming the placements lost, the files missing or short, or renamed into place
      // but empty (the rename reached the disk, the file's bytes never did).
      for (const root of cluster.allRoots()) {
        const catalog = path.join(root, '.dfs', 'catalog');
        for (const file of await fs.readdir(catalog)) {
          const text = await fs.readFile(path.join(catalog, file), 'utf8');
          await fs.writeFile(path.join(catalog, file), text.split('\n').filter((line) => !line.startsWith('{"f":')).join('\n'));
        }
        await fs.truncate(path.join(root, 'cut', 'a.txt'), 7);
        await fs.truncate(path.join(root, 'cut', 'never-synced.bin'), 0);
        await fs.rm(path.join(root, 'cut', 'deep'), { recursive: true });
        for (const older of await fs.readdir(path.join(root, '.dfs', 'versions', 'cut'))) {
          await fs.rm(path.join(root, '.dfs', 'versions', 'cut', older));
        }
      }
      // Each node on its own: what it shows once listening is its own recovery, not a copy from a peer.
      const checkRoot = async (root: string, node: SpawnedNode): Promise<void> => {
        assert.strictEqual(await fs.readFile(path.join(root, 'cut', 'a.txt'), 'utf8'), second.toString(), `${root}: the current version written again`);
        assert.ok((await fs.readFile(path.join(root, 'cut', 'deep', 'er', 'b.bin'))).equals(deep), `${root}: the missing file written again, folders and all`);
        assert.ok((await fs.readFile(path.join(root, 'cut', 'never-synced.bin'))).equals(never), `${root}: the file left empty written again`);
        const older = await fs.readdir(path.join(root, '.dfs', 'versions', 'cut'));
        assert.strictEqual(older.length, 1, `${root}: the older version written again`);
        assert.strictEqual(await fs.readFile(path.join(root, '.dfs', 'versions', 'cut', older[0]), 'utf8'), first.toString());
        assert.ok(node.output.some((line) => line.includes('written again from the bytes its catalog record carries')), `${root}: the log says what was done`);
      };
      await checkRoot(cluster.replicaRoot(0), await cluster.startReplica(0));
      await cluster.killReplica(0);
      await checkRoot(cluster.primaryRoot(), await cluster.startPrimary(cluster.primaryPort));
    } finally {
      await cluster.destroy();
    }
  });
});
