import { ChildProcess, spawn, spawnSync } from 'child_process';
import { promises as fs, readFileSync } from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as os from 'os';
import * as path from 'path';
import type { Context } from 'mocha';
import type { TestCertificates } from './certificates';
import { freePortRange } from './ports';
import { stopChild, trackChild } from './processes';
import { waitFor } from './wait';

/**
 * A real etcd cluster on 127.0.0.1 for tests: every member its own process with a
 * client and a peer port, data in a temporary folder, raft timings short (heartbeat
 * 50 ms, election 500 ms) so elections and lease expiries take well under a second
 * more than the TTL. Members can be killed, paused (SIGSTOP) and restarted; processes
 * are in the registry the root hook empties, so a failing test leaves none behind.
 */

export const ETCD_PACKAGE = 'etcd-server';

/** Why etcd cannot be run here, or undefined when it can. */
export function etcdMissingReason(): string | undefined {
  const probe = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    return `etcd is not installed (no \`etcd\` on PATH): install the Debian package ${ETCD_PACKAGE} (apt-get install ${ETCD_PACKAGE})`;
  }
  return undefined;
}

/** Starts a cluster for a suite's before hook, or skips the suite saying why etcd cannot run here. */
export async function startEtcdClusterOrSkip(context: Context, options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const missing = etcdMissingReason();
  if (missing) {
    console.log(`      skipped: ${missing}`);
    context.skip();
  }
  return EtcdCluster.start(options);
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  child?: ChildProcess;
  output: string[];
}

export interface EtcdClusterOptions {
  members?: number;
  /** A second address every member also serves clients on (as well as 127.0.0.1). */
  alsoListenOn?: string;
  /** Clients then speak https to the members, which present `cert` (peers stay plain). */
  tls?: TestCertificates;
  /** With tls: members accept only clients presenting a certificate signed by `ca` (the tests use `cert`). */
  clientCertAuth?: boolean;
}

export const ETCD_HEARTBEAT_MS = 50;
export const ETCD_ELECTION_MS = 500;

export class EtcdCluster {
  private alsoListenOn: string | undefined;

  private constructor(
    readonly members: EtcdMember[],
    private readonly dir: string,
    private readonly token: string,
    private readonly tls: TestCertificates | undefined,
    private readonly clientCertAuth: boolean,
  ) {}

  static async start(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const count = options.members ?? 3;
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-etcd-'));
    const base = await freePortRange(2 * count);
    const scheme = options.tls ? 'https' : 'http';
    const members = Array.from({ length: count }, (_, index) => ({
      name: `m${index}`,
      clientUrl: `${scheme}://127.0.0.1:${base + index}`,
      peerUrl: `http://127.0.0.1:${base + count + index}`,
      dataDir: path.join(dir, `m${index}`),
      output: [],
    }));
    const cluster = new EtcdCluster(members, dir, `dfs-test-${process.pid}-${base}`, options.tls, options.clientCertAuth === true);
    cluster.alsoListenOn = options.alsoListenOn;
    try {
      for (let index = 0; index < count; index++) {
        cluster.launch(index, 'new');
      }
      await Promise.all(members.map((_, index) => cluster.waitHealthy(index)));
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  endpoints(): string[] {
    return this.members.map((member) => member.clientUrl);
  }

  /** The members' client URLs on the second address they listen on (alsoListenOn). */
  endpointsOn(host: string): string[] {
    return this.members.map((member) => this.urlOn(member, host));
  }

  private urlOn(member: EtcdMember, host: string): string {
    const url = new URL(member.clientUrl);
    return `${url.protocol}//${host}:${url.port}`;
  }

  /** kill -9: the member is gone until restart(). */
  async kill(index: number): Promise<void> {
    const child = this.members[index].child;
    this.members[index].child = undefined;
    if (child) {
      await stopChild(child, 'SIGKILL');
    }
  }

  /** SIGSTOP: the member keeps its sockets open but answers nothing, as a hung host does. */
  pause(index: number): void {
    this.members[index].child?.kill('SIGSTOP');
  }

  resume(index: number): void {
    this.members[index].child?.kill('SIGCONT');
  }

  /** Starts a killed member again on its data folder and waits until it serves. */
  async restart(index: number): Promise<void> {
    if (this.members[index].child) {
      throw new Error(`etcd member ${this.members[index].name} is still running: kill it first`);
    }
    this.launch(index, 'existing');
    await this.waitHealthy(index);
  }

  /** Waits until the member says it is healthy (it is part of a cluster with a leader). */
  async waitHealthy(index: number, timeoutMs = 15_000): Promise<void> {
    const member = this.members[index];
    await waitFor(
      async () => {
        if (!member.child || member.child.exitCode !== null) {
          throw new Error(`etcd member ${member.name} exited:\n${member.output.slice(-30).join('\n')}`);
        }
        return (await this.healthy(member)) || undefined;
      },
      `etcd member ${member.name} to report healthy at ${member.clientUrl}/health`,
      timeoutMs,
    );
  }

  /** Which member is raft leader now, as the running members see it (-1 when none says). */
  async leaderIndex(): Promise<number> {
    for (const member of this.members) {
      if (!member.child) {
        continue;
      }
      const status = await this.post(member, '/v3/maintenance/status', '{}').catch(() => undefined);
      if (status && typeof status.leader === 'string') {
        const header = status.header as { member_id?: string } | undefined;
        if (header?.member_id === status.leader) {
          return this.members.indexOf(member);
        }
        const leaderId = status.leader;
        for (const other of this.members) {
          const otherStatus = other.child ? await this.post(other, '/v3/maintenance/status', '{}').catch(() => undefined) : undefined;
          if ((otherStatus?.header as { member_id?: string } | undefined)?.member_id === leaderId) {
            return this.members.indexOf(other);
          }
        }
      }
    }
    return -1;
  }

  /** A member that is not raft leader: killing or pausing it costs the cluster no election. */
  async followerIndex(): Promise<number> {
    const leader = await this.leaderIndex();
    return this.members.findIndex((member, index) => index !== leader && member.child !== undefined);
  }

  async destroy(): Promise<void> {
    for (const member of this.members) {
      // A paused member must be resumed to see its SIGKILL promptly on every kernel.
      member.child?.kill('SIGCONT');
    }
    await Promise.all(this.members.map((_, index) => this.kill(index)));
    await fs.rm(this.dir, { recursive: true, force: true });
  }

  private launch(index: number, state: 'new' | 'existing'): void {
    const member = this.members[index];
    const args = [
      '--name', member.name,
      '--data-dir', member.dataDir,
      '--listen-client-urls', [member.clientUrl, ...(this.alsoListenOn ? [this.urlOn(member, this.alsoListenOn)] : [])].join(','),
      '--advertise-client-urls', member.clientUrl,
      '--listen-peer-urls', member.peerUrl,
      '--initial-advertise-peer-urls', member.peerUrl,
      '--initial-cluster', this.members.map((each) => `${each.name}=${each.peerUrl}`).join(','),
      '--initial-cluster-state', state,
      '--initial-cluster-token', this.token,
      '--heartbeat-interval', String(ETCD_HEARTBEAT_MS),
      '--election-timeout', String(ETCD_ELECTION_MS),
      '--logger', 'zap',
      '--log-level', 'warn',
      ...(this.tls ? ['--cert-file', this.tls.cert, '--key-file', this.tls.key] : []),
      ...(this.tls && this.clientCertAuth ? ['--client-cert-auth', '--trusted-ca-file', this.tls.ca] : []),
    ];
    const child = spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child);
    const keep = (chunk: Buffer): void => {
      member.output.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
      member.output.splice(0, Math.max(0, member.output.length - 200));
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    member.child = child;
  }

  private post(member: EtcdMember, path: string, body: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const url = new URL(path, member.clientUrl);
      const request = (url.protocol === 'https:' ? https : http).request(
        url,
        { method: 'POST', timeout: 500, ...this.tlsOptions(), agent: false },
        (response) => {
          let text = '';
          response.on('data', (chunk) => (text += chunk));
          response.on('end', () => {
            try {
              resolve(JSON.parse(text) as Record<string, unknown>);
            } catch (error) {
              reject(error as Error);
            }
          });
          response.on('error', reject);
        },
      );
      request.on('timeout', () => request.destroy(new Error(`${url.href} gave no answer within 500 ms`)));
      request.on('error', reject);
      request.end(body);
    });
  }

  /** What the harness's own requests need to pass the members' TLS checks. */
  private tlsOptions(): https.RequestOptions {
    if (!this.tls) {
      return {};
    }
    return { ca: readFileSync(this.tls.ca), ...(this.clientCertAuth ? { cert: readFileSync(this.tls.cert), key: readFileSync(this.tls.key) } : {}) };
  }

  private healthy(member: EtcdMember): Promise<boolean> {
    return new Promise((resolve) => {
      const url = new URL('/health', member.clientUrl);
      const get = url.protocol === 'https:' ? https.get : http.get;
      const request = get(url, { timeout: 500, ...this.tlsOptions(), agent: false }, (response) => {
        let body = '';
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () => resolve(response.statusCode === 200 && /"health":\s*"true"/.test(body)));
        response.on('error', () => resolve(false));
      });
      request.on('timeout', () => request.destroy());
      request.on('error', () => resolve(false));
    });
  }
}
