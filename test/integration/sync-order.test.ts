import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import type { ClusterStatus } from '../../server/protocol';
import { freePortRange } from '../support/ports';
import { SpawnedNode, spawnDfs, stopChild } from '../support/processes';
import { Checked, assertNoViolations, checkTraceFile as check, straceLauncher, straceUnavailable, stopTraced } from '../support/traced';
import { waitFor } from '../support/wait';

/**
 * A kill -9 keeps the page cache, so no crash test can show a sync that is missing or
 * comes too late. This test watches the syscalls instead (strace, Debian's package)
 * of a primary and its replica through uploads, overwrites, deletes, a catch-up of the
 * replica after it was down, and catalog compactions (made frequent with
 * --compact-after), and checks every node's trace against the ordering rules in
 * test/support/sync-rules.ts: bytes synced before the rename or record that publishes
 * them, folders synced after their entries change and before the reply, journal
 * records synced before any message announcing them, old journals removed only after
 * the snapshot replacing them is durably in place.
 */

/** Small enough that every node compacts its catalog several times during the test. */
const COMPACT_AFTER = '4';

/** At least `least` messages of this kind were checked, each with a journal record of its own. */
function assertRecorded({ report }: Checked, label: string, least: number, node: string): void {
  const recorded = report.coverage.recorded.get(label) ?? 0;
  assert.ok(recorded >= least, `${node}: expected at least ${least} "${label}" with a journal record checked, saw ${recorded} (checked: ${JSON.stringify([...report.coverage.messages])})`);
}

describe('durability: the sync ordering rules hold on every node (strace)', function () {
  this.timeout(120_000);
  let dataDir: string;
  const nodes: SpawnedNode[] = [];
  let primary: Checked;
  let replicaBefore: Checked;
  let replicaCaughtUp: Checked;

  before(async function () {
    const reason = await straceUnavailable();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-sync-'));
    const base = await freePortRange(1);
    // Staged bytes named by their records: small files would travel inside their records
    // instead (group-commit.test.ts traces that path), so this run turns that off.
    const common = ['--host', '127.0.0.1', '--base-port', String(base), '--replicas', '1', '--data-dir', dataDir, '--compact-after', COMPACT_AFTER, '--inline-max', '0'];
    const traces = { primary: path.join(dataDir, 'primary.trace'), replica1: path.join(dataDir, 'replica-1.trace'), replica2: path.join(dataDir, 'replica-2.trace') };
    const startReplica = async (trace: string): Promise<SpawnedNode> => {
      const node = await spawnDfs(['replica', '--port', String(base), ...common], { launcher: straceLauncher(trace), readyTimeoutMs: 30_000 });
      nodes.push(node);
      return node;
    };
    let replica = await startReplica(traces.replica1);
    // Quorum 0: the primary goes on taking writes while its replica is down, for catch-up to bring over.
    const primaryNode = await spawnDfs(['primary', '--port', '0', '--write-quorum', '0', '--sync-interval', '300', ...common], {
      launcher: straceLauncher(traces.primary),
      readyTimeoutMs: 30_000,
    });
    nodes.push(primaryNode);
    const client = new DfsClient({ host: '127.0.0.1', port: primaryNode.port, clientId: 'synced' });
    const put = (name: string, text: string): Promise<unknown> => client.upload(name, [Buffer.from(text)], Buffer.byteLength(text));

    await put('a.txt', 'first bytes of a');
    await put('deep/er/b.bin', 'bytes of b, two folders down');
    await put('a.txt', 'second bytes of a, an overwrite');
    await client.delete('deep/er/b.bin');
    await put('c.txt', 'c before the replica goes down');
    // Renames in step: into a new folder, and over an existing name.
    await put('r.txt', 'bytes of r, renamed twice');
    await client.rename('r.txt', 'moved/away/r.txt');
    await put('over.txt', 'replaced by the rename');
    await client.rename('moved/away/r.txt', 'over.txt', { replace: true });
    await stopTraced(replica);

    // Missed by the replica: a new name, an overwrite, a delete of a name it holds.
    await put('d.txt', 'd while the replica is down');
    await put('c.txt', 'c overwritten while the replica is down');
    await client.delete('a.txt');
    await client.rename('over.txt', 'renamed while down.txt');

    const restartedMs = Date.now();
    replica = await startReplica(traces.replica2);
    await waitFor(
      async () => {
        const status = (await client.status()) as ClusterStatus;
        const link = status.replicas[0];
        return link.reachable && link.filesBehind === 0 && (link.lastSyncMs ?? 0) >= restartedMs;
      },
      'the restarted replica to be caught up',
      60_000,
    );
    // strace writes its log as the traced server exits: stop the servers, not strace.
    await Promise.all([stopTraced(primaryNode), stopTraced(replica)]);
    [primary, replicaBefore, replicaCaughtUp] = await Promise.all([check(traces.primary), check(traces.replica1), check(traces.replica2)]);
  });

  after(async () => {
    await Promise.all(nodes.map((node) => stopChild(node.child, 'SIGKILL')));
    if (dataDir) {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });

  it('the primary: uploads, overwrites, deletes and renames, with and without its replica, and its compactions', () => {
    assertNoViolations(primary, 'primary');
    assertRecorded(primary, 'UPLOAD -> UPLOAD_SUCCESS', 6, 'primary');
    assertRecorded(primary, 'DELETE -> DELETE_SUCCESS', 2, 'primary');
    assertRecorded(primary, '(out) REPLICA -> COMMIT', 4, 'primary');
    assertRecorded(primary, 'RENAME -> RENAME_SUCCESS', 2, 'primary');
    assertRecorded(primary, 'RENAME_IF -> RENAME_SUCCESS', 1, 'primary');
    assert.ok((primary.report.coverage.messages.get('(out) REPLICA_RENAME') ?? 0) >= 2, 'the primary told its replica of the renames in step only after its own record');
    assert.ok(primary.report.coverage.linkedRecords >= 3, `every rename's record names the link to its source (saw ${primary.report.coverage.linkedRecords})`);
    const { coverage } = primary.report;
    assert.ok((coverage.messages.get('(out) REPLICA_DELETE') ?? 0) >= 2, 'the primary told its replica of a delete as it happened and in catch-up');
    assert.ok(coverage.stagedRecords >= 6, `every upload's record names its staged bytes (saw ${coverage.stagedRecords})`);
    assert.ok(coverage.compactions >= 1, 'the primary compacted its catalog at least once');
  });

  it('the replica while in step: two-phase uploads, overwrites, a delete, renames, its compactions', () => {
    assertNoViolations(replicaBefore, 'replica (first run)');
    assertRecorded(replicaBefore, 'REPLICA -> REPLICA_SUCCESS', 4, 'replica (first run)');
    assertRecorded(replicaBefore, 'REPLICA_DELETE -> REPLICA_SUCCESS', 1, 'replica (first run)');
    assertRecorded(replicaBefore, 'REPLICA_RENAME -> REPLICA_SUCCESS', 2, 'replica (first run)');
    assert.ok(replicaBefore.report.coverage.linkedRecords >= 2, 'the replica synced its staging folder after linking each rename\'s source');
    assert.ok((replicaBefore.report.coverage.messages.get('REPLICA -> REPLICA_PREPARED') ?? 0) >= 4, 'REPLICA_PREPARED was checked for every upload');
    assert.ok(replicaBefore.report.coverage.compactions >= 1, 'the replica compacted its catalog at least once');
  });

  it('the replica caught up after being down: what it missed arrives with the same ordering', () => {
    assertNoViolations(replicaCaughtUp, 'replica (caught up)');
    assertRecorded(replicaCaughtUp, 'REPLICA -> REPLICA_SUCCESS', 2, 'replica (caught up)');
    assertRecorded(replicaCaughtUp, 'REPLICA_DELETE -> REPLICA_SUCCESS', 1, 'replica (caught up)');
    assertRecorded(replicaCaughtUp, 'SYNCED -> OK', 1, 'replica (caught up)');
    assert.ok(replicaCaughtUp.report.coverage.compactions >= 1, 'the caught-up replica compacted its catalog at least once');
  });
});
