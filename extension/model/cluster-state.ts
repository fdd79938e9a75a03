import type { ClusterStatus, NodeStatus } from '../../server/protocol/records';
import { counted, formatAge, formatBytes } from './format';

export type ClusterState =
  | { kind: 'unknown' }
  | { kind: 'offline'; address: string; reason: string; code?: string }
  /** Something answers, but it is a replica, not a primary: the port setting is likely wrong. */
  | { kind: 'notPrimary'; address: string; status: NodeStatus }
  | { kind: 'online'; address: string; status: ClusterStatus }
  /** No primary answers but replicas do: files are read from them, nothing can be written. */
  | { kind: 'readOnly'; address: string; reason: string; replicasUp: number; replicas: number };

/** What the tree says above its files while no primary answers. */
export function readOnlyMessage(state: Extract<ClusterState, { kind: 'readOnly' }>): string {
  return `Read-only: no primary answers (${state.address}). Files are read from ${state.replicasUp} of ${state.replicas} replicas until a primary is back; uploads and deletes fail until then.`;
}

export function stateFromStatus(address: string, status: NodeStatus): ClusterState {
  return status.role === 'primary' ? { kind: 'online', address, status } : { kind: 'notPrimary', address, status };
}

export interface StatusBarView {
  text: string;
  tooltip: string;
  /** Draws the eye when a copy is missing or nothing answers. */
  warning: boolean;
}

/** `DFS 3/3`: replicas that answer the primary, out of those configured. */
export function statusBarView(state: ClusterState): StatusBarView {
  switch (state.kind) {
    case 'unknown':
      return { text: '$(sync~spin) DFS', tooltip: 'DFS: checking the cluster…', warning: false };
    case 'offline':
      return state.code === 'AUTH'
        ? { text: '$(lock) DFS needs a key', tooltip: `DFS: the cluster at ${state.address} refused us (${state.reason}). Run DFS: Set Client Key with the key you were issued, or DFS: Set Cluster Secret on a member's machine (Forget them if it runs without authentication).`, warning: true }
        : { text: '$(debug-disconnect) DFS offline', tooltip: `DFS: nothing answers at ${state.address} (${state.reason}). Click for details.`, warning: true };
    case 'readOnly':
      return {
        text: '$(lock) DFS read-only',
        tooltip: `DFS: no primary answers at ${state.address} (${state.reason}). Files are read from ${state.replicasUp} of ${state.replicas} replicas; the cluster is read-only until a primary is back. Click for details.`,
        warning: true,
      };
    case 'notPrimary':
      return { text: '$(warning) DFS not a primary', tooltip: `DFS: ${state.address} is a ${state.status.role}, not a primary. Check the dfs.port setting.`, warning: true };
    case 'online': {
      const replicas = state.status.replicas;
      const up = replicas.filter((replica) => replica.reachable).length;
      const behind = replicas.reduce((sum, replica) => sum + replica.filesBehind, 0);
      return {
        text: `$(database) DFS ${up}/${replicas.length}`,
        tooltip: `DFS primary ${state.address}: ${up} of ${replicas.length} replicas up${behind > 0 ? `, ${counted(behind, 'file copy', 'file copies')} behind` : ''}.${leadershipLine(state.status)} Click for details.`,
        warning: up < replicas.length || behind > 0,
      };
    }
  }
}

export interface StatusReport {
  headline: string;
  details: string[];
}

/** What Show Cluster Status tells: one line per node, with the files each replica lacks. */
export function statusReport(state: ClusterState, nowMs = Date.now()): StatusReport {
  switch (state.kind) {
    case 'unknown':
      return { headline: 'DFS: the cluster has not been checked yet.', details: [] };
    case 'offline':
      if (state.code === 'AUTH') {
        return {
          headline: `DFS: the cluster at ${state.address} refused this window.`,
          details: [
            state.reason,
            'Run "DFS: Set Client Key" with the key an administrator issued you ("dfs key issue --client ID"), or "DFS: Set Cluster Secret" with the secret the servers were started with. If they run without authentication, Forget the key and the secret.',
          ],
        };
      }
      return {
        headline: `DFS: no cluster answers at ${state.address}.`,
        details: [state.reason, 'Run "DFS: Start Cluster" to start one here, or change dfs.host / dfs.port (dfs.servers for several primaries).'],
      };
    case 'readOnly':
      return {
        headline: `DFS: read-only: no primary answers, ${state.replicasUp} of ${state.replicas} replicas do.`,
        details: [
          `Primaries ${state.address}: ${state.reason}`,
          'Files are listed and opened from the replicas, each at the newest generation any of them holds. Uploads and deletes fail until a primary is back: start one (DFS: Start Cluster in the window that runs the cluster), or check dfs.servers.',
        ],
      };
    case 'notPrimary':
      return { headline: `DFS: ${state.address} is a ${state.status.role}, not a primary.`, details: ['Point dfs.port at the primary.'] };
    case 'online': {
      const status = state.status;
      const up = status.replicas.filter((replica) => replica.reachable).length;
      return {
        headline: `DFS: primary ${state.address} is up, ${up} of ${status.replicas.length} replicas up.`,
        details: [
          `Primary ${status.address}: up ${formatDuration(status.uptimeMs)}, ${counted(status.files, 'file')}, ${formatBytes(status.bytes)}, write quorum ${status.writeQuorum}`,
          ...(status.epoch ? [leadershipLine(status).trim()] : []),
          ...status.replicas.map(
            (replica) =>
              `Replica ${replica.id} ${replica.address}: ${replica.reachable ? 'up' : 'DOWN'}, ${counted(replica.filesBehind, 'file')} behind` +
              (replica.lastSyncMs !== undefined ? `, last sync ${formatAge(replica.lastSyncMs, nowMs)}` : '') +
              (replica.repairs > 0 ? `, ${replica.repairs} repaired` : '') +
              (replica.lastError && !replica.reachable ? ` (${replica.lastError})` : ''),
          ),
        ],
      };
    }
  }
}

function formatDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) {
    return `${seconds} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min`;
  }
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** With primaries elected through etcd: who leads, since when, and who stands by. Empty for a lone primary. */
function leadershipLine(status: ClusterStatus): string {
  if (!status.epoch) {
    return '';
  }
  const since = status.leaderSinceMs ? ` since ${new Date(status.leaderSinceMs).toLocaleString()}` : '';
  const standbys = status.standbys && status.standbys.length > 0 ? `standing by: ${status.standbys.join(', ')}` : 'no standby primary';
  return ` Leader ${status.leader} (epoch ${status.epoch})${since}; ${standbys}.`;
}
