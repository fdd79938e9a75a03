import { spawnSync } from 'child_process';
import { must, netnsUnavailable, run } from './netns';

/**
 * Hosts on one switched LAN, each a Linux network namespace, for measuring what
 * travels between hosts (the multihost bench): every host has one veth "eth0" whose
 * other end is a port of one bridge, and the bridge lives in a namespace of its own
 * (the "switch"), so every host reaches every other host and nothing else. The
 * process that creates them (the root namespace) is one more host on the same bridge,
 * through the veth `rootDevice`, so a client in the bench process is a host too.
 *
 *   root namespace (rootAddress) --+
 *   host "primary"  (eth0) --------+-- bridge "lan" in namespace <prefix>-switch
 *   host "replica1" (eth0) --------+
 *   ...
 *
 * Every link is shaped to `linkMbit` in both directions with a token bucket (tc tbf
 * on both ends of its veth: the host's end limits what it sends, the switch's end what
 * it receives), as a host with a NIC of that speed on a switch would be. Addresses are
 * one /24 of 198.18.0.0/15 (reserved for network benchmarks) that the root namespace
 * does not use yet; no namespace has a default route.
 */

export interface BridgedHost {
  name: string;
  ns: string;
  address: string;
}

export interface BridgeOptions {
  /** Names of the hosts, each given a namespace (the root namespace is not among them). */
  hosts: string[];
  /** Rate of every link, each direction, in Mbit/s. */
  linkMbit: number;
}

/** Why the harness cannot run here, or undefined when it can. */
export async function bridgedHostsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') {
    return `network namespaces need Linux, this is ${process.platform}`;
  }
  if (process.getuid?.() !== 0) {
    return 'creating network namespaces, a bridge and tc qdiscs needs root; run it as root (sudo npm run bench -- --only multihost)';
  }
  for (const command of ['ip', 'tc']) {
    const probe = await run(command, ['-V']);
    if (probe.missing) {
      return `the "${command}" command is not installed (Debian package iproute2)`;
    }
  }
  // Root may still lack CAP_NET_ADMIN (an unprivileged container): try one namespace.
  return netnsUnavailable();
}

const live = new Set<BridgedHosts>();
let exitHookInstalled = false;

export class BridgedHosts {
  readonly hosts = new Map<string, BridgedHost>();
  readonly switchNs: string;
  /** The root namespace's port on the bridge. */
  readonly rootDevice: string;
  readonly rootAddress: string;

  private constructor(
    readonly prefix: string,
    private readonly subnet: string,
    readonly linkMbit: number,
  ) {
    this.switchNs = `${prefix}-switch`;
    this.rootDevice = `dfsb${process.pid}`.slice(0, 15);
    this.rootAddress = `${subnet}.1`;
  }

  static async create(options: BridgeOptions): Promise<BridgedHosts> {
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => live.forEach((lan) => lan.destroySync()));
    }
    await removeStale();
    const lan = new BridgedHosts(`dfsb-${process.pid}`, await freeSubnet(), options.linkMbit);
    live.add(lan);
    try {
      await lan.build(options.hosts);
    } catch (error) {
      await lan.destroy();
      throw error;
    }
    return lan;
  }

  host(name: string): BridgedHost {
    const host = this.hosts.get(name);
    if (!host) {
      throw new Error(`no host "${name}" on this bridge`);
    }
    return host;
  }

  /** The command prefix that runs a process on `name` (in its namespace). */
  launcher(name: string): string[] {
    return ['ip', 'netns', 'exec', this.host(name).ns];
  }

  /** The qdiscs of every link, as tc reports them (with bytes sent), for the log. */
  async qdiscs(): Promise<string> {
    const parts: string[] = [];
    parts.push(`root ${this.rootDevice}: ${(await must('tc', ['-s', 'qdisc', 'show', 'dev', this.rootDevice])).trim()}`);
    for (const host of this.hosts.values()) {
      parts.push(`${host.name} eth0: ${(await must('tc', ['-n', host.ns, '-s', 'qdisc', 'show', 'dev', 'eth0'])).trim()}`);
    }
    return parts.join('\n');
  }

  private async build(names: string[]): Promise<void> {
    await must('ip', ['netns', 'add', this.switchNs]);
    await must('ip', ['-n', this.switchNs, 'link', 'add', 'lan', 'type', 'bridge']);
    await must('ip', ['-n', this.switchNs, 'link', 'set', 'lan', 'up']);

    // The root namespace's port.
    await must('ip', ['link', 'add', this.rootDevice, 'type', 'veth', 'peer', 'name', 'p-root', 'netns', this.switchNs]);
    await this.plug('p-root');
    await must('ip', ['addr', 'add', `${this.rootAddress}/24`, 'dev', this.rootDevice]);
    await must('ip', ['link', 'set', this.rootDevice, 'up']);
    await this.shape([], this.rootDevice);

    for (const [index, name] of names.entries()) {
      const host: BridgedHost = { name, ns: `${this.prefix}-${name}`, address: `${this.subnet}.${10 + index}` };
      await must('ip', ['netns', 'add', host.ns]);
      this.hosts.set(name, host);
      await must('ip', ['-n', host.ns, 'link', 'set', 'lo', 'up']);
      const port = `p-${name}`.slice(0, 15);
      // Both ends are created inside their namespaces: nothing of it appears in the root namespace.
      await must('ip', ['link', 'add', 'eth0', 'netns', host.ns, 'type', 'veth', 'peer', 'name', port, 'netns', this.switchNs]);
      await this.plug(port);
      await must('ip', ['-n', host.ns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0']);
      await must('ip', ['-n', host.ns, 'link', 'set', 'eth0', 'up']);
      await this.shape(['-n', host.ns], 'eth0');
    }
  }

  /** Attaches a switch-side veth end to the bridge and shapes it (what its host receives). */
  private async plug(port: string): Promise<void> {
    await must('ip', ['-n', this.switchNs, 'link', 'set', port, 'master', 'lan']);
    await must('ip', ['-n', this.switchNs, 'link', 'set', port, 'up']);
    await this.shape(['-n', this.switchNs], port);
  }

  /**
   * A token bucket on one device's egress: `linkMbit`, a bucket of 4 ms at that rate
   * (at least 64 KiB, so a 64 KiB GSO segment passes whole) and up to 20 ms of queue.
   */
  private async shape(where: string[], device: string): Promise<void> {
    const bytesPerSecond = (this.linkMbit * 1e6) / 8;
    const burst = Math.max(64 * 1024, Math.round(bytesPerSecond * 0.004));
    await must('tc', [...where, 'qdisc', 'replace', 'dev', device, 'root', 'tbf', 'rate', `${this.linkMbit}mbit`, 'burst', String(burst), 'latency', '20ms']);
  }

  /** Deletes every namespace (and with them every veth and the bridge). */
  async destroy(): Promise<void> {
    for (const host of this.hosts.values()) {
      await run('ip', ['netns', 'del', host.ns]);
    }
    await run('ip', ['netns', 'del', this.switchNs]);
    if ((await run('ip', ['link', 'show', this.rootDevice])).code === 0) {
      await run('ip', ['link', 'del', this.rootDevice]);
    }
    live.delete(this);
  }

  /** The last resort, from the process's exit hook: synchronous, best effort. */
  destroySync(): void {
    for (const host of this.hosts.values()) {
      spawnSync('ip', ['netns', 'del', host.ns], { stdio: 'ignore' });
    }
    spawnSync('ip', ['netns', 'del', this.switchNs], { stdio: 'ignore' });
    spawnSync('ip', ['link', 'del', this.rootDevice], { stdio: 'ignore' });
    live.delete(this);
  }
}

/** Namespaces of this harness left by a run that was killed outright (its pid is gone). */
async function removeStale(): Promise<void> {
  const listed = await run('ip', ['netns', 'list']);
  for (const match of listed.stdout.matchAll(/^(dfsb-(\d+)-[\w-]+)/gm)) {
    let alive = true;
    try {
      process.kill(Number(match[2]), 0);
    } catch (error) {
      alive = (error as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) {
      await run('ip', ['netns', 'del', match[1]]);
    }
  }
}

/** A /24 from 198.18.160.0/24 to 198.18.199.0/24 that no address of the root namespace is in. */
async function freeSubnet(): Promise<string> {
  const used = await must('ip', ['-o', '-4', 'addr', 'show']);
  for (let attempt = 0; attempt < 40; attempt++) {
    const subnet = `198.18.${160 + ((process.pid + attempt) % 40)}`;
    if (!used.includes(`inet ${subnet}.`)) {
      return subnet;
    }
  }
  throw new Error('no free /24 left in 198.18.160.0/18 for the bridged hosts');
}
