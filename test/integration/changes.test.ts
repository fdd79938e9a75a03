import * as assert from 'assert';
import { DfsClient } from '../../server/client/dfs-client';
import { DfsError, issueKey } from '../../server/protocol';
import { TestCluster } from '../support/cluster';
import { waitFor } from '../support/wait';

const SECRET = 'the cluster secret of the change feed test';
const secret = Buffer.from(SECRET);

describe('CHANGES: what changed of a client\'s files since a generation', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let member: DfsClient;
  let alice: DfsClient;

  const upload = (client: DfsClient, name: string, text: string): Promise<{ generation: number }> => client.upload(name, [Buffer.from(text)], Buffer.byteLength(text));

  before(async () => {
    cluster = await TestCluster.start({ replicas: 2, args: ['--sync-interval', '200'], env: { DFS_SECRET: SECRET }, clientSecurity: { secret } });
    member = cluster.client('alice');
    alice = new DfsClient({ host: '127.0.0.1', port: cluster.primaryPort, clientId: 'alice', security: { key: issueKey(secret, 'client', 'alice') } });
  });

  after(async () => {
    await cluster?.destroy();
  });

  it('lists each name whose version or delete is above the generation asked, and only those', async () => {
    const a = await upload(member, 'a.txt', 'first');
    const b = await upload(member, 'docs/b.txt', 'second');
    await upload(cluster.client('bob'), 'bob.txt', 'not alice\'s');
    const all = await alice.changes(0);
    assert.deepStrictEqual(
      all.records.map((record) => [record.name, record.generation, record.size, record.deleted]),
      [
        ['a.txt', a.generation, 5, undefined],
        ['docs/b.txt', b.generation, 6, undefined],
      ],
    );
    assert.ok(all.header.through >= b.generation, `through ${all.header.through} covers generation ${b.generation}`);
    assert.strictEqual(all.header.complete, true);

    const since = all.header.through;
    assert.deepStrictEqual((await alice.changes(since)).records, [], 'nothing changed since');
    const c = await upload(member, 'c.txt', 'third');
    const overwrite = await upload(member, 'a.txt', 'first, edited');
    const deleted = await member.delete('docs/b.txt');
    const later = await alice.changes(since);
    assert.deepStrictEqual(
      later.records.map((record) => [record.name, record.generation, record.deleted === true]),
      [
        ['c.txt', c.generation, false],
        ['a.txt', overwrite.generation, false],
        ['docs/b.txt', deleted.generation, true],
      ],
      'oldest first: the new file, the overwrite, and the delete as a tombstone',
    );
    assert.strictEqual(later.records[1].sha256, (await alice.files()).find((file) => file.name === 'a.txt')?.sha256);
    assert.ok(later.header.through >= deleted.generation && later.header.complete);
    const afterOverwrite = await alice.changes(overwrite.generation);
    assert.deepStrictEqual(
      afterOverwrite.records.map((record) => record.name),
      ['docs/b.txt'],
      'a generation in between filters out what is at or below it',
    );
  });

  it('says it is incomplete once the tombstones above the generation asked are dropped, so the watcher lists again', async () => {
    const before = (await alice.changes(0)).header.through;
    await upload(member, 'gone.txt', 'soon deleted');
    const deleted = await member.delete('gone.txt');
    assert.ok((await alice.changes(before)).records.some((record) => record.name === 'gone.txt' && record.deleted));
    // Every replica certified past the delete: the primary drops its tombstone, and with it the knowledge.
    // It says so before the tombstone goes (it may say so a moment early), never after.
    const answer = await waitFor(
      async () => {
        const changes = await alice.changes(before);
        return changes.records.some((record) => record.name === 'gone.txt') ? undefined : changes;
      },
      'the primary to drop the tombstone of gone.txt',
      30_000,
    );
    assert.strictEqual(answer.header.complete, false, 'an answer without the dropped tombstone says it may miss deletes');
    const fresh = await alice.changes(deleted.generation);
    assert.strictEqual(fresh.header.complete, true, 'a watcher that asked after the delete misses nothing');
  });

  it('after a restart of the primary, a generation from before it is answered as incomplete', async () => {
    const old = (await alice.changes(0)).header.through;
    await cluster.restartPrimary();
    alice = new DfsClient({ host: '127.0.0.1', port: cluster.primaryPort, clientId: 'alice', security: { key: issueKey(secret, 'client', 'alice') } });
    const answer = await alice.changes(old);
    assert.strictEqual(answer.header.complete, false);
    assert.ok(answer.header.through > old, `the restarted primary starts above its reservation (${answer.header.through} > ${old})`);
    assert.strictEqual((await alice.changes(answer.header.through)).header.complete, true);
  });

  it("a client key sees its own client's changes only; another client's answer as if nothing changed", async () => {
    const asBob = new DfsClient({ host: '127.0.0.1', port: cluster.primaryPort, clientId: 'bob', security: { key: issueKey(secret, 'client', 'alice') } });
    const hidden = await asBob.changes(0);
    assert.deepStrictEqual(hidden, { header: { through: 0, complete: true }, records: [] });
    assert.ok((await cluster.client('bob').changes(0)).records.some((record) => record.name === 'bob.txt'), 'the cluster secret sees bob\'s changes');
    const admin = new DfsClient({ host: '127.0.0.1', port: cluster.primaryPort, clientId: 'bob', security: { key: issueKey(secret, 'admin') } });
    assert.ok((await admin.changes(0)).records.some((record) => record.name === 'bob.txt'), 'an admin key sees them too');
  });

  it('is served by the primary only: a replica says so', async () => {
    const replica = new DfsClient({ host: '127.0.0.1', port: cluster.replicas[0]!.port, clientId: 'alice', security: { secret } });
    await assert.rejects(replica.changes(0), (error: unknown) => error instanceof DfsError && error.code === 'UNKNOWN_VERB' && /CHANGES is not served by the replica/.test(error.message));
  });
});
