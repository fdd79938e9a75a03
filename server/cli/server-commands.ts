import { ChildProcess, spawn } from 'child_process';
import { readFileSync } from 'fs';
import * as path from 'path';
import * as readline from 'readline';
import { DEFAULT_DATA_DIR, replicaAddresses, replicaIdForPort, replicasRequired } from '../config/cluster-layout';
import { connectionLimit } from '../config/descriptor-limit';
import { checkExposure, loadSecurity } from '../config/security-settings';
import { Settings } from '../config/settings';
import { ConnectionTimeouts } from '../net/connection';
import { keepServing } from '../node/escaped-errors';
import { EtcdClient } from '../ha/etcd-client';
import { HaPrimary } from '../ha/ha-primary';
import { etcdUnavailable, startLocalEtcd } from '../ha/local-etcd';
import { PrimaryNode, PrimaryNodeOptions } from '../primary/primary-node';
import { DfsError, formatBytes } from '../protocol';
import { ReplicaNode } from '../replica/replica-node';

function logger(role: string): (line: string) => void {
  return (line) => process.stdout.write(`${new Date().toISOString()} [${role}] ${line}\n`);
}

/** The connection limit from the flag or the open-file limit, warning when the flag asks for more than that allows. */
function maxConnectionsOf(settings: Settings, log: (line: string) => void): number {
  const { maxConnections, warning } = connectionLimit(settings.maxConnections);
  if (warning) {
    log(`warning: ${warning}`);
  }
  return maxConnections;
}

function limitsOf(maxConnections: number, settings: Settings): string {
  return `at most ${maxConnections} connections; keeps ${formatBytes(settings.minFree)} of its disk free`;
}

function timeoutsOf(settings: Settings): ConnectionTimeouts {
  return { headerMs: settings.headerTimeoutMs, idleMs: settings.idleTimeoutMs, settleMs: 15 };
}

/** Runs until SIGINT/SIGTERM, then stops accepting, finishes cleanly and exits 0. */
function stopOnSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (): void => {
    if (stopping) {
      return;
    }
    stopping = true;
    void stop().finally(() => process.exit(0));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

export async function runPrimary(settings: Settings): Promise<void> {
  const replicas = replicaAddresses({ host: settings.host, basePort: settings.basePort, replicas: settings.replicas, remote: settings.replica });
  replicasRequired(settings.writeQuorum, replicas.length);
  const log = logger('primary');
  const security = loadSecurity(settings);
  checkExposure(settings, security, log);
  const maxConnections = maxConnectionsOf(settings, log);
  const nodeOptions: PrimaryNodeOptions = {
    security,
    maxConnections,
    minFreeBytes: settings.minFree,
    quotaBytes: settings.quota,
    keepVersions: settings.keepVersions,
    compactAfterLines: settings.compactAfterLines,
    inlineMaxBytes: settings.inlineMax,
    host: settings.host,
    port: settings.port,
    dataDir: path.resolve(settings.dataDir),
    replicas,
    writeQuorum: settings.writeQuorum,
    replication: settings.replication,
    timeouts: timeoutsOf(settings),
    maxFileSize: settings.maxFileSize,
    syncIntervalMs: settings.syncIntervalMs,
    scrubIntervalMs: settings.scrubIntervalMs,
    log,
  };
  keepServing('primary', log);
  if (settings.etcd.length > 0) {
    await runElectedPrimary(settings, nodeOptions);
    return;
  }
  const node = new PrimaryNode(nodeOptions);
  // Before listening: a stop that arrives right after the ready line must still be clean.
  stopOnSignal(() => node.stop());
  await node.start();
  log(`${security.secret ? 'cluster secret required' : 'open protocol (no secret)'}${security.tls ? ', TLS' : ''}`);
  log(
    `storing under ${node.store.root}; replicas ${replicas.map((r) => `${r.host}:${r.port}`).join(', ') || 'none'}; write quorum ${settings.writeQuorum}; replication ${node.replication}; keeping ${settings.keepVersions} older versions of each file; ${limitsOf(maxConnections, settings)}`,
  );
}

/** One of several primaries elected through etcd: it leads, or forwards to the one that does. */
async function runElectedPrimary(settings: Settings, nodeOptions: PrimaryNodeOptions): Promise<void> {
  const tlsCa = settings.etcd.some((url) => url.startsWith('https:')) && settings.tlsCa ? readFileSync(settings.tlsCa) : undefined;
  const etcd = new EtcdClient({ endpoints: settings.etcd, ca: tlsCa });
  const primary = new HaPrimary({ ...nodeOptions, etcd, etcdPrefix: settings.etcdPrefix, leaseTtlSeconds: settings.leaseTtl });
  stopOnSignal(() => primary.stop());
  await primary.start();
  nodeOptions.log(
    `one of the primaries elected through etcd (${settings.etcd.join(', ')}, prefix ${settings.etcdPrefix}, lease ${settings.leaseTtl} s); stores under ${path.join(nodeOptions.dataDir, 'servidor')} when it leads; replicas ${nodeOptions.replicas.map((r) => `${r.host}:${r.port}`).join(', ')}; write quorum ${settings.writeQuorum}`,
  );
}

export async function runReplica(settings: Settings, portGiven: boolean): Promise<void> {
  if (!portGiven) {
    throw new DfsError('BAD_HEADER', `dfs replica needs --port, one of ${settings.basePort}..${settings.basePort + settings.replicas - 1}`);
  }
  const id = replicaIdForPort(settings.port, settings.basePort, settings.replicas);
  const log = logger(`replica ${id}`);
  const security = loadSecurity(settings);
  checkExposure(settings, security, log);
  const maxConnections = maxConnectionsOf(settings, log);
  const node = new ReplicaNode({
    security,
    maxConnections,
    minFreeBytes: settings.minFree,
    compactAfterLines: settings.compactAfterLines,
    inlineMaxBytes: settings.inlineMax,
    id,
    host: settings.host,
    port: settings.port,
    dataDir: path.resolve(settings.dataDir),
    timeouts: timeoutsOf(settings),
    maxFileSize: settings.maxFileSize,
    log,
  });
  keepServing(`replica ${id}`, log);
  stopOnSignal(() => node.stop());
  await node.start();
  log(`storing under ${node.store.root}; ${limitsOf(maxConnections, settings)}`);
}

/** Starts each process of a local cluster as a child and resolves once all print their listening line. */
/** Where `dfs cluster --ha` puts its etcd: clear of the primary, replica and etcd default ports. */
const LOCAL_ETCD_PORT_OFFSET = 4379;

export async function runCluster(settings: Settings, scriptPath: string, ha = false): Promise<void> {
  if (ha) {
    const missing = etcdUnavailable();
    if (missing) {
      throw new DfsError('UNREACHABLE', missing);
    }
    // Replicas that served primaries elected through etcd refuse a primary without it
    // (it could be a deposed one), so the try-out keeps its own data folder.
    if (settings.dataDir === DEFAULT_DATA_DIR) {
      settings = { ...settings, dataDir: `${DEFAULT_DATA_DIR}-ha` };
    }
  }
  const common = ['--host', settings.host, '--base-port', String(settings.basePort), '--replicas', String(settings.replicas), '--data-dir', path.resolve(settings.dataDir)];
  const timing = ['--idle-timeout', String(settings.idleTimeoutMs), '--header-timeout', String(settings.headerTimeoutMs), '--max-file-size', String(settings.maxFileSize)];
  const passThrough: [string, string | undefined][] = [
    ['--secret-file', settings.secretFile],
    ['--tls-cert', settings.tlsCert],
    ['--tls-key', settings.tlsKey],
    ['--tls-ca', settings.tlsCa],
    ['--max-connections', settings.maxConnections === undefined ? undefined : String(settings.maxConnections)],
    ['--min-free', String(settings.minFree)],
    ['--compact-after', settings.compactAfterLines === undefined ? undefined : String(settings.compactAfterLines)],
    ['--inline-max', settings.inlineMax === undefined ? undefined : String(settings.inlineMax)],
    ['--quota', settings.quota === undefined ? undefined : String(settings.quota)],
  ];
  for (const [flag, value] of passThrough) {
    if (value !== undefined) {
      timing.push(flag, value);
    }
  }
  if (settings.insecure) {
    timing.push('--insecure');
  }
  const children: ChildProcess[] = [];
  let etcdUrl: string | undefined;
  let stopping = false;
  const stopAll = async (code: number): Promise<never> => {
    stopping = true;
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) {
              resolve();
              return;
            }
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
    process.exit(code);
  };
  // With --ha a primary may die: that is what the standby is for, so it does not stop the rest.
  const start = (label: string, args: string[], essential = true): Promise<void> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [scriptPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
      children.push(child);
      let ready = false;
      const lines = readline.createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        process.stdout.write(line + '\n');
        if (!ready && line.includes('listening on')) {
          ready = true;
          resolve();
        }
      });
      const errors: string[] = [];
      readline.createInterface({ input: child.stderr! }).on('line', (line) => {
        errors.push(line);
        process.stderr.write(`[${label}] ${line}\n`);
      });
      child.once('exit', (code, signal) => {
        if (!ready) {
          reject(new DfsError('UNREACHABLE', `${label} did not start (${errors.at(-1) ?? `exit ${code ?? signal}`})`));
        } else if (!stopping && essential) {
          process.stderr.write(`dfs cluster: ${label} exited (${code ?? signal}); stopping the cluster\n`);
          void stopAll(1);
        } else if (!stopping) {
          process.stderr.write(`dfs cluster: ${label} exited (${code ?? signal}); the other primary leads now, the cluster goes on\n`);
        }
      });
    });

  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));
  try {
    const replicaStarts = Array.from({ length: settings.replicas }, (_, index) =>
      start(`replica ${index + 1}`, ['replica', '--port', String(settings.basePort + index), ...common, ...timing]),
    );
    await Promise.all(replicaStarts);
    const primaryArgs = (port: number, dataDir: string): string[] => [
      'primary',
      '--port',
      String(port),
      '--write-quorum',
      String(settings.writeQuorum),
      '--replication',
      settings.replication,
      '--sync-interval',
      String(settings.syncIntervalMs),
      '--scrub-interval',
      String(settings.scrubIntervalMs),
      '--keep-versions',
      String(settings.keepVersions),
      ...common,
      '--data-dir',
      dataDir,
      ...timing,
      ...(etcdUrl ? ['--etcd', etcdUrl, '--etcd-prefix', settings.etcdPrefix, '--lease-ttl', String(settings.leaseTtl)] : []),
    ];
    if (ha) {
      const etcd = await startLocalEtcd(path.resolve(settings.dataDir, 'etcd'), settings.port + LOCAL_ETCD_PORT_OFFSET, settings.port + LOCAL_ETCD_PORT_OFFSET + 1);
      children.push(etcd.child);
      etcd.child.once('exit', (code, signal) => {
        if (!stopping) {
          process.stderr.write(`dfs cluster: etcd exited (${code ?? signal}); stopping the cluster\n`);
          void stopAll(1);
        }
      });
      etcdUrl = etcd.clientUrl;
      process.stdout.write(`etcd serving at ${etcdUrl}, data in ${path.resolve(settings.dataDir, 'etcd')}\n`);
    }
    await start('primary', primaryArgs(settings.port, path.resolve(settings.dataDir)), !ha);
    if (ha) {
      // The standby keeps its own disk: on a takeover it fills it from the replicas.
      await start('standby primary', primaryArgs(settings.port + 1, path.resolve(settings.dataDir, 'standby')), false);
    }
  } catch (error) {
    process.stderr.write(`dfs cluster: ${(error as Error).message}\n`);
    await stopAll(1);
  }
  const primaries = ha ? `primaries ${settings.host}:${settings.port} and ${settings.host}:${settings.port + 1} (elected through etcd at ${etcdUrl}; clients: --server ${settings.host}:${settings.port},${settings.host}:${settings.port + 1})` : `primary ${settings.host}:${settings.port}`;
  process.stdout.write(
    `dfs cluster ready: ${primaries}, ${settings.replicas} replicas on ${settings.basePort}..${settings.basePort + settings.replicas - 1}, data in ${path.resolve(settings.dataDir)}. Press Ctrl-C to stop.\n`,
  );
}
