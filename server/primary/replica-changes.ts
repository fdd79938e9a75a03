import type { Connection } from '../net/connection';
import { DfsError } from '../protocol';
import type { PrimaryContext } from './primary-context';
import type { ReplicaLink } from './replica-link';

/** What the replicas made of a change: how many applied it, and why the others did not. */
export interface ChangeOutcome {
  done: number;
  failed: string[];
  behind: number[];
}

/**
 * Connections to the replicas for a change that carries no bytes (a delete, a
 * rename), opened before the change is given a generation: fewer reachable than the
 * write quorum and the change is refused with nothing changed.
 */
export class ReplicaChanges {
  private constructor(
    private readonly primary: PrimaryContext,
    private readonly connections: Map<number, Connection>,
  ) {}

  /** Opens one connection per replica; throws QUORUM (naming `what`, "delete x") when too few answer. */
  static async open(primary: PrimaryContext, what: string, nothingDone: string): Promise<ReplicaChanges> {
    const required = primary.replicasRequired();
    const opened = await Promise.allSettled(primary.links.map((link) => link.openChange()));
    const connections = new Map<number, Connection>();
    const unreachable: string[] = [];
    opened.forEach((result, index) => {
      if (result.status === 'fulfilled') {
        connections.set(index, result.value);
      } else {
        unreachable.push(`${primary.links[index].label}: ${(result.reason as Error).message}`);
      }
    });
    const changes = new ReplicaChanges(primary, connections);
    if (connections.size < required) {
      changes.close();
      throw new DfsError(
        'QUORUM',
        `cannot ${what}: ${connections.size} of ${primary.links.length} replicas reachable, ${required} required (${unreachable.join('; ')}). ${nothingDone} Start the missing replicas or lower the write quorum.`,
      );
    }
    return changes;
  }

  /** The change's generation; on failure the connections are closed. */
  async issue(): Promise<number> {
    try {
      return await this.primary.issuer.issue();
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** Sends the change to every replica reachable at open(); the others count as failed. */
  send(change: (link: ReplicaLink, conn: Connection) => Promise<void>): Promise<PromiseSettledResult<void>[]> {
    return Promise.allSettled(
      this.primary.links.map((link, index) => {
        const conn = this.connections.get(index);
        return conn ? change(link, conn) : Promise.reject(new Error('unreachable'));
      }),
    );
  }

  /** Notes which replicas are in step for the names changed, and which are behind (caught up later). */
  settle(results: readonly PromiseSettledResult<void>[], keys: readonly string[]): ChangeOutcome {
    const failed: string[] = [];
    const behind: number[] = [];
    results.forEach((result, index) => {
      const link = this.primary.links[index];
      if (result.status === 'fulfilled') {
        keys.forEach((key) => link.caughtUp(key));
      } else {
        keys.forEach((key) => link.markBehind(key));
        failed.push(`${link.label}: ${(result.reason as Error).message}`);
        behind.push(link.address.id);
      }
    });
    const done = results.filter((result) => result.status === 'fulfilled').length;
    this.primary.afterWrite(done < this.primary.links.length);
    return { done, failed, behind };
  }

  close(): void {
    this.connections.forEach((conn) => conn.destroy());
  }
}
