import type { Writable } from 'stream';
import { ClientRecord, DfsError, FileRecord, VersionInfo } from '../protocol';
import type { DfsClient, DownloadOptions, DownloadResult } from './dfs-client';
import { NoPrimaryError } from './failover';
import type { ReplicaReads } from './replica-reads';

/** Said once when reads fall back to the replicas. */
export interface ReadOnlyNotice {
  primaries: string;
  replicasAnswering: number;
  replicas: number;
  text: string;
}

/**
 * Reads through the primaries, or, when none answers at all, from the replicas, so files
 * stay readable while no primary leads. `onReadOnly` hears of it on every fallback;
 * writes are not offered here: they go to the primaries and fail there with
 * NoPrimaryError, which says what to do.
 */
export class ReadOnlyFallback {
  constructor(
    private readonly primary: DfsClient,
    private readonly replicas: ReplicaReads,
    private readonly onReadOnly: (notice: ReadOnlyNotice) => void,
  ) {}

  files(clientId?: string): Promise<FileRecord[]> {
    return this.read(
      () => this.primary.files(clientId),
      () => this.replicas.files(clientId),
    );
  }

  clients(): Promise<ClientRecord[]> {
    return this.read(
      () => this.primary.clients(),
      () => this.replicas.clients(),
    );
  }

  versions(name: string, clientId?: string): Promise<VersionInfo[]> {
    return this.read(
      () => this.primary.versions(name, clientId),
      () => this.replicas.versions(name, clientId),
    );
  }

  download(name: string, sink: Writable, options: DownloadOptions = {}): Promise<DownloadResult> {
    return this.read(
      () => this.primary.download(name, sink, options),
      () => this.replicas.download(name, sink, options),
    );
  }

  downloadToFile(name: string, destination: string, options: DownloadOptions = {}): Promise<DownloadResult> {
    return this.read(
      () => this.primary.downloadToFile(name, destination, options),
      () => this.replicas.downloadToFile(name, destination, options),
    );
  }

  private async read<T>(fromPrimary: () => Promise<T>, fromReplicas: () => Promise<T>): Promise<T> {
    try {
      return await fromPrimary();
    } catch (error) {
      if (!(error instanceof NoPrimaryError)) {
        throw error;
      }
      const result = await fromReplicas().catch((replicaError: unknown) => {
        if (replicaError instanceof DfsError && replicaError.code === 'UNREACHABLE') {
          throw new DfsError(
            'UNREACHABLE',
            `no primary answers (${error.reasons.join('; ')}) and ${replicaError.message}: the cluster is down. Start it ("dfs cluster", or DFS: Start Cluster), or check the addresses (--server or dfs.servers for the primaries; --replica, --base-port and --replicas, or dfs.basePort and dfs.replicas, for the replicas).`,
          );
        }
        throw replicaError;
      });
      const reach = this.replicas.lastReach;
      const primaries = this.primary.primaries.describe();
      this.onReadOnly({
        primaries,
        replicasAnswering: reach.answered,
        replicas: reach.of,
        text: `no primary answers (${primaries}): read from the replicas (${reach.answered} of ${reach.of} answer), newest generation of each file. The cluster is read-only until a primary is back.`,
      });
      return result;
    }
  }
}
