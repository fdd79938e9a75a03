import { spawnSync } from 'child_process';
import { must, run } from './netns';

/**
 * One "host" in a network namespace of its own, joined to the root namespace by a veth
 * pair on a /29 of 198.18.0.0/15 (the range reserved for network tests): the root side
 * holds `serviceAddress` (where the other servers listen) and `etcdAddress` (where etcd
 * also listens), the namespace side `hostAddress`. cutFrom() drops every packet from
 * the host to one address (a blackhole route), so that host alone loses, say, etcd,
 * while it still reaches the replicas and its clients still reach it.
 */
export class IsolatedHost {
  readonly serviceAddress: string;
  readonly hostAddress: string;
  readonly etcdAddress: string;
  private readonly rootDevice: string;

  private constructor(
    readonly ns: string,
    net: number,
  ) {
    const base = `198.18.${200 + (net >> 5)}.${(net & 31) << 3}`;
    const octets = base.split('.').map(Number);
    const at = (offset: number): string => `${octets[0]}.${octets[1]}.${octets[2]}.${octets[3] + offset}`;
    this.serviceAddress = at(1);
    this.hostAddress = at(2);
    this.etcdAddress = at(3);
    this.rootDevice = `dfsh${process.pid % 100000}${net}`.slice(0, 15);
  }

  static async create(): Promise<IsolatedHost> {
    const used = (await run('ip', ['-o', '-4', 'addr', 'show'])).stdout;
    for (let attempt = 0; attempt < 256; attempt++) {
      const net = (process.pid + attempt) % 256;
      const host = new IsolatedHost(`dfs-${process.pid}-host${net}`, net);
      if (!used.includes(`inet ${host.serviceAddress}/`)) {
        await host.build();
        return host;
      }
    }
    throw new Error('no free /29 left in 198.18.200.0/21');
  }

  /** The command prefix that runs a process on this host. */
  get launcher(): string[] {
    return ['ip', 'netns', 'exec', this.ns];
  }

  async cutFrom(address: string): Promise<void> {
    await must('ip', ['-n', this.ns, 'route', 'add', 'blackhole', `${address}/32`]);
  }

  async reconnectTo(address: string): Promise<void> {
    await must('ip', ['-n', this.ns, 'route', 'del', 'blackhole', `${address}/32`]);
  }

  async destroy(): Promise<void> {
    await run('ip', ['netns', 'del', this.ns]);
    await run('ip', ['link', 'del', this.rootDevice]);
  }

  private async build(): Promise<void> {
    process.once('exit', () => {
      spawnSync('ip', ['netns', 'del', this.ns], { stdio: 'ignore' });
      spawnSync('ip', ['link', 'del', this.rootDevice], { stdio: 'ignore' });
    });
    await must('ip', ['netns', 'add', this.ns]);
    await must('ip', ['-n', this.ns, 'link', 'set', 'lo', 'up']);
    await must('ip', ['link', 'add', this.rootDevice, 'type', 'veth', 'peer', 'name', 'uplink', 'netns', this.ns]);
    await must('ip', ['addr', 'add', `${this.serviceAddress}/29`, 'dev', this.rootDevice]);
    await must('ip', ['addr', 'add', `${this.etcdAddress}/29`, 'dev', this.rootDevice]);
    await must('ip', ['-n', this.ns, 'addr', 'add', `${this.hostAddress}/29`, 'dev', 'uplink']);
    await must('ip', ['link', 'set', this.rootDevice, 'up']);
    await must('ip', ['-n', this.ns, 'link', 'set', 'uplink', 'up']);
  }
}
