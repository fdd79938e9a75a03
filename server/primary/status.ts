import { refuseIfChallenged } from '../net/handshake';
import type { Handler } from '../net/session';
import { ClusterStatus, ConnectionCounts, HaStatus, Reply, ReplicaStatus, parseReply } from '../protocol';
import type { PrimaryContext } from './primary-context';
import type { ReplicaLink } from './replica-link';

/** STATUS: asks every replica at once, so one dead replica costs one timeout, not one each. Never waits for recovery. */
export function statusHandler(primary: PrimaryContext, address: () => string, startedAt: number, ha?: () => Promise<HaStatus>, connections?: () => ConnectionCounts): Handler {
  return async (session) => {
    const [replicas, leadership] = await Promise.all([Promise.all(primary.links.map((link) => probe(link))), ha?.()]);
    const principal = session.principal;
    const files = principal.kind === 'client' ? primary.store.list(principal.clientId) : primary.store.all();
    const status: ClusterStatus = {
      role: 'primary',
      address: address(),
      writeQuorum: primary.replicasRequired(),
      replication: primary.replication,
      replicas,
      files: files.length,
      bytes: files.reduce((sum, file) => sum + file.size, 0),
      uptimeMs: Date.now() - startedAt,
      generation: primary.store.marks.highest,
      keepVersions: primary.keepVersions,
      ...(primary.readiness.isReady ? {} : { recovering: primary.readiness.description || 'comparing its catalog with the replicas' }),
      ...(principal.kind === 'client' ? {} : { revokedKeys: primary.store.marks.revoked, connections: connections?.() }),
      // Without etcd this primary is the only one: it leads, under no epoch.
      ...(leadership ?? { leader: address(), epoch: 0 }),
    };
    // A client key sees whether replicas are up and in step, not where they are or why they failed.
    await session.reply(Reply.OK, principal.kind === 'client' ? forClient(status) : status);
  };
}

async function probe(link: ReplicaLink): Promise<ReplicaStatus> {
  try {
    const conn = await link.connect({ attempts: 1, firstDelayMs: 0, maxDelayMs: 0 });
    try {
      await conn.writeLine('STATUS');
      const reply = parseReply(refuseIfChallenged(await conn.readLine(2_000)));
      link.reachable = reply.token === Reply.OK;
      if (!link.reachable) {
        link.lastError = reply.message ?? reply.token;
      }
    } finally {
      conn.destroy();
    }
  } catch (error) {
    link.noteFailure(error);
  }
  const failing = link.failing(20).map(({ key, reason }) => ({ name: key.slice(key.indexOf('\u0000') + 1), reason }));
  return {
    id: link.address.id,
    address: `${link.address.host}:${link.address.port}`,
    reachable: link.reachable === true,
    filesBehind: link.behind.size,
    lastSyncMs: link.lastSyncMs,
    repairs: link.repairs,
    lastError: link.lastError,
    ...(failing.length > 0 ? { failing } : {}),
  };
}

function forClient(status: ClusterStatus): ClusterStatus {
  return {
    ...status,
    replicas: status.replicas.map((replica) => ({ id: replica.id, address: '', reachable: replica.reachable, filesBehind: replica.filesBehind, lastSyncMs: replica.lastSyncMs, repairs: replica.repairs })),
    recovering: status.recovering ? 'the primary is recovering; it serves again once enough replicas answer' : undefined,
  };
}
