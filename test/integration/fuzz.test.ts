import * as assert from 'assert';
import fc from 'fast-check';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { validateClientId, validateFileName } from '../../server/protocol';
import { TestCluster, storedFiles } from '../support/cluster';
import { RawClient } from '../support/raw-client';

const SEED = Number(process.env.DFS_FUZZ_SEED ?? 20261127);
const HEADERS = 10_000;

/** Headers that look almost right: real verbs with hostile arguments. */
function headerArbitrary(): fc.Arbitrary<Buffer> {
  const verb = fc.constantFrom('UPLOAD', 'LIST', 'REPLICA', 'DOWNLOAD', 'DELETE', 'FILES', 'CLIENTS', 'STATUS', 'REPLICA_DELETE', 'INVENTORY', 'SCRUB', 'upload', 'GET', '');
  const piece = fc.oneof(
    fc.constantFrom('..', '.', '/', '\\', '../..', '/etc/passwd', '../../../../../../tmp/pwned', 'a/../../b', '.dfs', '.dfs/tmp/x', '~', '\u0000', '%2e%2e', 'C:\\x', ' ', '', '\r', 'é', '💾'),
    fc.string({ maxLength: 12 }),
    fc.stringMatching(/^[a-z0-9._/-]{1,20}$/),
  );
  const size = fc.oneof(fc.constantFrom('-1', '0', '1', 'NaN', '1e9', '0x10', '99999999999999999999', '', '  3', '18446744073709551616'), fc.nat({ max: 4096 }).map(String));
  const structured = fc.tuple(verb, fc.array(piece, { maxLength: 4 }), size, fc.constantFrom('\n', '\r\n', '', '\n\n', ' \n')).map(([v, parts, s, end]) => Buffer.from(`${v} ${parts.join(' ')} ${s}${end}`));
  const random = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => Buffer.from(bytes));
  const huge = fc.nat({ max: 20_000 }).map((n) => Buffer.from(`UPLOAD a ${'x'.repeat(8_000 + n)} 1\n`));
  return fc.oneof({ weight: 6, arbitrary: structured }, { weight: 3, arbitrary: random }, { weight: 1, arbitrary: huge });
}

async function sendOne(port: number, header: Buffer): Promise<void> {
  const client = await RawClient.connect(port);
  try {
    await client.send(header);
    // Whatever the answer (failure, SEND_FILE, a listing), take one reply and vanish.
    await client.recv(15_000).catch(() => undefined);
  } finally {
    client.destroy();
  }
}

async function runAll(port: number, headers: Buffer[], concurrency: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < headers.length) {
        await sendOne(port, headers[next++]);
      }
    }),
  );
}

/** One step of a hostile session after its header. */
type Step = { kind: 'bytes'; count: number } | { kind: 'line'; text: string } | { kind: 'pause' } | { kind: 'halfClose' };

function sessionArbitrary(): fc.Arbitrary<{ header: string; steps: Step[] }> {
  const name = fc.oneof(fc.stringMatching(/^[a-z]{1,8}(\/[a-z]{1,8}){0,2}$/), fc.constantFrom('../x', 'a//b', '.dfs/meta/x', 'ok.txt'));
  const header = fc
    .tuple(fc.constantFrom('UPLOAD', 'REPLICA', 'DOWNLOAD', 'DELETE', 'LIST', 'FILES'), fc.constantFrom('fuzz', 'other', '..'), name, fc.nat({ max: 3000 }), fc.constantFrom('\n', ''))
    .map(([verb, client, file, size, end]) => (verb === 'LIST' || verb === 'FILES' ? `${verb} ${client}${end}` : verb === 'DOWNLOAD' || verb === 'DELETE' ? `${verb} ${client} ${file}${end}` : `${verb} ${client} ${file} ${size}${end}`));
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.nat({ max: 4000 }).map((count) => ({ kind: 'bytes' as const, count })),
    fc.constantFrom('COMMIT', 'ABORT', 'CHECKSUM 00', `CHECKSUM ${'a'.repeat(64)}`, 'UPLOAD fuzz x 1', '').map((text) => ({ kind: 'line' as const, text })),
    fc.constant({ kind: 'pause' as const }),
    fc.constant({ kind: 'halfClose' as const }),
  );
  return fc.record({ header, steps: fc.array(step, { maxLength: 6 }) });
}

async function playSession(port: number, session: { header: string; steps: Step[] }): Promise<void> {
  const client = await RawClient.connect(port);
  try {
    await client.send(session.header);
    for (const step of session.steps) {
      if (step.kind === 'bytes') {
        await client.send(Buffer.alloc(step.count, 0x61)).catch(() => undefined);
      } else if (step.kind === 'line') {
        await client.send(step.text + '\n').catch(() => undefined);
      } else if (step.kind === 'pause') {
        await client.recv(100).catch(() => undefined);
      } else {
        client.socket.end();
      }
    }
    await client.recv(3_000).catch(() => undefined);
  } finally {
    client.destroy();
  }
}

describe('fuzzing the header parser against live servers', function () {
  this.timeout(300_000);
  let cluster: TestCluster;
  let sandbox: string;
  let dataDir: string;

  before(async () => {
    // Deep inside a sandbox, so a name that climbed out of the data directory would land where we can see it.
    sandbox = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-fuzz-'));
    dataDir = path.join(sandbox, 'l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'data');
    await fs.mkdir(dataDir, { recursive: true });
    cluster = await TestCluster.start({ replicas: 3, dataDir, args: ['--header-timeout', '2000', '--idle-timeout', '2000', '--max-file-size', '1048576'] });
  });

  after(async () => {
    await cluster.destroy();
    await fs.rm(sandbox, { recursive: true, force: true });
  });

  it(`survives ${HEADERS} random and malformed headers on the primary and on a replica (seed ${SEED})`, async () => {
    const headers = fc.sample(headerArbitrary(), { numRuns: HEADERS, seed: SEED });
    await runAll(cluster.primaryPort, headers, 48);
    await runAll(cluster.replicas[0]!.port, fc.sample(headerArbitrary(), { numRuns: HEADERS, seed: SEED + 1 }), 48);

    // Both still serve.
    const receipt = await cluster.client('afterfuzz').upload('ok.txt', [Buffer.from('alive')], 5);
    assert.strictEqual(receipt.copies, 4);
    const status = await cluster.client().status();
    assert.strictEqual(status.role, 'primary');

    // Nothing outside the data directory: every level of the sandbox holds only the path down.
    let dir = sandbox;
    for (const level of ['l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'data']) {
      assert.deepStrictEqual(await fs.readdir(dir), [level], `unexpected entries in ${dir}`);
      dir = path.join(dir, level);
    }
    assert.deepStrictEqual((await fs.readdir(dataDir)).sort(), ['replica1', 'replica2', 'replica3', 'servidor']);
    // And inside it, only valid client folders holding valid names.
    await assertOnlyValidNames(cluster);
  });

  it(`survives 600 random whole sessions (headers, short and long bodies, stray steps, half-closes) on both roles (seed ${SEED})`, async () => {
    for (const [label, port] of [
      ['primary', cluster.primaryPort],
      ['replica', cluster.replicas[1]!.port],
    ] as const) {
      await fc.assert(
        fc.asyncProperty(sessionArbitrary(), async (session) => {
          await playSession(port, session);
          assert.strictEqual(cluster.primary.child.exitCode, null, 'the primary died');
          assert.strictEqual(cluster.replicas[1]!.child.exitCode, null, 'replica 2 died');
        }),
        { numRuns: 300, seed: SEED + (label === 'primary' ? 2 : 3) },
      );
    }
    const receipt = await cluster.client('aftersessions').upload('ok.txt', [Buffer.from('alive')], 5);
    assert.ok(receipt.copies >= 1);
    await assertOnlyValidNames(cluster);
    assert.deepStrictEqual((await fs.readdir(dataDir)).sort(), ['replica1', 'replica2', 'replica3', 'servidor']);
  });

  async function assertOnlyValidNames(cluster: TestCluster): Promise<void> {
    for (const root of cluster.allRoots()) {
      for (const file of await storedFiles(root)) {
        const [clientId, ...rest] = file.split('/');
        validateClientId(clientId);
        validateFileName(rest.join('/'));
      }
    }
  }
});
