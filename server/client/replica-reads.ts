import type { Writable } from 'stream';
import type { ReplicaAddress } from '../config/cluster-layout';
import type { ConnectionTimeouts } from '../net/connection';
import type { Security } from '../net/security';
import { ClientRecord, DfsError, FileRecord, VersionInfo } from '../protocol';
import { DfsClient, DownloadOptions, DownloadResult, askedAgainIfCut, downloadAtomically } from './dfs-client';
import { NewestFile, ReplicaListing, clientsAcrossReplicas, newestAcrossReplicas, newestVersions } from './newest-across-replicas';
import { formatHostPort } from './primary-addresses';

export interface ReplicaReadsOptions {
  replicas: readonly ReplicaAddress[];
  clientId: string;
  security?: Security;
  timeouts?: ConnectionTimeouts;
  connectTimeoutMs?: number;
}

/**
 * Replicas answer reads at once (they hold no request for recovery), so one that is
 * silent for seconds is left out rather than waited on: the others serve the read.
 */
const REPLICA_READ_TIMEOUTS: ConnectionTimeouts = { headerMs: 5_000, idleMs: 5_000, settleMs: 15 };
/** A status probe runs while someone looks at the UI. */
const PROBE_TIMEOUTS: ConnectionTimeouts = { headerMs: 3_000, idleMs: 3_000, settleMs: 15 };

/** Which replicas answered a read, for the read-only notice. */
export interface ReplicaReach {
  answered: number;
  of: number;
}

/**
 * Reads straight from the replicas, for when no primary answers. Every replica serves
 * FILES, CLIENTS, VERSIONS and DOWNLOAD; each name is read at the highest generation
 * any reachable replica lists (see newestAcrossReplicas), never a lower one.
 */
export class ReplicaReads {
  lastReach: ReplicaReach;

  constructor(private readonly options: ReplicaReadsOptions) {
    this.lastReach = { answered: 0, of: options.replicas.length };
  }

  describe(): string {
    return this.options.replicas.map(formatHostPort).join(', ');
  }

  /** How many replicas answer STATUS now; none is an error. */
  async reach(): Promise<ReplicaReach> {
    await this.fromEach((_, replica) => this.clientOf(replica, PROBE_TIMEOUTS).status());
    return this.lastReach;
  }

  async files(clientId = this.options.clientId): Promise<FileRecord[]> {
    return (await this.survey(clientId)).map((file) => file.record);
  }

  async clients(): Promise<ClientRecord[]> {
    return clientsAcrossReplicas(await this.fromEach((client) => client.clients()));
  }

  async versions(name: string, clientId = this.options.clientId): Promise<VersionInfo[]> {
    await this.newestOf(name, clientId);
    const listings = await this.fromEach((client) =>
      client.versions(name, clientId).catch((error: unknown) => {
        if (error instanceof DfsError && error.code === 'NOT_FOUND') {
          return [] as VersionInfo[];
        }
        throw error;
      }),
    );
    return newestVersions(listings) ?? [];
  }

  /** The current version from a replica that holds the newest one; with `generation`, that kept version from any replica that has it. */
  async download(name: string, sink: Writable, options: DownloadOptions = {}): Promise<DownloadResult> {
    const clientId = options.clientId ?? this.options.clientId;
    const newest = await this.newestOf(name, clientId);
    const candidates = options.generation === undefined ? newest.holders : this.options.replicas.map((replica) => replica.id);
    let lastError: unknown;
    for (const id of candidates) {
      const replica = this.options.replicas.find((known) => known.id === id)!;
      let reachedSink = false;
      try {
        // The first byte into the sink commits to this replica: later failures are final.
        const result = await this.clientOf(replica).download(name, sink, {
          ...options,
          clientId,
          onProgress: (done, size) => {
            reachedSink = true;
            options.onProgress?.(done, size);
          },
        });
        if (options.generation === undefined && result.generation < newest.record.generation) {
          throw new DfsError('CONFLICT', `replica ${id} served generation ${result.generation} of ${name}, older than the ${newest.record.generation} another replica holds; try again`);
        }
        return result;
      } catch (error) {
        // CHECKSUM with nothing sent: this replica knows its copy damaged (it cut an earlier download of it), another may hold a good one.
        const knownDamaged = error instanceof DfsError && error.code === 'CHECKSUM' && !reachedSink;
        if (!(error instanceof DfsError) || (error.code !== 'UNREACHABLE' && error.code !== 'NOT_FOUND' && !knownDamaged)) {
          throw error;
        }
        lastError = error;
      }
    }
    throw lastError ?? new DfsError('NOT_FOUND', `no reachable replica holds generation ${options.generation} of ${name}`);
  }

  /** Like DfsClient.downloadToFile: a cut transfer is asked for once more, and then skips a replica that knows its copy damaged. */
  downloadToFile(name: string, destination: string, options: DownloadOptions = {}): Promise<DownloadResult> {
    return askedAgainIfCut(options.signal, () => downloadAtomically(destination, (sink) => this.download(name, sink, options)));
  }

  private async newestOf(name: string, clientId: string): Promise<NewestFile> {
    const newest = (await this.survey(clientId)).find((file) => file.record.name === name);
    if (!newest) {
      throw new DfsError('NOT_FOUND', `${name} is not stored for client ${clientId} on any replica that answers (${this.lastReach.answered} of ${this.lastReach.of})`);
    }
    return newest;
  }

  private async survey(clientId: string): Promise<NewestFile[]> {
    const listings = await this.fromEach(async (client, replica): Promise<ReplicaListing> => {
      // The completeness mark first: a mark read after the listing could cover changes the listing missed.
      const status = await client.status();
      const synced = status.role === 'replica' ? status.synced : -1;
      return { replicaId: replica.id, synced, files: await client.files(clientId) };
    });
    return newestAcrossReplicas(listings);
  }

  /** Asks every replica at once; those that cannot be reached are left out, and none answering is an error. */
  private async fromEach<T>(ask: (client: DfsClient, replica: ReplicaAddress) => Promise<T>): Promise<T[]> {
    const answers = await Promise.allSettled(this.options.replicas.map((replica) => ask(this.clientOf(replica), replica)));
    const answered = answers.flatMap((answer) => (answer.status === 'fulfilled' ? [answer.value] : []));
    this.lastReach = { answered: answered.length, of: this.options.replicas.length };
    const refusal = answers.find((answer): answer is PromiseRejectedResult => answer.status === 'rejected' && !unavailable(answer.reason));
    if (refusal) {
      // A replica that answers with a refusal (a key it does not accept) says more than silence does.
      throw refusal.reason;
    }
    if (answered.length === 0) {
      throw new DfsError('UNREACHABLE', `no replica answers either (${this.describe()})`);
    }
    return answered;
  }

  private clientOf(replica: ReplicaAddress, timeouts = this.options.timeouts ?? REPLICA_READ_TIMEOUTS): DfsClient {
    return new DfsClient({
      host: replica.host,
      port: replica.port,
      clientId: this.options.clientId,
      security: this.options.security,
      timeouts,
      connectTimeoutMs: this.options.connectTimeoutMs,
      failoverWaitMs: 0,
    });
  }
}

/** Cannot be reached, stays silent, or drops the connection: left out. A refusal (a key it does not accept) is an answer. */
function unavailable(error: unknown): boolean {
  return error instanceof DfsError && (error.code === 'UNREACHABLE' || error.code === 'TIMEOUT' || error.code === 'PROTOCOL');
}
