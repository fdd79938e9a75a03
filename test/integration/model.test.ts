import * as assert from 'assert';
import { createHash } from 'crypto';
import fc from 'fast-check';
import { promises as fs } from 'fs';
import * as path from 'path';
import { PassThrough } from 'stream';
import { DfsClient } from '../../server/client/dfs-client';
import { ClusterStatus, DfsError, Precondition, currentGenerationOf } from '../../server/protocol';
import { TestCluster } from '../support/cluster';
import { assertIdenticalCopies, waitForConvergence } from '../support/convergence';
import { stopChild } from '../support/processes';

/**
 * Model-based test of the versioned store: random sequences of uploads, conditional
 * uploads, deletes, restores, kill -9 and restart of any node, a wiped primary folder
 * and an old copy of it put back, each checked against a model after every step:
 * every acknowledged version is the one served until a later acknowledged operation
 * replaces it, nothing that was never acknowledged is listed by any node, deletes
 * stay deleted, and at the end of each run every copy converges to identical bytes.
 *
 * One cluster per quorum serves all runs; each run works under its own client id, and
 * every run's final state is checked again after the last run, so the faults of later
 * runs are checked against the data of earlier ones too. DFS_MODEL_RUNS sets the runs
 * per quorum; DFS_MODEL_SEED replays one; DFS_MODEL_SHRINK=1 shrinks a failure to the
 * shortest failing history (slow: every attempt replays a whole run).
 */

const RUNS = Number(process.env.DFS_MODEL_RUNS ?? 100);
const KEEP = 5;
const NAMES = ['a', 'b', 'dir', 'dir/c'] as const;
type Name = (typeof NAMES)[number];
type NodeRef = 'primary' | 0 | 1 | 2;

interface Version {
  generation: number;
  sha256: string;
  content: Buffer;
}

/** What the cluster must hold, and which of its processes run. */
class Model {
  /** The current version of each stored name. */
  readonly files = new Map<Name, Version>();
  /** The versions kept of each name, newest first (the current one included). */
  readonly kept = new Map<Name, Version[]>();
  /** Every version ever acknowledged, as "name generation sha256". */
  readonly acknowledged = new Set<string>();
  primaryUp = true;
  readonly replicasUp = [true, true, true];
  hasSnapshot = false;

  constructor(
    readonly required: number,
    readonly recoverFrom: number,
  ) {}

  get upReplicas(): number {
    return this.replicasUp.filter(Boolean).length;
  }

  /** The primary answers (after recovery) only with enough replicas to know the latest versions. */
  get canServe(): boolean {
    return this.primaryUp && this.upReplicas >= this.recoverFrom;
  }

  get canWrite(): boolean {
    return this.canServe && this.upReplicas >= this.required;
  }

  stored(name: Name, version: Version): void {
    this.files.set(name, version);
    this.kept.set(name, [version, ...(this.kept.get(name) ?? [])].slice(0, KEEP + 1));
    this.acknowledged.add(`${name} ${version.generation} ${version.sha256}`);
  }

  deleted(name: Name): void {
    this.files.delete(name);
    this.kept.delete(name);
  }

  /** A name where another needs a folder, or a folder holding another: what the primary refuses. */
  clashes(name: Name): boolean {
    return [...this.files.keys()].some((other) => other !== name && (other.startsWith(name + '/') || name.startsWith(other + '/')));
  }
}

class System {
  snapshot: string;
  constructor(
    readonly cluster: TestCluster,
    readonly clientId: string,
  ) {
    this.snapshot = path.join(cluster.dataDir, `servidor-copy-${clientId}`);
  }

  client(): DfsClient {
    return this.cluster.client(this.clientId);
  }
}

type Step = fc.AsyncCommand<Model, System>;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function expectCode(error: unknown, codes: string[], what: string): DfsError {
  assert.ok(error instanceof DfsError, `${what}: ${String(error)}`);
  assert.ok(codes.includes(error.code), `${what}: expected ${codes.join(' or ')}, got ${error.code}: ${error.message}`);
  return error;
}

/** After every step: what the primary lists is the model, and no node lists what was never acknowledged. */
async function checkReads(model: Model, system: System): Promise<void> {
  if (!model.canServe) {
    return;
  }
  const client = system.client();
  const listed = await client.files();
  assert.deepStrictEqual(
    Object.fromEntries(listed.map((file) => [file.name, `${file.generation} ${file.sha256}`])),
    Object.fromEntries([...model.files].map(([name, version]) => [name, `${version.generation} ${version.sha256}`])),
    'the primary lists exactly the acknowledged state',
  );
  for (const [index, replica] of system.cluster.replicas.entries()) {
    if (!replica || !model.replicasUp[index]) {
      continue;
    }
    const reader = new DfsClient({ host: '127.0.0.1', port: replica.port, clientId: system.clientId });
    for (const file of await reader.files()) {
      assert.ok(model.acknowledged.has(`${file.name} ${file.generation} ${file.sha256}`), `replica ${index + 1} lists ${file.name} generation ${file.generation}, never acknowledged`);
    }
  }
  const [name, version] = [...model.files][0] ?? [];
  if (name && version) {
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (chunk: Buffer) => chunks.push(chunk));
    const got = await client.download(name, sink);
    assert.strictEqual(got.generation, version.generation);
    assert.ok(Buffer.concat(chunks).equals(version.content), `${name}: the bytes served are the acknowledged ones`);
    assert.deepStrictEqual(
      (await client.versions(name)).map((kept) => `${kept.generation} ${kept.sha256}`),
      (model.kept.get(name) ?? []).map((kept) => `${kept.generation} ${kept.sha256}`),
      `${name}: the kept versions`,
    );
  }
}

class Upload implements Step {
  constructor(
    readonly name: Name,
    readonly content: Buffer,
    readonly condition: 'none' | 'current' | 'stale' | 'absent',
  ) {}

  check(model: Model): boolean {
    return model.canServe || !model.primaryUp;
  }

  async run(model: Model, system: System): Promise<void> {
    const current = model.files.get(this.name);
    const precondition: Precondition | undefined =
      this.condition === 'none'
        ? undefined
        : this.condition === 'absent'
          ? { kind: 'absent' }
          : this.condition === 'current'
            ? current
              ? { kind: 'generation', generation: current.generation }
              : { kind: 'absent' }
            : { kind: 'generation', generation: current ? current.generation - 1 : 1 };
    const preconditionHolds = !precondition || (precondition.kind === 'absent' ? !current : precondition.generation === current?.generation);
    try {
      const receipt = await system.client().upload(this.name, [this.content], this.content.length, { precondition });
      assert.ok(model.canWrite, 'stored although too few nodes run');
      assert.ok(preconditionHolds, `stored although the precondition ${JSON.stringify(precondition)} does not hold`);
      assert.ok(!model.clashes(this.name), 'stored although it clashes with a folder or file');
      assert.ok(!current || receipt.generation > current.generation, 'generations only go up');
      model.stored(this.name, { generation: receipt.generation, sha256: sha256(this.content), content: this.content });
    } catch (error) {
      if (!model.primaryUp) {
        expectCode(error, ['UNREACHABLE'], this.toString());
      } else if (!preconditionHolds) {
        expectCode(error, ['CONFLICT'], this.toString());
        assert.strictEqual(currentGenerationOf(error), current?.generation ?? null);
      } else if (model.clashes(this.name)) {
        expectCode(error, ['CONFLICT'], this.toString());
      } else {
        assert.ok(!model.canWrite, `${this.toString()} failed although the cluster can write: ${(error as Error).message}`);
        expectCode(error, ['QUORUM'], this.toString());
      }
    }
    await checkReads(model, system);
  }

  toString(): string {
    return `upload(${this.name}, ${this.content.length} bytes${this.condition === 'none' ? '' : `, if ${this.condition}`})`;
  }
}

class Delete implements Step {
  constructor(
    readonly name: Name,
    readonly conditional: boolean,
  ) {}

  check(model: Model): boolean {
    return model.canServe || !model.primaryUp;
  }

  async run(model: Model, system: System): Promise<void> {
    const current = model.files.get(this.name);
    try {
      await system.client().delete(this.name, { ifGeneration: this.conditional ? (current?.generation ?? 1) : undefined });
      assert.ok(model.canWrite && current, `${this.toString()} succeeded although it should not`);
      model.deleted(this.name);
    } catch (error) {
      if (!model.primaryUp) {
        expectCode(error, ['UNREACHABLE'], this.toString());
      } else if (!current) {
        expectCode(error, this.conditional ? ['CONFLICT'] : ['NOT_FOUND'], this.toString());
      } else {
        assert.ok(!model.canWrite, `${this.toString()} failed although the cluster can write: ${(error as Error).message}`);
        expectCode(error, ['QUORUM'], this.toString());
      }
    }
    await checkReads(model, system);
  }

  toString(): string {
    return `delete(${this.name}${this.conditional ? ', if current' : ''})`;
  }
}

class Restore implements Step {
  constructor(
    readonly name: Name,
    readonly pick: number,
  ) {}

  check(model: Model): boolean {
    return model.canServe && (model.kept.get(this.name)?.length ?? 0) > 1;
  }

  async run(model: Model, system: System): Promise<void> {
    const kept = model.kept.get(this.name)!;
    const older = kept[1 + (this.pick % (kept.length - 1))];
    try {
      const receipt = await system.client().restore(this.name, older.generation);
      assert.ok(model.canWrite, 'restored although too few nodes run');
      model.stored(this.name, { generation: receipt.generation, sha256: older.sha256, content: older.content });
    } catch (error) {
      assert.ok(!model.canWrite, `${this.toString()} failed although the cluster can write: ${(error as Error).message}`);
      expectCode(error, ['QUORUM'], this.toString());
    }
    await checkReads(model, system);
  }

  toString(): string {
    return `restore(${this.name}, older version #${this.pick})`;
  }
}

class Kill implements Step {
  constructor(readonly node: NodeRef) {}

  check(model: Model): boolean {
    return this.node === 'primary' ? model.primaryUp : model.replicasUp[this.node];
  }

  async run(model: Model, system: System): Promise<void> {
    if (this.node === 'primary') {
      await stopChild(system.cluster.primary.child, 'SIGKILL');
      model.primaryUp = false;
    } else {
      await system.cluster.killReplica(this.node);
      model.replicasUp[this.node] = false;
    }
    await checkReads(model, system);
  }

  toString(): string {
    return `kill -9 ${this.node === 'primary' ? 'primary' : `replica ${this.node + 1}`}`;
  }
}

class Start implements Step {
  constructor(readonly node: NodeRef) {}

  check(model: Model): boolean {
    return this.node === 'primary' ? !model.primaryUp : !model.replicasUp[this.node];
  }

  async run(model: Model, system: System): Promise<void> {
    if (this.node === 'primary') {
      await system.cluster.startPrimary(system.cluster.primaryPort);
      model.primaryUp = true;
    } else {
      await system.cluster.startReplica(this.node);
      model.replicasUp[this.node] = true;
    }
    await checkReads(model, system);
  }

  toString(): string {
    return `start ${this.node === 'primary' ? 'primary' : `replica ${this.node + 1}`}`;
  }
}

class WipePrimary implements Step {
  check(): boolean {
    return true;
  }

  async run(model: Model, system: System): Promise<void> {
    await stopChild(system.cluster.primary.child, 'SIGKILL');
    await fs.rm(system.cluster.primaryRoot(), { recursive: true, force: true });
    await system.cluster.startPrimary(system.cluster.primaryPort);
    model.primaryUp = true;
    await checkReads(model, system);
  }

  toString(): string {
    return 'wipe the primary folder and restart';
  }
}

class CopyPrimary implements Step {
  check(model: Model): boolean {
    return model.primaryUp;
  }

  async run(model: Model, system: System): Promise<void> {
    await fs.rm(system.snapshot, { recursive: true, force: true });
    await copyWhileRunning(system.cluster.primaryRoot(), system.snapshot);
    model.hasSnapshot = true;
  }

  toString(): string {
    return 'copy the primary folder aside';
  }
}

class RestoreOldCopy implements Step {
  check(model: Model): boolean {
    return model.hasSnapshot;
  }

  async run(model: Model, system: System): Promise<void> {
    await stopChild(system.cluster.primary.child, 'SIGKILL');
    await fs.rm(system.cluster.primaryRoot(), { recursive: true, force: true });
    await fs.cp(system.snapshot, system.cluster.primaryRoot(), { recursive: true });
    await system.cluster.startPrimary(system.cluster.primaryPort);
    model.primaryUp = true;
    await checkReads(model, system);
  }

  toString(): string {
    return 'put the old copy of the primary folder back and restart';
  }
}

/**
 * Copies a folder the way an operator's `cp -a` of a running server's folder does:
 * files that vanish while it walks (staged bytes of a transfer finishing) are skipped.
 */
async function copyWhileRunning(from: string, to: string): Promise<void> {
  await fs.mkdir(to, { recursive: true });
  for (const entry of await fs.readdir(from, { withFileTypes: true }).catch(() => [])) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) {
      await copyWhileRunning(source, target);
    } else {
      await fs.copyFile(source, target).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') {
          throw error;
        }
      });
    }
  }
}

const nodes = fc.constantFrom<NodeRef>('primary', 0, 1, 2);
const names = fc.constantFrom(...NAMES);
const contents = fc.integer({ min: 0, max: 2048 }).chain((size) => fc.uint8Array({ minLength: size, maxLength: size }).map((bytes) => Buffer.from(bytes)));
const steps = [
  fc.tuple(names, contents, fc.constantFrom('none' as const, 'none' as const, 'current' as const, 'stale' as const, 'absent' as const)).map(([name, content, condition]) => new Upload(name, content, condition)),
  fc.tuple(names, contents).map(([name, content]) => new Upload(name, content, 'none')),
  fc.tuple(names, fc.boolean()).map(([name, conditional]) => new Delete(name, conditional)),
  fc.tuple(names, fc.nat(5)).map(([name, pick]) => new Restore(name, pick)),
  nodes.map((node) => new Kill(node)),
  nodes.map((node) => new Start(node)),
  nodes.map((node) => new Start(node)),
  fc.constant(new WipePrimary()),
  fc.constant(new CopyPrimary()),
  fc.constant(new RestoreOldCopy()),
];

async function bringAllUp(cluster: TestCluster, model?: Model): Promise<void> {
  const starts: Promise<unknown>[] = [];
  for (let index = 0; index < 3; index++) {
    if (!cluster.replicas[index]) {
      starts.push(cluster.startReplica(index));
    }
  }
  await Promise.all(starts);
  if (cluster.primary.child.exitCode !== null || cluster.primary.child.signalCode !== null) {
    await cluster.startPrimary(cluster.primaryPort);
  }
  if (model) {
    model.primaryUp = true;
    model.replicasUp.fill(true);
  }
}

for (const quorum of ['all', 'majority'] as const) {
  describe(`model: random operations and faults against the acknowledged state, quorum ${quorum}`, function () {
    this.timeout(600_000);
    let cluster: TestCluster;
    const finals: { clientId: string; files: Map<Name, Version> }[] = [];

    before(async () => {
      cluster = await TestCluster.start({ replicas: 3, writeQuorum: quorum, args: ['--sync-interval', '200', '--header-timeout', '1000', '--idle-timeout', '3000'] });
    });

    after(async () => {
      await cluster?.destroy();
    });

    it(`${RUNS} runs of up to 12 steps; every run converges to identical copies`, async () => {
      const required = quorum === 'all' ? 3 : 2;
      const recoverFrom = 3 - required + 1;
      let run = 0;
      const seed = process.env.DFS_MODEL_SEED ? Number(process.env.DFS_MODEL_SEED) : undefined;
      await fc.assert(
        fc.asyncProperty(fc.commands(steps, { maxCommands: 12 }), async (commands) => {
          const clientId = `m${quorum}${++run}`;
          await bringAllUp(cluster);
          const model = new Model(required, recoverFrom);
          const system = new System(cluster, clientId);
          await fc.asyncModelRun(() => ({ model, real: system }), commands);
          const since = Date.now();
          await bringAllUp(cluster, model);
          await waitForConvergence(cluster, since, 60_000);
          await checkReads(model, system);
          await assertIdenticalCopies(cluster);
          await fs.rm(system.snapshot, { recursive: true, force: true });
          finals.push({ clientId, files: new Map(model.files) });
        }),
        { numRuns: RUNS, seed, endOnFailure: process.env.DFS_MODEL_SHRINK !== '1', verbose: 1 },
      );
      // Later runs' faults must not have touched what earlier runs left.
      for (const { clientId, files } of finals) {
        const listed = await cluster.client(clientId).files();
        assert.deepStrictEqual(
          Object.fromEntries(listed.map((file) => [file.name, file.generation])),
          Object.fromEntries([...files].map(([name, version]) => [name, version.generation])),
          `${clientId} after all runs`,
        );
      }
      const status = (await cluster.client().status()) as ClusterStatus;
      console.log(`      ${RUNS} runs; highest generation issued ${status.generation}`);
    });
  });
}
