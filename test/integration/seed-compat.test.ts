import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as path from 'path';
import { TestCluster, storedFiles } from '../support/cluster';
import { RawClient, seedList, seedUpload } from '../support/raw-client';

describe('a client written against the report works unchanged', function () {
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start({ replicas: 3 });
  });

  after(async () => {
    await cluster.destroy();
  });

  it('UPLOAD with no newline gets the exact tokens and stores the bytes on every node', async () => {
    const body = Buffer.from('bytes from the report client\n'.repeat(1000));
    const { first, final } = await seedUpload(cluster.primaryPort, 'seed', 'relatório de aula.txt', body);
    assert.strictEqual(first, 'SEND_FILE');
    assert.strictEqual(final, 'UPLOAD_SUCCESS');
    for (const root of cluster.allRoots()) {
      const stored = await fs.readFile(path.join(root, 'seed', 'relatório de aula.txt'));
      assert.ok(stored.equals(body), `bytes differ under ${root}`);
    }
  });

  it('LIST with no newline returns the names and closes; unknown clients get a message', async () => {
    await seedUpload(cluster.primaryPort, 'lister', 'b.txt', Buffer.from('b'));
    await seedUpload(cluster.primaryPort, 'lister', 'a.txt', Buffer.from('a'));
    assert.strictEqual(await seedList(cluster.primaryPort, 'lister'), 'a.txt\nb.txt');
    assert.strictEqual(await seedList(cluster.primaryPort, 'nobody'), 'No files stored for client nobody.');
  });

  it('a refused upload answers the bare UPLOAD_FAILURE token', async () => {
    const { first } = await seedUpload(cluster.primaryPort, 'seed', '../escape.txt', Buffer.from('x'));
    assert.strictEqual(first, 'UPLOAD_FAILURE');
    assert.deepStrictEqual(await storedFiles(path.dirname(cluster.primaryRoot())).then((files) => files.filter((f) => f.includes('escape'))), []);
  });

  it('a primary written against the report can REPLICA to our replica', async () => {
    const replica = cluster.replicas[1]!;
    const client = await RawClient.connect(replica.port);
    await client.send('REPLICA seedprimary copy.bin 5');
    assert.strictEqual(await client.recv(), 'SEND_FILE');
    await client.send('12345');
    assert.strictEqual(await client.readToClose(), 'REPLICA_SUCCESS');
    assert.strictEqual(await fs.readFile(path.join(cluster.replicaRoot(1), 'seedprimary', 'copy.bin'), 'utf8'), '12345');
  });

  it('our line-terminated framing gets reasons with the failure token', async () => {
    const client = await RawClient.connect(cluster.primaryPort);
    await client.send('UPLOAD seed a/../b 3\n');
    assert.match(await client.readToClose(), /^UPLOAD_FAILURE BAD_FILE_NAME .*\n$/);
  });
});
