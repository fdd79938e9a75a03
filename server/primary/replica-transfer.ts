import type { ReplicationMode } from '../config/cluster-layout';
import { isLoopback } from '../config/security-settings';
import { ChainDownstream } from '../node/chain-downstream';
import { DfsError, Reply, ReplicaChecksum, ReplicaStep, formatReplicaChecksum, toDfsError } from '../protocol';
import type { StagedWrite } from '../storage/store';
import type { PrimaryContext } from './primary-context';
import type { ReplicaLink } from './replica-link';

/**
 * The primary's handle on one replica's copy of one upload, however the bytes reach it.
 * Never throws into the upload: a failure is recorded and the others carry on.
 */
export interface ReplicaTransfer {
  readonly link: ReplicaLink;
  readonly failure: DfsError | undefined;
  readonly ok: boolean;
  send(chunk: Buffer): Promise<void>;
  /** Resolves once the replica has the bytes on stable storage (or failed). */
  prepare(step: ReplicaChecksum): Promise<void>;
  /** Sent only once the primary's catalog holds the version. */
  commit(): Promise<void>;
  /** Makes the replica drop its staged bytes; after a commit it does nothing. */
  abort(): Promise<void>;
}

export interface OpenedTransfers {
  replicas: ReplicaTransfer[];
  refused: { label: string; error: DfsError }[];
}

/**
 * Opens one upload's replica transfers: one REPLICA exchange per replica (fan-out),
 * or one REPLICA_CHAIN through all of them (pipeline). `staged` is the primary's own
 * staged copy once it exists: a pipeline replays it to a replica that joins mid-transfer.
 */
export async function openTransfers(primary: PrimaryContext, clientId: string, name: string, size: number, staged: () => StagedWrite | undefined): Promise<OpenedTransfers> {
  if (primary.replication === 'pipeline' && primary.links.length > 0) {
    return openChain(primary.links, clientId, name, size, staged);
  }
  const opened = await Promise.allSettled(primary.links.map((link) => link.openUpload(clientId, name, size)));
  const result: OpenedTransfers = { replicas: [], refused: [] };
  opened.forEach((outcome, index) => {
    if (outcome.status === 'fulfilled') {
      result.replicas.push(outcome.value);
    } else {
      result.refused.push({ label: primary.links[index].label, error: toDfsError(outcome.reason, 'UNREACHABLE') });
    }
  });
  return result;
}

async function openChain(links: readonly ReplicaLink[], clientId: string, name: string, size: number, staged: () => StagedWrite | undefined): Promise<OpenedTransfers> {
  const byId = new Map(links.map((link) => [link.address.id, link]));
  const downstream = new ChainDownstream({
    hops: links.map((link) => ({ id: link.address.id, host: link.address.host, port: link.address.port })),
    clientId,
    name,
    size,
    connect: (hop) => byId.get(hop.id)!.connect(),
    replay: (upTo) => {
      const copy = staged();
      if (!copy?.readBack) {
        throw new DfsError('INTERNAL', 'the primary holds no staged copy to replay');
      }
      return copy.readBack(upTo);
    },
    onFailure: (hop, error) => byId.get(hop.id)!.noteFailure(error),
  });
  await downstream.open();
  const chain = new ChainUpload(downstream);
  const result: OpenedTransfers = { replicas: [], refused: [] };
  for (const link of links) {
    // Refused at the start: counted as fan-out counts a replica it could not open.
    const failure = downstream.failures.get(link.address.id);
    if (failure) {
      result.refused.push({ label: link.label, error: failure });
    } else {
      result.replicas.push(new ChainMember(link, chain));
    }
  }
  return result;
}

/**
 * One REPLICA_CHAIN exchange shared by the members of the chain: each step goes down
 * once, however many members ask for it (replicated-write asks for each replica).
 */
class ChainUpload {
  private lastChunk: Buffer | undefined;
  private lastSend: Promise<void> = Promise.resolve();
  private preparing: Promise<void> | undefined;
  private committing: Promise<void> | undefined;
  private aborting: Promise<void> | undefined;
  private prepared = false;
  private finished = false;

  constructor(readonly downstream: ChainDownstream) {}

  send(chunk: Buffer): Promise<void> {
    if (chunk !== this.lastChunk) {
      this.lastChunk = chunk;
      this.lastSend = this.downstream.send(chunk);
    }
    return this.lastSend;
  }

  prepare(step: ReplicaChecksum): Promise<void> {
    this.preparing ??= this.downstream.step(formatReplicaChecksum(step), Reply.REPLICA_PREPARED).then(() => {
      this.prepared = true;
    });
    return this.preparing;
  }

  commit(): Promise<void> {
    this.committing ??= this.downstream.step(ReplicaStep.COMMIT, Reply.REPLICA_SUCCESS).then(() => {
      this.finished = true;
      this.downstream.close();
    });
    return this.committing;
  }

  abort(): Promise<void> {
    if (this.finished || this.committing) {
      return this.committing ?? Promise.resolve();
    }
    this.aborting ??= this.downstream.abort(this.prepared);
    return this.aborting;
  }
}

class ChainMember implements ReplicaTransfer {
  constructor(
    readonly link: ReplicaLink,
    private readonly chain: ChainUpload,
  ) {}

  get failure(): DfsError | undefined {
    return this.chain.downstream.failures.get(this.link.address.id);
  }

  get ok(): boolean {
    return this.failure === undefined;
  }

  send(chunk: Buffer): Promise<void> {
    return this.chain.send(chunk);
  }

  prepare(step: ReplicaChecksum): Promise<void> {
    return this.chain.prepare(step);
  }

  commit(): Promise<void> {
    return this.chain.commit();
  }

  abort(): Promise<void> {
    return this.chain.abort();
  }
}

/** `auto`: a pipeline when any replica is on another host, fan-out when all are on this one (loopback). */
export function resolveReplication(mode: ReplicationMode | undefined, hosts: readonly string[]): 'fanout' | 'pipeline' {
  if (mode === 'fanout' || mode === 'pipeline') {
    return mode;
  }
  if (mode === undefined) {
    return 'fanout';
  }
  return hosts.some((host) => !isLoopback(host)) ? 'pipeline' : 'fanout';
}
