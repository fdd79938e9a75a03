import * as net from 'net';
import * as tls from 'tls';
import { DfsError, HaStatus, formatFailure } from '../protocol';
import { PrimaryNode, PrimaryNodeOptions } from '../primary/primary-node';
import type { CommittedChange } from '../primary/commit-point';
import { decodeRecord, recordsPrefix } from './commit-records';
import type { EtcdClient } from './etcd-client';
import { EtcdCommitPoint } from './etcd-commit-point';
import { LeaderInfo, Leadership } from './leadership';
import { settleCommitRecords } from './takeover';

export interface HaPrimaryOptions extends PrimaryNodeOptions {
  etcd: EtcdClient;
  /** Key prefix shared by the primaries of one cluster. */
  etcdPrefix: string;
  leaseTtlSeconds: number;
}

/**
 * A primary among several sharing the same replicas, elected through etcd. It owns the
 * listener: while it leads, connections are served by a PrimaryNode started for that
 * leadership (its epoch on every replica request, every change committed in etcd
 * first); while it stands by, each connection is forwarded byte for byte to the
 * leader, so any client, the report's included, can be given any primary's address.
 * Losing the leadership stops that PrimaryNode and cuts its connections at once.
 */
export class HaPrimary {
  private readonly server: net.Server | tls.Server;
  private leadership: Leadership | undefined;
  private node: PrimaryNode | undefined;
  /** Resolves to the node being started for a leadership just won, so connections wait for it. */
  private starting: Promise<PrimaryNode | undefined> | undefined;
  private readonly served = new Set<net.Socket>();
  /** Connections forwarded to a leader, by that leader's address. */
  private readonly forwarded = new Map<net.Socket, string>();
  private address = { host: '', port: 0 };
  private term: { epoch: number; sinceMs: number } | undefined;
  private transitions: Promise<void> = Promise.resolve();
  /** Settles once etcd has answered this primary's first campaign: it then knows who leads. */
  private firstRound: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: HaPrimaryOptions) {
    const tlsFiles = options.security?.tls;
    this.server =
      tlsFiles?.cert && tlsFiles.key
        ? tls.createServer({ allowHalfOpen: true, cert: tlsFiles.cert, key: tlsFiles.key, ca: tlsFiles.ca, handshakeTimeout: options.timeouts.headerMs }, (socket) => this.accept(socket))
        : net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  async start(): Promise<{ host: string; port: number }> {
    this.address = await new Promise((resolve, reject) => {
      this.server.once('error', (error: NodeJS.ErrnoException) =>
        reject(new DfsError('UNREACHABLE', error.code === 'EADDRINUSE' ? `port ${this.options.port} on ${this.options.host} is already in use` : `cannot listen on ${this.options.host}:${this.options.port}: ${error.message}`)),
      );
      this.server.listen(this.options.port, this.options.host, () => {
        const bound = this.server.address() as net.AddressInfo;
        resolve({ host: bound.address, port: bound.port });
      });
    });
    const advertised = `${this.address.host}:${this.address.port}`;
    const leadership = new Leadership({ etcd: this.options.etcd, prefix: this.options.etcdPrefix, address: advertised, ttlSeconds: this.options.leaseTtlSeconds, log: this.options.log });
    this.leadership = leadership;
    leadership.on('elected', (epoch) => {
      this.cutForwardedExcept(undefined);
      void this.transition(() => this.lead(epoch));
    });
    leadership.on('deposed', (reason) => void this.transition(() => this.standBy(reason)));
    leadership.on('leader', (leader) => {
      // Whatever was forwarded to an earlier leader is cut: it may be paused or cut off, and
      // its answers no longer count; our clients then ask again and reach the new one.
      this.cutForwardedExcept(leader?.address);
      this.options.log(leader ? `standing by: ${leader.address} leads (epoch ${leader.epoch})` : 'standing by: no primary leads right now');
    });
    // Listening before etcd answers: a standby that cannot reach etcd still tells
    // clients why, and connections that come before the first round wait for it.
    this.firstRound = leadership.start();
    this.options.log(`listening on ${advertised}`);
    await this.firstRound;
    return this.address;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // Revoking the lease hands over at once rather than after its time-to-live.
    await this.leadership?.stop({ revoke: true });
    await this.transition(() => this.standBy('stopping'));
    this.cutForwardedExcept(undefined);
    await closed;
  }

  /** Who leads and who stands by, as etcd says (STATUS on the leader: one read of the members). */
  async describe(): Promise<HaStatus> {
    await this.refreshStandbys();
    const state = this.leadership?.state();
    const self = `${this.address.host}:${this.address.port}`;
    return {
      leader: state?.role === 'leader' ? self : (state?.leader?.address ?? ''),
      epoch: state?.role === 'leader' ? state.epoch : (state?.leader?.epoch ?? 0),
      leaderSinceMs: this.term?.sinceMs,
      standbys: this.standbys.filter((member) => member !== self),
    };
  }

  /** The members etcd listed at the last STATUS; the last list stands when etcd cannot be read. */
  private standbys: string[] = [];

  /** Leadership changes run one at a time, in the order they happened. */
  private transition(step: () => Promise<void>): Promise<void> {
    this.transitions = this.transitions.then(step).catch((error: unknown) => this.options.log(`leadership change failed: ${(error as Error).stack ?? error}`));
    return this.transitions;
  }

  private async lead(epoch: number): Promise<void> {
    if (this.stopped) {
      return;
    }
    const leadership = this.leadership!;
    this.term = { epoch, sinceMs: Date.now() };
    this.options.log(`leading (epoch ${epoch}): comparing with the replicas and settling what the previous leader committed`);
    const commitPoint = new EtcdCommitPoint(leadership, this.options.etcdPrefix, epoch);
    const node = new PrimaryNode({
      ...this.options,
      leadership: {
        address: this.address,
        epoch,
        commitPoint,
        takeOver: async (primary) => {
          const report = await settleCommitRecords(primary, commitPoint, await this.commitRecords());
          this.options.log(`took over (epoch ${epoch}): ${report.records} commit records, ${report.rolledForward} rolled forward, ${report.republished} never acknowledged and replaced`);
        },
        describe: () => this.describe(),
      },
    });
    this.starting = node.start().then(
      () => node,
      (error: unknown) => {
        this.options.log(`cannot lead: ${(error as Error).message}`);
        return undefined;
      },
    );
    this.node = await this.starting;
    this.starting = undefined;
  }

  private async standBy(reason: string): Promise<void> {
    const node = this.node;
    this.node = undefined;
    this.term = undefined;
    if (!node) {
      return;
    }
    this.options.log(`no longer leading: ${reason}; its connections are cut and it stands by`);
    for (const socket of this.served) {
      socket.destroy();
    }
    await node.stop();
  }

  private async commitRecords(): Promise<CommittedChange[]> {
    const { kvs } = await this.options.etcd.range(recordsPrefix(this.options.etcdPrefix), { prefix: true });
    return kvs.map((kv) => decodeRecord(kv.value)).filter((record): record is CommittedChange => record !== undefined);
  }

  private async refreshStandbys(): Promise<void> {
    try {
      this.standbys = (await this.leadership?.members()) ?? [];
    } catch {
      // Status shows the last list it had.
    }
  }

  private accept(socket: net.Socket): void {
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    const limit = this.options.maxConnections;
    if (limit !== undefined && this.served.size + this.forwarded.size >= limit) {
      const error = new DfsError('LIMIT', `this primary is serving its limit of ${limit} connections; try again shortly`);
      socket.end(formatFailure('ERROR', error) + '\n');
      socket.setTimeout(this.options.timeouts.headerMs, () => socket.destroy());
      return;
    }
    void this.route(socket);
  }

  private async route(socket: net.Socket): Promise<void> {
    let node = this.node ?? (await this.starting);
    if (!node && !this.knownLeader()) {
      // Just started, or an election is under way: give etcd a lease's time to say who leads.
      await Promise.race([this.firstRound, new Promise((resolve) => setTimeout(resolve, this.options.leaseTtlSeconds * 1000).unref())]);
      node = this.node ?? (await this.starting);
    }
    if (node && this.node === node) {
      this.served.add(socket);
      socket.once('close', () => this.served.delete(socket));
      await node.handle(socket);
      return;
    }
    this.forward(socket, this.leadership?.state());
  }

  private cutForwardedExcept(leader: string | undefined): void {
    for (const [socket, target] of this.forwarded) {
      if (target !== leader) {
        socket.destroy();
      }
    }
  }

  private knownLeader(): LeaderInfo | undefined {
    const state = this.leadership?.state();
    return state?.role === 'standby' ? state.leader : undefined;
  }

  /** Pipes the connection to the leader: TLS is ended here and begun again towards it. */
  private forward(socket: net.Socket, state: ReturnType<Leadership['state']> | undefined): void {
    const leader: LeaderInfo | undefined = state?.role === 'standby' ? state.leader : undefined;
    const self = `${this.address.host}:${this.address.port}`;
    if (!leader || leader.address === self) {
      const error = new DfsError('UNREACHABLE', 'no primary leads the cluster right now (an election is under way, or etcd cannot be reached); try again in a few seconds');
      socket.end(formatFailure('ERROR', error) + '\n');
      return;
    }
    const separator = leader.address.lastIndexOf(':');
    const host = leader.address.slice(0, separator);
    const port = Number(leader.address.slice(separator + 1));
    const tlsFiles = this.options.security?.tls;
    const upstream: net.Socket = tlsFiles?.ca
      ? tls.connect({ host, port, ca: tlsFiles.ca, cert: tlsFiles.cert, key: tlsFiles.key, servername: net.isIP(host) ? undefined : host })
      : net.connect({ host, port });
    this.forwarded.set(socket, leader.address);
    const done = (): void => {
      this.forwarded.delete(socket);
      socket.destroy();
      upstream.destroy();
    };
    upstream.on('error', () => {
      if (socket.bytesWritten === 0 && !socket.destroyed) {
        const error = new DfsError('UNREACHABLE', `the leader ${leader.address} cannot be reached from this standby; try again in a few seconds`);
        socket.end(formatFailure('ERROR', error) + '\n', () => done());
        return;
      }
      done();
    });
    upstream.setNoDelay(true);
    socket.pipe(upstream);
    upstream.pipe(socket);
    socket.once('close', done);
    upstream.once('close', done);
  }
}
