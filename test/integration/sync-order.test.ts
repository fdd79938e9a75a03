import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsClient } from '../../server/client/dfs-client';
import { freePortRange } from '../support/ports';
import { SpawnedNode, spawnDfs, stopChild } from '../support/processes';
import { run } from '../support/netns';

/**
 * A kill -9 keeps the page cache, so no crash test can show a sync that is missing or
 * comes too late. This test watches the syscalls instead (strace, from Debian's strace
 * package): for one upload and one delete, every fsync the durability promise rests
 * on must have returned before the reply that depends on it was written, on the
 * primary and on the replica.
 */

interface Syscall {
  /** Line number of the call's start in the trace. */
  start: number;
  /** Line number where it returned (the same line unless strace saw it interrupted). */
  end: number;
  name: string;
  args: string;
}

/** Parses `strace -f -yy -s N` output into calls, pairing "<unfinished ...>" with "<... resumed>". */
function parseTrace(text: string): Syscall[] {
  const calls: Syscall[] = [];
  const open = new Map<string, Syscall>();
  text.split('\n').forEach((line, index) => {
    const match = /^(\d+)\s+(.*)$/.exec(line);
    if (!match) {
      return;
    }
    const [, pid, rest] = match;
    const resumed = /^<\.\.\. (\w+) resumed>/.exec(rest);
    if (resumed) {
      const call = open.get(pid);
      if (call) {
        call.end = index;
        open.delete(pid);
      }
      return;
    }
    const started = /^(\w+)\((.*)$/.exec(rest);
    if (!started) {
      return;
    }
    const call: Syscall = { start: index, end: index, name: started[1], args: started[2] };
    calls.push(call);
    if (rest.endsWith('<unfinished ...>')) {
      open.set(pid, call);
    }
  });
  return calls;
}

class Trace {
  constructor(readonly calls: Syscall[]) {}

  /** The first call matching, at or after line `after`. */
  find(name: string | RegExp, args: RegExp, after = -1): Syscall {
    const call = this.calls.find((candidate) => candidate.start > after && (typeof name === 'string' ? candidate.name === name : name.test(candidate.name)) && args.test(candidate.args));
    assert.ok(call, `no ${String(name)} call matching ${args} after line ${after}`);
    return call;
  }

  /** Asserts `first` returned before `then` started, with a reason for the failure. */
  before(first: Syscall, then: Syscall, what: string): void {
    assert.ok(first.end < then.start, `${what}: ${first.name}(${first.args.slice(0, 90)}) returned at line ${first.end}, after ${then.name}(${then.args.slice(0, 60)}) started at line ${then.start}`);
  }
}

const STRACE = ['strace', '-f', '-yy', '-s', '200', '-e', 'trace=fsync,fdatasync,write,writev,rename,link,unlink'];

/** SIGTERM to the server strace runs (strace's child); resolves once strace has exited too. */
async function stopTraced(node: SpawnedNode): Promise<void> {
  const pid = node.child.pid!;
  const children = (await fs.readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean);
  for (const child of children) {
    process.kill(Number(child), 'SIGTERM');
  }
  await node.exited;
}

async function straceUnavailable(): Promise<string | undefined> {
  const probe = await run('strace', ['-f', '-o', '/dev/null', 'true']);
  if (probe.missing) {
    return 'the "strace" command is not installed (Debian package strace)';
  }
  return probe.code === 0 ? undefined : `strace cannot trace here: ${probe.stderr.trim()}`;
}

describe('durability: every sync returns before the reply that depends on it (strace)', function () {
  this.timeout(120_000);
  let dataDir: string;
  let primary: SpawnedNode | undefined;
  let replica: SpawnedNode | undefined;
  let primaryTrace: Trace;
  let replicaTrace: Trace;

  before(async function () {
    const reason = await straceUnavailable();
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-sync-'));
    const base = await freePortRange(1);
    const common = ['--host', '127.0.0.1', '--base-port', String(base), '--replicas', '1', '--data-dir', dataDir];
    const traces = { primary: path.join(dataDir, 'primary.trace'), replica: path.join(dataDir, 'replica.trace') };
    replica = await spawnDfs(['replica', '--port', String(base), ...common], { launcher: [...STRACE, '-o', traces.replica], readyTimeoutMs: 30_000 });
    primary = await spawnDfs(['primary', '--port', '0', ...common], { launcher: [...STRACE, '-o', traces.primary], readyTimeoutMs: 30_000 });
    const client = new DfsClient({ host: '127.0.0.1', port: primary.port, clientId: 'synced' });
    await client.upload('deep/file.bin', [Buffer.from('bytes that must be on disk first')], 32);
    await client.delete('deep/file.bin');
    // strace writes its log as the traced server exits: stop the servers, not strace.
    await Promise.all([stopTraced(primary), stopTraced(replica)]);
    primaryTrace = new Trace(parseTrace(await fs.readFile(traces.primary, 'utf8')));
    replicaTrace = new Trace(parseTrace(await fs.readFile(traces.replica, 'utf8')));
  });

  after(async () => {
    await Promise.all([primary, replica].filter((node) => node).map((node) => stopChild(node!.child, 'SIGKILL')));
    if (dataDir) {
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });

  it('the primary: staged bytes and their folder, then the catalog record (the commit point), then the replicas may commit, then the answer', () => {
    const t = primaryTrace;
    const checksum = t.find(/^writev?$/, /TCP:.*"CHECKSUM [0-9a-f]{64} /);
    const stagedSync = t.find('fsync', /servidor\/\.dfs\/tmp\/[^>]+>/, checksum.start - 40);
    const tmpSync = t.find('fsync', /servidor\/\.dfs\/tmp>/, checksum.start - 40);
    const commit = t.find(/^writev?$/, /TCP:.*"COMMIT\\n"/, checksum.start);
    const record = t.calls.filter((call) => call.name === 'fsync' && /servidor\/\.dfs\/catalog\/journal-/.test(call.args) && call.start > Math.max(stagedSync.start, tmpSync.start) && call.end < commit.start).at(-1);
    assert.ok(record, 'the primary synced its catalog journal between staging the bytes and telling the replica to commit');
    t.before(stagedSync, record, 'the staged bytes are synced before the record naming them');
    t.before(tmpSync, record, 'the staged file\'s folder entry is synced before the record naming it');
    // Renames reach both folders through verified handles: /proc/self/fd/<n>/<name>.
    const placed = t.find('rename', /"[^"]+\/file\.bin"/, record.end);
    const folderSync = t.find('fsync', /servidor\/synced\/deep>/, placed.start);
    const answer = t.find(/^writev?$/, /"UPLOAD_SUCCESS /, commit.start);
    t.before(folderSync, answer, 'the file\'s folder is synced before UPLOAD_SUCCESS');
    t.before(record, commit, 'the replicas commit only after the primary\'s record is on disk');
  });

  it('the replica: bytes and folder entry before PREPARED; its record and the file\'s folder before SUCCESS', () => {
    const t = replicaTrace;
    const prepared = t.find(/^writev?$/, /"REPLICA_PREPARED\\n"/);
    t.before(t.find('fsync', /replica1\/\.dfs\/tmp\/[^>]+>/), prepared, 'the staged bytes are synced before REPLICA_PREPARED');
    t.before(t.find('fsync', /replica1\/\.dfs\/tmp>/, prepared.start - 40), prepared, 'the staging folder is synced before REPLICA_PREPARED');
    const success = t.find(/^writev?$/, /"REPLICA_SUCCESS\\n"/, prepared.start);
    const record = t.find('fsync', /replica1\/\.dfs\/catalog\/journal-/, prepared.start);
    t.before(record, success, 'the replica\'s catalog record is synced before REPLICA_SUCCESS');
    const folderSync = t.find('fsync', /replica1\/synced\/deep>/, record.end);
    t.before(folderSync, success, 'the file\'s folder is synced before REPLICA_SUCCESS');
  });

  it('a delete: the primary\'s tombstone record before the replica is told; the replica\'s record and the removal before it answers', () => {
    const p = primaryTrace;
    const tell = p.find(/^writev?$/, /"REPLICA_DELETE synced /);
    const tombstone = p.calls.filter((call) => call.name === 'fsync' && /servidor\/\.dfs\/catalog\/journal-/.test(call.args) && call.end < tell.start).at(-1)!;
    const unlink = p.find('unlink', /\/file\.bin"/, tombstone.end);
    p.before(tombstone, unlink, 'the tombstone is recorded before the file is removed');
    p.before(tombstone, tell, 'the tombstone is recorded before the replicas are told');
    p.before(p.find('fsync', /servidor\/synced/, unlink.start), p.find(/^writev?$/, /"DELETE_SUCCESS/, tell.start), 'the removal is synced before DELETE_SUCCESS');
    const r = replicaTrace;
    const removed = r.find('unlink', /\/file\.bin"/);
    const answer = r.find(/^writev?$/, /"REPLICA_SUCCESS\\n"/, removed.start);
    r.before(r.calls.filter((call) => call.name === 'fsync' && /replica1\/\.dfs\/catalog\/journal-/.test(call.args) && call.end < removed.start).at(-1)!, removed, 'the replica records the tombstone before removing the file');
    r.before(r.find('fsync', /replica1\/synced/, removed.start), answer, 'the removal is synced before the replica answers');
  });
});
