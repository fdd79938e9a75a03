import * as assert from 'assert';
import { appendFileSync, promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { OverwriteAnswer, planUploads } from '../../server/client/upload-plan';
import { BatchResult, UploadSource, runUploadBatch, summarizeBatch } from '../../extension/upload/batch-runner';
import { BatchProgress, IncrementCounter, ProgressTracker } from '../../extension/upload/progress';
import { TestCluster, stagedFiles, storedFiles } from '../support/cluster';
import { waitFor } from '../support/wait';

describe('upload batch: progress figures', () => {
  it('adds bytes across files and counts skipped or failed files as done', () => {
    const tracker = new ProgressTracker([100, 300]);
    assert.deepStrictEqual(tracker.snapshot(), { doneBytes: 0, totalBytes: 400, percent: 0, filesDone: 0, filesTotal: 2 });
    assert.strictEqual(tracker.update(0, 50).percent, 12);
    assert.strictEqual(tracker.update(0, 500).doneBytes, 100, 'never more than the file');
    assert.deepStrictEqual(tracker.settle(1), { doneBytes: 400, totalBytes: 400, percent: 100, filesDone: 1, filesTotal: 2 });
    assert.strictEqual(new ProgressTracker([0, 0]).settle(0).percent, 50, 'empty files still move the bar');
  });

  it('says when uploads got fewer copies than configured', () => {
    const receipt = (behind: number[]) => ({ sha256: 'a'.repeat(64), size: 1, generation: 7, copies: 4 - behind.length, replicasBehind: behind });
    const text = summarizeBatch({
      cancelled: false,
      outcomes: [
        { origin: 'a', name: 'a', status: 'uploaded', receipt: receipt([]) },
        { origin: 'b', name: 'b', status: 'uploaded', receipt: receipt([2]) },
      ],
    }).text;
    assert.strictEqual(text, 'DFS upload: 2 uploaded. 1 stored with fewer copies than configured: the missing replicas get them when they are back.');
  });

  it('says which uploads have an unknown outcome, apart from the failed ones', () => {
    const summary = summarizeBatch({
      cancelled: false,
      outcomes: [
        { origin: 'a', name: 'a', status: 'unknown', code: 'OUTCOME_UNKNOWN', reason: 'the primary restarted before answering, and a has changed since' },
        { origin: 'b', name: 'b', status: 'failed', code: 'QUORUM', reason: 'too few replicas' },
      ],
    });
    assert.strictEqual(summary.unknown, 1);
    assert.strictEqual(summary.failed, 1);
    assert.strictEqual(summary.text, 'DFS upload: 0 uploaded, 1 failed, 1 of unknown outcome. First failure: a: the primary restarted before answering, and a has changed since');
  });

  it('turns percentages into increments that add up to 100', () => {
    const counter = new IncrementCounter();
    assert.deepStrictEqual([0, 10, 10, 5, 60, 100].map((percent) => counter.next(percent)), [0, 10, 0, 0, 50, 40]);
  });
});

describe('upload batch against a real cluster', function () {
  this.timeout(60_000);
  let cluster: TestCluster;
  let work: string;
  let clientId = 0;
  /** A fresh client per test, so names never collide across tests. */
  let client: ReturnType<TestCluster['client']>;
  const never = async (): Promise<OverwriteAnswer | undefined> => assert.fail('no name exists, so nothing should be asked');
  const stored = async (): Promise<string[]> => (await storedFiles(cluster.primaryRoot())).filter((file) => file.startsWith(`${client.clientId}/`)).map((file) => file.slice(client.clientId.length + 1));
  const everywhere = async (name: string): Promise<Buffer[]> => Promise.all(cluster.allRoots().map((root) => fs.readFile(path.join(root, client.clientId, name))));
  const statuses = (result: BatchResult): string[][] => result.outcomes.map((outcome) => [outcome.name ?? path.basename(outcome.origin), outcome.status]);

  before(async () => {
    cluster = await TestCluster.start({ replicas: 2 });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-batch-'));
  });

  beforeEach(() => {
    client = cluster.client(`batch${++clientId}`);
  });

  after(async () => {
    await cluster?.destroy();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('uploads a folder with its relative paths, reporting progress in bytes up to 100%', async () => {
    const folder = path.join(work, 'album');
    await fs.mkdir(path.join(folder, 'raw'), { recursive: true });
    await fs.writeFile(path.join(folder, 'cover.jpg'), Buffer.alloc(700_000, 1));
    await fs.writeFile(path.join(folder, 'raw', 'take1.wav'), Buffer.alloc(300_000, 2));
    await fs.writeFile(path.join(folder, 'notes.txt'), '');
    const plan = await planUploads([folder]);
    const progress: BatchProgress[] = [];
    const result = await runUploadBatch({ client, sources: plan.uploads.map((upload): UploadSource => ({ kind: 'file', ...upload })), askOverwrite: never, onProgress: (state) => progress.push(state) });
    assert.deepStrictEqual(statuses(result), [
      ['album/cover.jpg', 'uploaded'],
      ['album/notes.txt', 'uploaded'],
      ['album/raw/take1.wav', 'uploaded'],
    ]);
    assert.deepStrictEqual(await stored(), ['album/cover.jpg', 'album/notes.txt', 'album/raw/take1.wav']);
    for (const copy of await everywhere('album/raw/take1.wav')) {
      assert.ok(copy.equals(Buffer.alloc(300_000, 2)));
    }
    assert.strictEqual(progress[0].percent, 0);
    assert.deepStrictEqual(progress.at(-1), { doneBytes: 1_000_000, totalBytes: 1_000_000, percent: 100, filesDone: 3, filesTotal: 3 });
    assert.ok(progress.length > 4, 'progress arrives during the transfer, not only per file');
    for (let index = 1; index < progress.length; index++) {
      assert.ok(progress[index].doneBytes >= progress[index - 1].doneBytes, 'progress never goes back');
    }
    assert.strictEqual(result.outcomes[0].receipt?.copies, 3);
  });

  it('follows the overwrite answers: skip, overwrite, overwrite all (asked once), skip all, and dismissing cancels the rest', async () => {
    const names = ['a.txt', 'b.txt', 'c.txt'];
    for (const name of names) {
      await fs.writeFile(path.join(work, name), `old ${name}`);
    }
    const sources = (): UploadSource[] => names.map((name) => ({ kind: 'file', localPath: path.join(work, name), name, size: `new ${name}`.length }));
    await runUploadBatch({ client, sources: sources(), askOverwrite: never });
    for (const name of names) {
      await fs.writeFile(path.join(work, name), `new ${name}`);
    }
    const script = (answers: (OverwriteAnswer | undefined)[]) => {
      const asked: string[] = [];
      return {
        asked,
        ask: async (name: string) => {
          asked.push(name);
          return answers.shift();
        },
      };
    };

    let answers = script(['skip', 'overwrite', 'skip']);
    let result = await runUploadBatch({ client, sources: sources(), askOverwrite: answers.ask });
    assert.deepStrictEqual(answers.asked, names);
    assert.deepStrictEqual(statuses(result), [['a.txt', 'skipped'], ['b.txt', 'uploaded'], ['c.txt', 'skipped']]);
    assert.deepStrictEqual((await everywhere('a.txt')).map(String), ['old a.txt', 'old a.txt', 'old a.txt']);
    assert.deepStrictEqual((await everywhere('b.txt')).map(String), ['new b.txt', 'new b.txt', 'new b.txt']);

    answers = script(['overwriteAll']);
    result = await runUploadBatch({ client, sources: sources(), askOverwrite: answers.ask });
    assert.deepStrictEqual(answers.asked, ['a.txt']);
    assert.ok(result.outcomes.every((outcome) => outcome.status === 'uploaded'));
    assert.deepStrictEqual((await everywhere('c.txt')).map(String), ['new c.txt', 'new c.txt', 'new c.txt']);

    answers = script(['skipAll']);
    result = await runUploadBatch({ client, sources: sources(), askOverwrite: answers.ask });
    assert.deepStrictEqual(answers.asked, ['a.txt']);
    assert.ok(result.outcomes.every((outcome) => outcome.status === 'skipped'));

    answers = script(['overwrite', undefined]);
    result = await runUploadBatch({ client, sources: sources(), askOverwrite: answers.ask });
    assert.deepStrictEqual(statuses(result), [['a.txt', 'uploaded'], ['b.txt', 'cancelled'], ['c.txt', 'cancelled']]);
    assert.strictEqual(result.cancelled, true);
    assert.deepStrictEqual(answers.asked, ['a.txt', 'b.txt'], 'nothing more is asked after a dismissal');
  });

  it('a cancel mid-file stops the transfer, leaves nothing on any node and skips the rest', async () => {
    const big = path.join(work, 'big.bin');
    const after = path.join(work, 'after.txt');
    await fs.writeFile(big, Buffer.alloc(24 * 1024 * 1024, 3));
    await fs.writeFile(after, 'after');
    const abort = new AbortController();
    let bytesAtCancel = 0;
    const result = await runUploadBatch({
      client,
      sources: [
        { kind: 'file', localPath: big, name: 'big.bin', size: 24 * 1024 * 1024 },
        { kind: 'file', localPath: after, name: 'after.txt', size: 5 },
      ],
      askOverwrite: never,
      signal: abort.signal,
      onProgress: (state) => {
        if (state.doneBytes > 0 && !abort.signal.aborted) {
          bytesAtCancel = state.doneBytes;
          abort.abort();
        }
      },
    });
    assert.ok(bytesAtCancel > 0 && bytesAtCancel < 24 * 1024 * 1024, 'cancelled while bytes were flowing');
    assert.strictEqual(result.cancelled, true);
    assert.deepStrictEqual(statuses(result), [['big.bin', 'cancelled'], ['after.txt', 'cancelled']]);
    assert.strictEqual(result.outcomes[0].code, 'CANCELLED');
    for (const root of cluster.allRoots()) {
      await waitFor(async () => (await stagedFiles(root)).length === 0, `no staged bytes under ${root}`);
      assert.deepStrictEqual((await storedFiles(root)).filter((file) => file.startsWith(`${client.clientId}/`)), []);
    }
  });

  it('reports bad input per file and carries on: unreadable, symlink loop, changed mid-upload, a name the server refuses', async () => {
    const folder = path.join(work, 'mixed');
    await fs.mkdir(folder);
    await fs.writeFile(path.join(folder, 'good.txt'), 'good');
    await fs.symlink(path.join(folder, 'loop2'), path.join(folder, 'loop1'));
    await fs.symlink(path.join(folder, 'loop1'), path.join(folder, 'loop2'));
    const growing = path.join(work, 'growing.log');
    await fs.writeFile(growing, Buffer.alloc(2 * 1024 * 1024, 4));
    const vanishing = path.join(work, 'vanishing.txt');
    await fs.writeFile(vanishing, 'soon gone');
    const plan = await planUploads([folder, growing, vanishing]);
    await fs.rm(vanishing);
    const sources: UploadSource[] = [
      ...plan.uploads.map((upload): UploadSource => ({ kind: 'file', ...upload })),
      { kind: 'buffer', origin: 'editor', name: 'bad\nname', content: Buffer.from('x') },
      { kind: 'buffer', origin: 'editor', name: 'last.txt', content: Buffer.from('last') },
    ];
    let grown = false;
    let doneBeforeGrowing: number | undefined;
    const result = await runUploadBatch({
      client,
      sources,
      unplannable: plan.skipped,
      askOverwrite: never,
      onProgress: (state, current) => {
        if (current !== 'growing.log' || grown) {
          return;
        }
        // The first report naming the file comes before its transfer; append once its own bytes flow.
        doneBeforeGrowing ??= state.doneBytes;
        if (state.doneBytes > doneBeforeGrowing) {
          grown = true;
          // Appending while the client sends, synchronously so it lands before the last chunk: the client must refuse rather than store a torn file.
          appendFileSync(growing, 'more');
        }
      },
    });
    assert.ok(grown, 'the file grew while it was being sent');
    const byName = new Map(result.outcomes.map((outcome) => [outcome.name ?? path.basename(outcome.origin), outcome]));
    assert.strictEqual(byName.get('mixed/good.txt')?.status, 'uploaded');
    assert.strictEqual(byName.get('loop1')?.status, 'failed');
    assert.match(byName.get('loop1')?.reason ?? '', /looping symbolic link/);
    assert.strictEqual(byName.get('growing.log')?.status, 'failed');
    assert.strictEqual(byName.get('growing.log')?.code, 'CONFLICT');
    assert.strictEqual(byName.get('vanishing.txt')?.status, 'failed');
    assert.match(byName.get('vanishing.txt')?.reason ?? '', /no such file/);
    assert.strictEqual(byName.get('bad\nname')?.code, 'BAD_FILE_NAME');
    assert.strictEqual(byName.get('last.txt')?.status, 'uploaded', 'the batch carried on to the end');
    assert.strictEqual(result.cancelled, false);
    assert.deepStrictEqual(await stored(), ['last.txt', 'mixed/good.txt']);
    assert.match(summarizeBatch(result).text, /^DFS upload: 2 uploaded, 5 failed\. First failure: /);
  });

  it('never overwrites blind: a name stored by someone else after the question is asked about again', async () => {
    await client.upload('shared.txt', [Buffer.from('first')], 5);
    const other = cluster.client(client.clientId);
    const asked: string[] = [];
    const result = await runUploadBatch({
      client,
      sources: [{ kind: 'buffer', origin: 'editor', name: 'shared.txt', content: Buffer.from('mine') }],
      askOverwrite: async (name) => {
        asked.push(name);
        if (asked.length === 1) {
          // While the user reads the question, someone else stores a newer version.
          await other.upload('shared.txt', [Buffer.from('theirs')], 6);
          return 'overwrite';
        }
        return 'skip';
      },
    });
    assert.deepStrictEqual(asked, ['shared.txt', 'shared.txt'], 'the second version is asked about too');
    assert.deepStrictEqual(statuses(result), [['shared.txt', 'skipped']]);
    assert.deepStrictEqual((await everywhere('shared.txt')).map(String), ['theirs', 'theirs', 'theirs']);
  });

  it('asks about a name that appears only after the batch started, instead of trusting a listing taken before', async () => {
    const other = cluster.client(client.clientId);
    const asked: string[] = [];
    let theirs: Promise<unknown> | undefined;
    const result = await runUploadBatch({
      client: {
        uploadFile: (...args) => client.uploadFile(...args),
        // Someone else stores two.txt after the batch started, just before it gets there.
        upload: async (...args) => {
          if (args[0] === 'two.txt') {
            await (theirs ??= other.upload('two.txt', [Buffer.from('elsewhere')], 9));
          }
          return client.upload(...args);
        },
      },
      sources: ['one.txt', 'two.txt'].map((name): UploadSource => ({ kind: 'buffer', origin: name, name, content: Buffer.from(`batch ${name}`) })),
      askOverwrite: async (name) => {
        asked.push(name);
        return 'skip';
      },
    });
    assert.deepStrictEqual(asked, ['two.txt']);
    assert.deepStrictEqual(statuses(result), [['one.txt', 'uploaded'], ['two.txt', 'skipped']]);
    assert.deepStrictEqual((await everywhere('two.txt')).map(String), ['elsewhere', 'elsewhere', 'elsewhere']);
  });

  it('reports every remaining file when the cluster goes away mid-batch', async () => {
    const doomed = await TestCluster.start({ replicas: 1 });
    try {
      const doomedClient = doomed.client('doomed');
      const sources: UploadSource[] = ['1', '2', '3'].map((name) => ({ kind: 'buffer', origin: `buffer ${name}`, name: `${name}.txt`, content: Buffer.from(name) }));
      let stopped: Promise<void> | undefined;
      const result = await runUploadBatch({
        client: {
          uploadFile: (...args) => doomedClient.uploadFile(...args),
          // The cluster stops between the first file and the second, as if its machine went away.
          upload: async (...args) => {
            await stopped;
            return doomedClient.upload(...args);
          },
        },
        sources,
        askOverwrite: never,
        onOutcome: (outcome) => {
          if (outcome.name === '1.txt') {
            stopped = doomed.stop();
          }
        },
      });
      assert.deepStrictEqual(statuses(result), [['1.txt', 'uploaded'], ['2.txt', 'failed'], ['3.txt', 'failed']]);
      assert.ok(result.outcomes.slice(1).every((outcome) => outcome.code === 'UNREACHABLE'), JSON.stringify(result.outcomes));
    } finally {
      await doomed.destroy();
    }
  });
});
