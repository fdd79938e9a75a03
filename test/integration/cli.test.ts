import * as assert from 'assert';
import { spawn } from 'child_process';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { TestCluster } from '../support/cluster';
import { freePortRange } from '../support/ports';
import { DFS_SCRIPT, runDfs } from '../support/processes';

describe('the dfs CLI', function () {
  let cluster: TestCluster;
  let work: string;

  before(async () => {
    cluster = await TestCluster.start({ replicas: 2 });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-cli-'));
  });

  after(async () => {
    await cluster.destroy();
    await fs.rm(work, { recursive: true, force: true });
  });

  const dfs = (...args: string[]) => runDfs([...args, '--server', cluster.address, '--client', 'cli'], { cwd: work });

  it('uploads files and folders with relative paths, lists, downloads and deletes', async () => {
    await fs.mkdir(path.join(work, 'project', 'src'), { recursive: true });
    await fs.writeFile(path.join(work, 'project', 'src', 'main.ts'), 'console.log(1);\n');
    await fs.writeFile(path.join(work, 'project', 'README.md'), '# hi\n');
    await fs.writeFile(path.join(work, 'single file.txt'), 'one');

    const upload = await dfs('upload', 'project', 'single file.txt');
    assert.strictEqual(upload.code, 0, upload.stderr);
    assert.match(upload.stdout, /uploaded project\/src\/main\.ts/);

    const ls = await dfs('ls', '--json');
    assert.strictEqual(ls.code, 0, ls.stderr);
    assert.deepStrictEqual(
      JSON.parse(ls.stdout).map((file: { name: string }) => file.name),
      ['project/README.md', 'project/src/main.ts', 'single file.txt'],
    );
    assert.strictEqual(await fs.readFile(path.join(cluster.replicaRoot(1), 'cli', 'project', 'src', 'main.ts'), 'utf8'), 'console.log(1);\n');

    const get = await dfs('get', 'project/src/main.ts', '-o', path.join(work, 'copy.ts'));
    assert.strictEqual(get.code, 0, get.stderr);
    assert.strictEqual(await fs.readFile(path.join(work, 'copy.ts'), 'utf8'), 'console.log(1);\n');

    const clients = await dfs('clients');
    assert.match(clients.stdout, /^cli {2}3 files/m);

    const rm = await dfs('rm', 'single file.txt');
    assert.strictEqual(rm.code, 0, rm.stderr);
    await assert.rejects(fs.stat(path.join(cluster.primaryRoot(), 'cli', 'single file.txt')));

    const status = await dfs('status');
    assert.match(status.stdout, /2\/2 replicas up/);
  });

  it('versions, restore, get --generation, and conditional upload and delete', async () => {
    const file = path.join(work, 'draft.md');
    const generations: number[] = [];
    for (const text of ['draft 1', 'draft 2']) {
      await fs.writeFile(file, text);
      const upload = await dfs('upload', file);
      assert.strictEqual(upload.code, 0, upload.stderr);
      generations.push(Number(/generation (\d+)/.exec(upload.stdout)![1]));
    }
    const versions = await dfs('versions', 'draft.md');
    assert.strictEqual(versions.code, 0, versions.stderr);
    assert.match(versions.stdout, new RegExp(`^gen ${generations[1]} .*\\(current\\)$`, 'm'));
    assert.match(versions.stdout, new RegExp(`^gen ${generations[0]} `, 'm'));

    const old = await dfs('get', 'draft.md', '--generation', String(generations[0]), '-o', path.join(work, 'old.md'));
    assert.strictEqual(old.code, 0, old.stderr);
    assert.strictEqual(await fs.readFile(path.join(work, 'old.md'), 'utf8'), 'draft 1');

    await fs.writeFile(file, 'draft 3');
    const stale = await dfs('upload', file, '--if-generation', String(generations[0]));
    assert.strictEqual(stale.code, 1);
    assert.match(stale.stderr, new RegExp(`\\[current generation ${generations[1]}\\] draft\\.md was expected to be at generation ${generations[0]}`));
    const exists = await dfs('upload', file, '--if-absent');
    assert.strictEqual(exists.code, 1);
    const kept = await dfs('upload', file, '--no-overwrite');
    assert.strictEqual(kept.code, 0, kept.stderr);
    assert.match(kept.stdout, /kept existing draft\.md \(--no-overwrite\)/);
    const fresh = await dfs('upload', file, '--if-generation', String(generations[1]));
    assert.strictEqual(fresh.code, 0, fresh.stderr);

    const restore = await dfs('restore', 'draft.md', String(generations[0]));
    assert.strictEqual(restore.code, 0, restore.stderr);
    assert.match(restore.stdout, new RegExp(`generation ${generations[0]} is current again as generation \\d+`));
    assert.strictEqual(await fs.readFile(path.join(cluster.replicaRoot(0), 'cli', 'draft.md'), 'utf8'), 'draft 1');

    const wrong = await dfs('rm', 'draft.md', '--if-generation', String(generations[0]));
    assert.strictEqual(wrong.code, 1);
    assert.match(wrong.stderr, /nothing was changed/);
    const current = JSON.parse((await dfs('ls', '--json')).stdout).find((record: { name: string }) => record.name === 'draft.md').generation;
    const rm = await dfs('rm', 'draft.md', '--if-generation', String(current));
    assert.strictEqual(rm.code, 0, rm.stderr);
    assert.match(rm.stdout, /deleted draft\.md at generation \d+/);
  });

  it('fails with a non-zero status and a clear message', async () => {
    const missing = await dfs('get', 'no-such-file');
    assert.strictEqual(missing.code, 1);
    assert.match(missing.stderr, /no-such-file is not stored for client cli/);

    const unreadable = await dfs('upload', path.join(work, 'does-not-exist'));
    assert.strictEqual(unreadable.code, 1);
    assert.match(unreadable.stderr, /skipped .*does-not-exist: cannot read: ENOENT/);

    // Nothing listens on the primary's port nor on the replicas' (which a read falls back to).
    const port = await freePortRange(4);
    const down = await runDfs(['ls', '--server', `127.0.0.1:${port}`, '--base-port', String(port + 1)], { cwd: work });
    assert.strictEqual(down.code, 1);
    assert.match(down.stderr, /cannot connect to 127\.0\.0\.1:\d+: nothing is listening there/);
    assert.match(down.stderr, /Is the cluster running\?/);

    const badFlag = await runDfs(['ls', '--colour'], { cwd: work });
    assert.strictEqual(badFlag.code, 1);
    assert.match(badFlag.stderr, /Unknown option '--colour'/);
  });

  it('dfs COMMAND --help prints that command\'s usage and every flag, even with a broken dfs.config.json; dfs --help lists the commands', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-help-'));
    try {
      await fs.writeFile(path.join(dir, 'dfs.config.json'), '{ not json');
      const primary = await runDfs(['primary', '--help'], { cwd: dir });
      assert.strictEqual(primary.code, 0, primary.stderr);
      assert.match(primary.stdout, /^dfs primary \[flags\]\n/);
      for (const flag of ['--secret-file PATH', '--tls-cert FILE', '--max-connections N', '--min-free BYTES', '--etcd URL']) {
        assert.ok(primary.stdout.includes(flag), `dfs primary --help omits ${flag}`);
      }
      const mv = await runDfs(['mv', '-h'], { cwd: dir });
      assert.match(mv.stdout, /^dfs mv FROM TO \[flags\]\n/);
      assert.match(mv.stdout, /^ {2}--replace {2,}replace an existing destination/m);
      assert.match(mv.stdout, /^ {2}--if-generation G {2,}/m);
      assert.ok(!mv.stdout.includes('--data-dir'), 'a client command lists no server flags');
      const general = await runDfs(['--help'], { cwd: dir });
      assert.strictEqual(general.code, 0);
      for (const command of ['cluster', 'primary', 'replica', 'upload', 'ls', 'get', 'versions', 'restore', 'rm', 'mv', 'status', 'scrub', 'key']) {
        assert.match(general.stdout, new RegExp(`^  dfs ${command}\\b`, 'm'), `dfs --help omits ${command}`);
      }
      const refused = await runDfs(['ls', '--data-dir', 'x', '--server', '127.0.0.1:1'], { cwd: dir });
      assert.strictEqual(refused.code, 1);
      assert.match(refused.stderr, /Unknown option '--data-dir'.*Run "dfs ls --help" for its flags/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('explains an invalid dfs.config.json instead of crashing', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-badconfig-'));
    await fs.writeFile(path.join(dir, 'dfs.config.json'), '{"replicas": "three"}');
    const result = await runDfs(['ls'], { cwd: dir });
    assert.strictEqual(result.code, 1);
    assert.match(result.stderr, /dfs\.config\.json: "replicas" is "three"; expected a whole number/);
    assert.doesNotMatch(result.stderr, /at .*\.js:\d+/);
  });

  it('a replica refuses a port outside the configured list', async () => {
    const result = await runDfs(['replica', '--port', '9005', '--base-port', '9000', '--replicas', '3', '--data-dir', work]);
    assert.strictEqual(result.code, 1);
    assert.match(result.stderr, /port 9005 is not a configured replica port; .* allowed ports are 9000-9002/);
  });

  it('dfs cluster starts a primary and its replicas, and Ctrl-C stops them all', async () => {
    const base = await freePortRange(3);
    const [primaryPort] = [await freePortRange(1)];
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-cluster-'));
    const child = spawn(process.execPath, [DFS_SCRIPT, 'cluster', '--port', String(primaryPort), '--base-port', String(base), '--replicas', '2'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    await new Promise<void>((resolve, reject) => {
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        lines.push(line);
        if (line.startsWith('dfs cluster ready')) {
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`cluster exited ${code}: ${lines.join('\n')}`)));
    });
    assert.strictEqual(lines.filter((line) => line.includes('listening on')).length, 3);
    const upload = await runDfs(['upload', path.join(work, 'project'), '--server', `127.0.0.1:${primaryPort}`, '--client', 'c'], { cwd: dir });
    assert.strictEqual(upload.code, 0, upload.stderr);
    assert.ok((await fs.stat(path.join(dir, 'dfs-data', 'replica2', 'c', 'project', 'README.md'))).isFile());
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    assert.strictEqual(await exited, 0);
    const after = await runDfs(['status', '--server', `127.0.0.1:${primaryPort}`]);
    assert.strictEqual(after.code, 1);
    await fs.rm(dir, { recursive: true, force: true });
  });
});
