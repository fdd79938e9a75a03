import * as assert from 'assert';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ClusterStatus, UploadReceipt } from '../../server/protocol';
import { stagedFiles, storedFiles } from '../support/cluster';
import { sha256, treeDigest } from '../support/convergence';
import { Impairment, NetnsCluster, PRIMARY_PORT, netnsUnavailable } from '../support/netns';
import { nextLine, runDfs } from '../support/processes';
import { RawClient } from '../support/raw-client';
import { waitFor } from '../support/wait';

/**
 * Multi-host: the primary and each of 3 replicas in its own network namespace, linked
 * by veth pairs on 198.18.0.0/15 addresses, so the replicas are reached the way remote
 * hosts are (`--replica HOST:PORT`). Mid-upload a replica's link is cut, then made to
 * drop or hold its packets: the primary must give up on that replica within its idle
 * timeout, the outcome must follow the write quorum, nothing partial may be visible
 * anywhere, and the replica must converge once its link is back.
 */

const IDLE_MS = 2_000;
/** What "within its timeout" allows beyond the idle timeout: aborting the others, the reply, scheduling. */
const GIVE_UP_MARGIN_MS = 3_000;
const SERVER_ARGS = ['--idle-timeout', String(IDLE_MS), '--header-timeout', String(IDLE_MS), '--insecure'];
const PRIMARY_ARGS = ['--sync-interval', '200'];
const BIG = 32 * 1024 * 1024;
const CHUNK = 1024 * 1024;
/** The upload holds here until the impairment is in place. */
const PAUSE_AT = 8 * CHUNK;

/** Chunks of `data`; before the chunk at `pauseAt` it waits for `gate`. */
async function* gated(data: Buffer, gate: Promise<void>): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < data.length; offset += CHUNK) {
    if (offset === PAUSE_AT) {
      await gate;
    }
    yield data.subarray(offset, offset + CHUNK);
  }
}

async function stagedBytes(root: string): Promise<number> {
  let total = 0;
  for (const name of await stagedFiles(root)) {
    total += (await fs.stat(path.join(root, '.dfs', 'tmp', name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

interface ImpairedUpload {
  data: Buffer;
  receipt?: UploadReceipt;
  error?: unknown;
  /** From the impairment being in place to the upload's answer. */
  elapsedMs: number;
  /** From the impairment being in place to the primary saying it dropped the replica and went on. */
  givenUpMs: number;
}

/** Resolves once replica `index` holds staged bytes, or fails should `ended` come first. */
async function untilStaged(cluster: NetnsCluster, index: number, ended: () => boolean): Promise<void> {
  await waitFor(async () => ended() || (await stagedBytes(cluster.replicaRoot(index))) > 0, `replica ${index + 1} to stage bytes`);
  if (ended()) {
    assert.fail(`the upload ended before replica ${index + 1} received anything`);
  }
}

/**
 * Uploads 32 MiB with our client and, once replica `index` has staged some of it,
 * applies `impair` and lets the rest of the bytes go.
 */
async function uploadWhileImpairing(cluster: NetnsCluster, clientId: string, name: string, index: number, impair: () => Promise<void>): Promise<ImpairedUpload> {
  const data = randomBytes(BIG);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let ended = false;
  const settled = cluster
    .client(clientId)
    .upload(name, gated(data, gate), BIG)
    .then(
      (receipt) => ({ receipt, error: undefined, at: Date.now() }),
      (error: unknown) => ({ receipt: undefined, error, at: Date.now() }),
    )
    .finally(() => (ended = true));
  // Whether the rest of the upload then takes long depends on this machine, not on giving up.
  const dropped = nextLine(cluster.primary!, new RegExp(`\\[primary\\] UPLOAD ${clientId}/${name}: replica ${index + 1} \\(.*\\) dropped after`), IDLE_MS + GIVE_UP_MARGIN_MS + 10_000);
  dropped.catch(() => undefined);
  try {
    await untilStaged(cluster, index, () => ended);
    await impair();
  } finally {
    release();
  }
  const impairedAt = Date.now();
  const outcome = await settled;
  const givenUp = await dropped;
  return { data, receipt: outcome.receipt, error: outcome.error, elapsedMs: outcome.at - impairedAt, givenUpMs: givenUp.at - impairedAt };
}

/**
 * The same with a raw socket, which reads the primary's answer even while it is still
 * sending: the failure reply arrives mid-body.
 */
async function rawUploadWhileImpairing(cluster: NetnsCluster, clientId: string, name: string, index: number, impair: () => Promise<void>): Promise<{ reply: string; elapsedMs: number }> {
  const data = randomBytes(BIG);
  const client = await RawClient.connect(PRIMARY_PORT, cluster.primaryAddress);
  try {
    await client.send(`UPLOAD ${clientId} ${name} ${BIG}\n`);
    assert.strictEqual(await client.recv(), 'SEND_FILE {"replaces":null}\n');
    await client.send(data.subarray(0, PAUSE_AT));
    await untilStaged(cluster, index, () => client.closed);
    await impair();
    const impairedAt = Date.now();
    const rest = client.send(data.subarray(PAUSE_AT)).catch(() => undefined);
    const reply = await client.readToClose(IDLE_MS + GIVE_UP_MARGIN_MS + 10_000);
    const elapsedMs = Date.now() - impairedAt;
    await rest;
    return { reply, elapsedMs };
  } finally {
    client.destroy();
  }
}

function assertGaveUpInTime(elapsedMs: number, what: string): void {
  assert.ok(
    elapsedMs < IDLE_MS + GIVE_UP_MARGIN_MS,
    `${what}: the primary gave up on the replica ${elapsedMs} ms after the impairment; it should within its ${IDLE_MS} ms idle timeout (+${GIVE_UP_MARGIN_MS} ms)`,
  );
}

/** No stored file of `clientId` on any node, no staged bytes anywhere, nothing listed. */
async function assertNothingPartial(cluster: NetnsCluster, clientId: string): Promise<void> {
  for (const root of cluster.allRoots()) {
    assert.deepStrictEqual((await storedFiles(root)).filter((file) => file.startsWith(`${clientId}/`)), [], `a file of ${clientId} is stored under ${root}`);
  }
  // The impaired replica hears no ABORT: it must drop its staged bytes on its own idle timeout.
  await untilNothingStaged(cluster, IDLE_MS + 5_000);
  assert.deepStrictEqual(await cluster.client(clientId).list(), []);
  assert.deepStrictEqual(await cluster.client(clientId).files(), []);
}

/** Every replica holds exactly the primary's files, byte for byte, and no staged bytes. */
async function assertIdenticalCopies(cluster: NetnsCluster): Promise<Map<string, string>> {
  const primary = await treeDigest(cluster.primaryRoot());
  for (let index = 0; index < cluster.replicaCount; index++) {
    const replica = await treeDigest(cluster.replicaRoot(index));
    assert.deepStrictEqual(Object.fromEntries([...replica].sort()), Object.fromEntries([...primary].sort()), `replica ${index + 1} differs from the primary`);
  }
  // A catch-up pass planned before the last upload reached a replica may still be
  // sending it a copy it turns out to hold: staged for a moment, never left behind.
  await untilNothingStaged(cluster, 10_000);
  return primary;
}

/** Fails, naming what is left, unless every node's staged bytes are gone within `timeoutMs`. */
async function untilNothingStaged(cluster: NetnsCluster, timeoutMs: number): Promise<void> {
  const staged = (): Promise<string[][]> => Promise.all(cluster.allRoots().map(stagedFiles));
  const left = await waitFor(async () => (await staged()).every((files) => files.length === 0), 'staged bytes to be discarded on every node', timeoutMs).catch(
    async (error: Error) => `${error.message}; staged: ${JSON.stringify(await staged())}`,
  );
  assert.strictEqual(left, true, String(left));
}

async function status(cluster: NetnsCluster): Promise<ClusterStatus | undefined> {
  return (await cluster.client('status').status().catch(() => undefined)) as ClusterStatus | undefined;
}

/** Polls the primary's STATUS until every replica is reachable, nothing is behind, and a catch-up pass started after `since`. */
async function waitForConvergence(cluster: NetnsCluster, since: number): Promise<ClusterStatus> {
  return waitFor(
    async () => {
      const current = await status(cluster);
      const done = current?.replicas.every((replica) => replica.reachable && replica.filesBehind === 0 && (replica.lastSyncMs ?? 0) > since);
      return done ? current : undefined;
    },
    'every replica to be reachable, caught up, and synced after its link came back',
    // A catch-up pass started while the link was bad can spend its connection attempts (3 s each, 4 tries) first.
    30_000,
  );
}

describe('multi-host: primary and 3 replicas in separate network namespaces', function () {
  this.timeout(120_000);
  let cluster: NetnsCluster | undefined;

  before(async function () {
    const reason = await netnsUnavailable();
    if (reason) {
      console.log(`      skipped: network namespaces cannot be created here: ${reason}`);
      this.skip();
    }
    cluster = await NetnsCluster.create(3);
    await Promise.all([0, 1, 2].map((index) => cluster!.startReplica(index, SERVER_ARGS)));
    if (!cluster.netem) {
      console.log('      note: this kernel has no sch_netem; packet loss is "pfifo limit 0" and delay is a 1 kbit/s "tbf" instead');
    }
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && cluster) {
      console.log(cluster.logs().replace(/^/gm, '        '));
    }
  });

  after(async () => {
    await cluster?.destroy();
  });

  /** One link impairment mid-upload, for both write quorums. */
  type Fault = { what: string; apply: (c: NetnsCluster, index: number) => Promise<void>; undo: (c: NetnsCluster, index: number) => Promise<void> };
  const impairment = (how: Impairment): Fault => ({
    what: how === 'loss' ? 'drops every packet (tc loss 100%)' : 'delays every packet (tc delay 5000ms)',
    apply: async (c, index) => {
      const qdisc = await c.impair(index, how);
      console.log(`      replica ${index + 1}'s link: ${qdisc}`);
    },
    undo: (c, index) => c.clearImpairment(index),
  });
  const faults: Fault[] = [
    { what: 'is cut (ip link set down)', apply: (c, index) => c.cutLink(index), undo: (c, index) => c.restoreLink(index) },
    impairment('loss'),
    impairment('delay'),
  ];

  describe('write quorum all', () => {
    before(async () => {
      await cluster!.startPrimary('all', [...SERVER_ARGS, ...PRIMARY_ARGS]);
    });

    after(async () => {
      await cluster?.stopPrimary();
    });

    it('every server runs in its own namespace, and uploads across them are stored in 4 identical copies', async () => {
      const c = cluster!;
      const inodes = await Promise.all([c.primaryNs, ...c.replicaNs].map((ns) => c.namespaceInode(ns)));
      const actual = await Promise.all([c.primary!, ...c.replicas.map((node) => node!)].map((node) => c.namespaceOf(node.child.pid!)));
      assert.deepStrictEqual(actual, inodes, 'a server is not in its own namespace');
      assert.strictEqual(new Set([...inodes, await c.namespaceOf(process.pid)]).size, 5, 'namespaces are not distinct from each other and from the test');
      for (const ns of [c.primaryNs, ...c.replicaNs]) {
        assert.strictEqual(await c.defaultRoutes(ns), '', `${ns} has a way out`);
      }

      const files: [string, Buffer][] = [
        ['empty.txt', Buffer.alloc(0)],
        ['one.txt', Buffer.from('x')],
        ['notes/with space.md', Buffer.from('across namespaces\n')],
        ['deep/a/b/c.bin', randomBytes(300_000)],
        ['big.bin', randomBytes(5 * 1024 * 1024 + 17)],
      ];
      for (const [name, data] of files) {
        const receipt = await c.client('hosts').upload(name, [data], data.length);
        assert.strictEqual(receipt.sha256, sha256(data), name);
        assert.strictEqual(receipt.copies, 4, name);
        assert.deepStrictEqual(receipt.replicasBehind, [], name);
      }

      // The CLI too, from the root namespace, over the client link.
      const local = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-netns-cli-'));
      try {
        const cliData = randomBytes(1_000_000);
        await fs.writeFile(path.join(local, 'from-cli.bin'), cliData);
        const uploaded = await runDfs(['upload', path.join(local, 'from-cli.bin'), '--server', c.address, '--client', 'hosts']);
        assert.strictEqual(uploaded.code, 0, uploaded.stderr);
        assert.match(uploaded.stdout, /uploaded from-cli\.bin .*4 copies/);
        files.push(['from-cli.bin', cliData]);
      } finally {
        await fs.rm(local, { recursive: true, force: true });
      }
      const shown = await runDfs(['status', '--json', '--server', c.address, '--client', 'hosts']);
      assert.strictEqual(shown.code, 0, shown.stderr);
      const cliStatus = JSON.parse(shown.stdout) as ClusterStatus;
      assert.deepStrictEqual(
        cliStatus.replicas.map((replica) => [replica.address, replica.reachable]),
        [0, 1, 2].map((index) => [`${c.replicaAddress(index)}:${c.replicaPort(index)}`, true]),
      );

      const listed = await c.client('hosts').files();
      assert.deepStrictEqual(listed.map((file) => [file.name, file.sha256, file.copies]).sort(), files.map(([name, data]) => [name, sha256(data), 4]).sort());
      const copies = await assertIdenticalCopies(c);
      for (const [name, data] of files) {
        assert.strictEqual(copies.get(`hosts/${name}`), sha256(data), `${name} on disk`);
      }
    });

    for (const fault of faults) {
      it(`a replica whose link ${fault.what} mid-upload: given up within the idle timeout, the upload fails, nothing partial anywhere; fine again once the link is back`, async () => {
        const c = cluster!;
        const clientId = `all-${faults.indexOf(fault)}`;
        const index = 2;
        const before = await treeDigest(c.primaryRoot());
        try {
          const { reply, elapsedMs } = await rawUploadWhileImpairing(c, clientId, 'big.bin', index, () => fault.apply(c, index));
          const replica = `replica ${index + 1} \\(${c.replicaAddress(index).replace(/\./g, '\\.')}:${c.replicaPort(index)}\\)`;
          assert.match(reply, new RegExp(`^UPLOAD_FAILURE QUORUM .*${replica}`));
          assertGaveUpInTime(elapsedMs, fault.what);
          console.log(`      failed after ${elapsedMs} ms: ${reply.trim()}`);
          await assertNothingPartial(c, clientId);
        } finally {
          await fault.undo(c, index);
        }
        const restoredAt = Date.now();
        await waitForConvergence(c, restoredAt);
        const after = 'after.txt';
        const receipt = await c.client(clientId).upload(after, [Buffer.from('link is back')], 12);
        assert.strictEqual(receipt.copies, 4);
        const copies = await assertIdenticalCopies(c);
        assert.deepStrictEqual([...copies.keys()].filter((key) => key.startsWith(`${clientId}/`)), [`${clientId}/${after}`]);
        assert.strictEqual(copies.size, before.size + 1);
      });
    }
  });

  describe('write quorum majority', () => {
    before(async () => {
      await cluster!.startPrimary('majority', [...SERVER_ARGS, ...PRIMARY_ARGS]);
    });

    after(async () => {
      await cluster?.stopPrimary();
    });

    for (const fault of faults) {
      it(`a replica whose link ${fault.what} mid-upload: given up within the idle timeout, the upload succeeds without it, and it converges once the link is back`, async () => {
        const c = cluster!;
        const clientId = `maj-${faults.indexOf(fault)}`;
        const index = faults.indexOf(fault);
        let restoredAt = 0;
        let result: ImpairedUpload | undefined;
        try {
          result = await uploadWhileImpairing(c, clientId, 'big.bin', index, () => fault.apply(c, index));
          assert.ok(result.receipt, `the upload failed although a majority of replicas held it: ${String(result.error)}`);
          assert.strictEqual(result.receipt.sha256, sha256(result.data));
          assert.strictEqual(result.receipt.copies, 3);
          assert.deepStrictEqual(result.receipt.replicasBehind, [index + 1]);
          assertGaveUpInTime(result.givenUpMs, fault.what);
          console.log(`      replica ${index + 1} dropped after ${result.givenUpMs} ms; stored after ${result.elapsedMs} ms with it behind`);
          // While the link is bad the replica holds neither the file nor its staged bytes, and the primary knows it is behind.
          await waitFor(async () => (await stagedFiles(c.replicaRoot(index))).length === 0, `replica ${index + 1} to discard its staged bytes`, IDLE_MS + 5_000);
          assert.deepStrictEqual((await storedFiles(c.replicaRoot(index))).filter((file) => file.startsWith(`${clientId}/`)), []);
          const during = await status(c);
          assert.ok(during, 'the primary does not answer STATUS');
          assert.ok(during.replicas[index].filesBehind >= 1, `replica ${index + 1} is not reported behind: ${JSON.stringify(during.replicas[index])}`);
        } finally {
          await fault.undo(c, index);
          restoredAt = Date.now();
        }
        await waitForConvergence(c, restoredAt);
        const expected = sha256(result!.data);
        const copies = await assertIdenticalCopies(c);
        assert.strictEqual(copies.get(`${clientId}/big.bin`), expected);
        assert.strictEqual(sha256(await fs.readFile(path.join(c.replicaRoot(index), clientId, 'big.bin'))), expected);
      });
    }
  });
});
