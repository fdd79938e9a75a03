import { ChildProcess, spawn, spawnSync } from 'child_process';
import { mkdirSync } from 'fs';
import * as path from 'path';
import { DfsError } from '../protocol';
import { EtcdClient } from './etcd-client';

/** Debian's package that provides the `etcd` command. */
export const ETCD_PACKAGE = 'etcd-server';

/** Why `dfs cluster --ha` cannot start etcd here, or undefined when it can. */
export function etcdUnavailable(): string | undefined {
  const probe = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    return `dfs cluster --ha runs a local etcd, and there is no \`etcd\` command here: install it (on Debian or Ubuntu: apt-get install ${ETCD_PACKAGE}), or run the primaries with --etcd pointing at an etcd you already have`;
  }
  return undefined;
}

export interface LocalEtcd {
  child: ChildProcess;
  clientUrl: string;
}

/**
 * A one-member etcd for trying failover on one machine, its data under `dataDir`.
 * Resolves once it answers; rejects with its last lines if it exits first.
 */
export async function startLocalEtcd(dataDir: string, clientPort: number, peerPort: number): Promise<LocalEtcd> {
  mkdirSync(dataDir, { recursive: true });
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const child = spawn(
    'etcd',
    [
      '--name',
      'dfs',
      '--data-dir',
      path.join(dataDir, 'member'),
      '--listen-client-urls',
      clientUrl,
      '--advertise-client-urls',
      clientUrl,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      `dfs=${peerUrl}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const lines: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (text: string) => lines.push(...text.split('\n').filter((line) => line.length > 0).slice(-20)));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) => reject(new DfsError('UNREACHABLE', `etcd exited (${code ?? signal}) before it served:\n${lines.slice(-10).join('\n')}`))),
  );
  exited.catch(() => undefined);
  const etcd = new EtcdClient({ endpoints: [clientUrl] });
  const deadline = Date.now() + 20_000;
  try {
    for (;;) {
      const answered = await Promise.race([
        etcd.range('/dfs-probe').then(
          () => true,
          () => false,
        ),
        exited,
      ]);
      if (answered) {
        return { child, clientUrl };
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new DfsError('UNREACHABLE', `etcd did not answer at ${clientUrl} within 20 s:\n${lines.slice(-10).join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    etcd.close();
  }
}
