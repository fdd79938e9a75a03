import { EventEmitter } from 'events';
import { NoPrimaryError } from '../../server/client/failover';
import type { ReplicaReach } from '../../server/client/replica-reads';
import { NodeStatus, toDfsError } from '../../server/protocol';
import { ClusterState, stateFromStatus } from '../model/cluster-state';

export interface StatusSource {
  /** The primary that answered last. */
  readonly address: string;
  /** Every configured primary, for saying which did not answer. */
  readonly addresses?: string;
  status(): Promise<NodeStatus>;
  /** When no primary answers: how many replicas do (throws when none does). */
  replicasAnswering?(): Promise<ReplicaReach>;
}

/**
 * Knows whether the configured cluster answers. Refreshes that overlap share one
 * request, so a burst of events costs one round trip. Emits 'changed' (ClusterState)
 * only when the state actually changes, so listeners do not redraw for nothing, and
 * 'checked' (ClusterState) after every check, for views that show what ticks (last sync).
 */
export class ClusterMonitor extends EventEmitter {
  private current: ClusterState = { kind: 'unknown' };
  private inFlight: Promise<ClusterState> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private source: () => StatusSource) {
    super();
  }

  get state(): ClusterState {
    return this.current;
  }

  refresh(): Promise<ClusterState> {
    this.inFlight ??= this.check().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  /**
   * After a change of settings or secret, a check already under way asked the old
   * question: wait for it, then ask again, instead of sharing its stale answer.
   */
  refreshAfterChange(): Promise<ClusterState> {
    const previous = this.inFlight;
    if (!previous) {
      return this.refresh();
    }
    const next = previous.then(
      () => this.check(),
      () => this.check(),
    );
    this.inFlight = next.finally(() => {
      if (this.inFlight === next) {
        this.inFlight = undefined;
      }
    });
    return next;
  }

  /** Polls in the background; a timer that never keeps the process alive on its own. */
  poll(intervalMs: number, onError: (error: unknown) => void): void {
    this.stopPolling();
    this.timer = setInterval(() => this.refresh().catch(onError), intervalMs);
    this.timer.unref();
  }

  stopPolling(): void {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private async check(): Promise<ClusterState> {
    const source = this.source();
    let next: ClusterState;
    try {
      const status = await source.status();
      next = stateFromStatus(source.address, status);
    } catch (error) {
      const failure = toDfsError(error, 'UNREACHABLE');
      next = { kind: 'offline', address: source.addresses ?? source.address, reason: failure.message, code: failure.code };
      if (error instanceof NoPrimaryError && source.replicasAnswering) {
        const reach = await source.replicasAnswering().catch(() => undefined);
        if (reach) {
          next = { kind: 'readOnly', address: source.addresses ?? source.address, reason: error.reasons.join('; '), replicasUp: reach.answered, replicas: reach.of };
        }
      }
    }
    const changed = JSON.stringify(summaryOf(next)) !== JSON.stringify(summaryOf(this.current));
    this.current = next;
    if (changed) {
      this.emit('changed', next);
    }
    this.emit('checked', next);
    return next;
  }
}

/** Leaves out counters that tick on their own (uptime), which would make every poll a change. */
function summaryOf(state: ClusterState): unknown {
  if (state.kind !== 'online') {
    return state.kind === 'offline' ? { kind: state.kind, address: state.address, code: state.code } : state.kind === 'readOnly' ? { ...state, reason: undefined } : state;
  }
  const { uptimeMs: _uptime, ...status } = state.status;
  return { kind: state.kind, address: state.address, status: { ...status, replicas: status.replicas.map(({ lastSyncMs: _sync, ...replica }) => replica) } };
}
