import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { clusterLaunches } from '../../extension/cluster/node-launch';
import { NodeExit, NodeProcess } from '../../extension/cluster/node-process';
import { ProcessRegistry } from '../../extension/cluster/process-registry';
import { readSettings } from '../../extension/model/settings';
import { DfsError } from '../../server/protocol';
import { freePortRange } from '../support/ports';
import { DFS_SCRIPT } from '../support/processes';

/** The processes Start Cluster runs, without VS Code: real `dfs.js` servers. */
describe('cluster processes for Start Cluster', function () {
  this.timeout(60_000);
  let work: string;
  const registry = new ProcessRegistry();
  const runtime = { execPath: process.execPath, scriptPath: DFS_SCRIPT };

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-procs-'));
  });

  after(async () => {
    await registry.stopAll();
    await fs.rm(work, { recursive: true, force: true });
  });

  const layout = async (replicas: number) => {
    const basePort = await freePortRange(replicas + 1);
    return readSettings((key) => ({ host: '127.0.0.1', port: basePort + replicas, replicas, basePort, clientId: 'x' } as Record<string, unknown>)[key], work);
  };

  it('each process is ready on its listening line; a requested stop is not a crash', async () => {
    const settings = await layout(1);
    const crashes: string[] = [];
    registry.on('crashed', (crashed: NodeProcess) => crashes.push(crashed.launch.label));
    const processes = clusterLaunches(settings).map((launch) => new NodeProcess(launch, runtime));
    processes.forEach((started) => {
      registry.add(started);
      started.start();
    });
    const [replica, primary] = await Promise.all(processes.map((started) => registry.whenReady(started.launch.key, 20_000)));
    assert.deepStrictEqual(await replica.ready, { host: '127.0.0.1', port: settings.basePort });
    assert.deepStrictEqual(await primary.ready, { host: '127.0.0.1', port: settings.port });
    assert.strictEqual(registry.running.length, 2);
    const exits = await Promise.all(processes.map((started) => started.stop()));
    // A server stopped right after its listening line may not have installed its SIGTERM handler yet and dies by the signal; either way it is gone and was asked to go.
    assert.ok(exits.every((exit) => exit.requested && (exit.code === 0 || exit.signal === 'SIGTERM')), JSON.stringify(exits));
    assert.deepStrictEqual(registry.running, []);
    assert.deepStrictEqual(crashes, []);
    registry.removeAllListeners('crashed');
  });

  it('a taken port fails the start with the server\'s own reason', async () => {
    const settings = await layout(1);
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(settings.basePort, '127.0.0.1', resolve));
    try {
      const replica = new NodeProcess(clusterLaunches(settings)[0], runtime);
      registry.add(replica);
      replica.start();
      await assert.rejects(registry.whenReady(replica.launch.key, 20_000), (error: DfsError) => {
        assert.strictEqual(error.code, 'UNREACHABLE');
        assert.match(error.message, new RegExp(`^DFS replica 1 did not start: port ${settings.basePort} on 127\\.0\\.0\\.1 is already in use`));
        return true;
      });
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('a process that dies on its own is reported as crashed', async () => {
    const settings = await layout(1);
    const replica = new NodeProcess(clusterLaunches(settings)[0], runtime);
    const crashed = new Promise<NodeExit>((resolve) => registry.once('crashed', (_process: NodeProcess, exit: NodeExit) => resolve(exit)));
    registry.add(replica);
    replica.start();
    await registry.whenReady(replica.launch.key, 20_000);
    process.kill(replica.pid!, 'SIGKILL');
    const exit = await crashed;
    assert.strictEqual(exit.signal, 'SIGKILL');
    assert.strictEqual(exit.requested, false);
    assert.strictEqual(registry.get(replica.launch.key), undefined);
  });

  it('waiting for a process that never shows up times out with a reason', async () => {
    await assert.rejects(registry.whenReady('replica:1', 50), /printed no listening line within 0.05 s/);
  });
});
