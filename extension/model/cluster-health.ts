import type { ClusterStatus, ReplicaStatus } from '../../server/protocol/records';
import type { ClusterState } from './cluster-state';
import { formatAge, formatBytes } from './format';

/** Menus in package.json match these through `viewItem == ...`; the manifest test keeps them in step. */
export const ServerContextValue = {
  /** Started by this window and running: Restart and Stop. */
  runningHere: 'dfsServerRunningHere',
  /** Started by this window, then exited (a crash, or Stop): Restart. */
  stoppedHere: 'dfsServerStoppedHere',
  /** Not started by this window: nothing to do from here. */
  external: 'dfsServerExternal',
} as const;

export type ServerContext = (typeof ServerContextValue)[keyof typeof ServerContextValue];
export type ServerRole = 'primary' | 'standby' | 'replica';
/** `behind`: answers but lacks files (or the primary is still recovering). */
export type ServerHealth = 'up' | 'behind' | 'down' | 'unknown';

/** Whether this window started the server on a port (its process registry knows). */
export type StartedHere = 'running' | 'stopped' | undefined;

export interface ServerNode {
  kind: 'server';
  id: string;
  role: ServerRole;
  /** Replica id (1-based); undefined for primaries. */
  replicaId?: number;
  /** The process registry's key (`replica:9001`), when this window started it. */
  launchKey?: string;
  label: string;
  description: string;
  tooltip: string;
  health: ServerHealth;
  contextValue: ServerContext;
}

export interface NoteNode {
  kind: 'note';
  id: string;
  label: string;
  tooltip: string;
}

export type ClusterViewNode = ServerNode | NoteNode;

export interface ClusterLayout {
  /** Every configured primary, `HOST:PORT`. */
  primaries: readonly string[];
  /** Replica n listens on basePort + n - 1: finds a replica's port when STATUS hides addresses (client keys). */
  basePort: number;
  /** Which servers this window started; undefined when the current connection is not the one Start Cluster runs. */
  startedHere?: (role: 'primary' | 'replica', port: number) => StartedHere;
  /** Replica ports this window started, for when no primary answers to list them. */
  replicaPortsHere?: readonly number[];
}

/**
 * The Cluster view: the primary (the leader and its standbys when elected through etcd)
 * and every replica, each up or down, how many files it lacks and when it was last
 * fully in step. An empty list (nothing answers, nothing started here) lets VS Code
 * show the view's welcome content instead.
 */
export function clusterNodes(state: ClusterState, layout: ClusterLayout, nowMs: number): ClusterViewNode[] {
  switch (state.kind) {
    case 'unknown':
      return [{ kind: 'note', id: 'note:checking', label: 'Checking the cluster…', tooltip: 'The first status check is under way.' }];
    case 'notPrimary':
      return [{ kind: 'note', id: 'note:not-primary', label: `${state.address} is a ${state.status.role}, not a primary`, tooltip: 'Point dfs.port (or dfs.servers) at the primary.' }];
    case 'offline':
    case 'readOnly': {
      const here = layout.replicaPortsHere ?? [];
      const anyHere = here.length > 0 || layout.primaries.some((address) => startedHere(layout, 'primary', address) !== undefined);
      if (state.kind === 'offline' && !anyHere) {
        return [];
      }
      const why = state.kind === 'offline' && state.code === 'AUTH' ? 'refuses this window' : 'does not answer';
      const primaries = layout.primaries.map((address) => downPrimary(address, why, state.reason, layout));
      const note: NoteNode[] =
        state.kind === 'readOnly'
          ? [{ kind: 'note', id: 'note:read-only', label: `Read-only: ${state.replicasUp} of ${state.replicas} replicas answer`, tooltip: 'No primary answers: files are read from the replicas until a primary is back.' }]
          : [];
      // Without a primary nobody reports on the replicas; those started here can still be restarted or stopped.
      const replicas = here.map((port) => unreportedReplica(port, layout));
      return [...primaries, ...note, ...replicas];
    }
    case 'online':
      return [...primaryNodes(state.address, state.status, layout), ...state.status.replicas.map((replica) => replicaNode(replica, layout, nowMs))];
  }
}

/** Down replicas, split by whether this window can restart them. */
export interface DownReplicas {
  restartable: ServerNode[];
  elsewhere: ServerNode[];
}

export function downReplicas(nodes: readonly ClusterViewNode[]): DownReplicas {
  const down = nodes.filter((node): node is ServerNode => node.kind === 'server' && node.role === 'replica' && node.health === 'down');
  return {
    restartable: down.filter((node) => node.contextValue !== ServerContextValue.external && node.launchKey),
    elsewhere: down.filter((node) => node.contextValue === ServerContextValue.external || !node.launchKey),
  };
}

/** The button that restarts the down replicas this window started. */
export function restartLabel(down: DownReplicas): string | undefined {
  return down.restartable.length === 0 ? undefined : down.restartable.length === 1 ? 'Restart Replica' : 'Restart Replicas';
}

/** What to do about down replicas, in VS Code's words: one sentence per kind; empty when none is down. */
export function downReplicaAdvice(down: DownReplicas): string {
  const parts: string[] = [];
  if (down.restartable.length > 0) {
    parts.push(`${listLabels(down.restartable)} ${down.restartable.length === 1 ? 'was' : 'were'} started from this window: Restart (here, or in the Cluster view) starts ${down.restartable.length === 1 ? 'it' : 'them'} again, and the primary catches ${down.restartable.length === 1 ? 'it' : 'them'} up.`);
  }
  if (down.elsewhere.length > 0) {
    parts.push(`${listLabels(down.elsewhere)} ${down.elsewhere.length === 1 ? 'was' : 'were'} not started from this window: start ${down.elsewhere.length === 1 ? 'it' : 'them'} where ${down.elsewhere.length === 1 ? 'it runs' : 'they run'}, then run DFS: Refresh.`);
  }
  if (parts.length > 0) {
    parts.push('To accept uploads with fewer replicas up, the primary needs a lower write quorum: for a cluster started here, lower dfs.writeQuorum (Open Settings) and Restart the primary.');
  }
  return parts.join(' ');
}

function listLabels(nodes: readonly ServerNode[]): string {
  const labels = nodes.map((node) => `Replica ${node.replicaId}`);
  return labels.length === 1 ? labels[0] : `${labels.slice(0, -1).join(', ')} and ${labels.at(-1)}`;
}

function primaryNodes(answered: string, status: ClusterStatus, layout: ClusterLayout): ServerNode[] {
  const elected = (status.epoch ?? 0) > 0;
  const leader = elected && status.leader ? status.leader : answered;
  const recovering = status.recovering !== undefined;
  const summary = `${status.files} file${status.files === 1 ? '' : 's'}, ${formatBytes(status.bytes)}`;
  const lead = withOrigin(
    {
      kind: 'server',
      id: `server:primary:${leader}`,
      role: 'primary',
      label: `primary ${leader}`,
      description: recovering ? 'recovering' : elected ? `up · leader, epoch ${status.epoch} · ${summary}` : `up · ${summary}`,
      tooltip: [
        `Primary ${leader}${elected ? ` (leader, epoch ${status.epoch}${status.leaderSinceMs ? `, since ${new Date(status.leaderSinceMs).toISOString()}` : ''})` : ''}`,
        recovering ? `Recovering: ${status.recovering}` : 'State: up',
        `Files: ${summary}; generation ${status.generation}`,
        `Write quorum: ${status.writeQuorum} replica${status.writeQuorum === 1 ? '' : 's'}`,
      ].join('\n'),
      health: recovering ? 'behind' : 'up',
      contextValue: ServerContextValue.external,
    },
    startedHere(layout, 'primary', leader),
    'primary',
    portOf(leader),
  );
  const standbys = (elected ? (status.standbys ?? []) : []).map((address) =>
    withOrigin(
      {
        kind: 'server',
        id: `server:standby:${address}`,
        role: 'standby',
        label: `standby ${address}`,
        description: 'standing by',
        tooltip: `Standby primary ${address}\nRegistered in etcd, ready to take over if the leader's lease lapses.`,
        health: 'up',
        contextValue: ServerContextValue.external,
      },
      startedHere(layout, 'primary', address),
      'primary',
      portOf(address),
    ),
  );
  return [lead, ...standbys];
}

function replicaNode(replica: ReplicaStatus, layout: ClusterLayout, nowMs: number): ServerNode {
  // A client key's STATUS leaves addresses out; the layout still says which port replica n has.
  const port = portOf(replica.address) ?? layout.basePort + replica.id - 1;
  const behind = `${replica.filesBehind} file${replica.filesBehind === 1 ? '' : 's'} behind`;
  const sync = replica.lastSyncMs !== undefined ? `synced ${formatAge(replica.lastSyncMs, nowMs)}` : 'never fully synced';
  const health: ServerHealth = !replica.reachable ? 'down' : replica.filesBehind > 0 ? 'behind' : 'up';
  const state = replica.reachable ? (replica.filesBehind > 0 ? `up · ${behind}` : 'up · in step') : `down · ${behind}`;
  return withOrigin(
    {
      kind: 'server',
      id: `server:replica:${replica.id}`,
      role: 'replica',
      replicaId: replica.id,
      label: `replica ${replica.id}`,
      description: `${state} · ${sync}`,
      tooltip: [
        `Replica ${replica.id}${replica.address ? ` ${replica.address}` : ''}`,
        `State: ${replica.reachable ? 'up' : 'down'}${!replica.reachable && replica.lastError ? ` (${replica.lastError})` : ''}`,
        `Files behind: ${replica.filesBehind}${replica.filesBehind > 0 ? ' (the primary copies them as soon as it answers)' : ''}`,
        `Last sync: ${replica.lastSyncMs !== undefined ? `${new Date(replica.lastSyncMs).toISOString()} (${formatAge(replica.lastSyncMs, nowMs)})` : 'never fully in step since the primary started'}`,
        ...(replica.repairs > 0 ? [`Repairs: ${replica.repairs}`] : []),
        ...(replica.failing ?? []).slice(0, 5).map((failing) => `Cannot take ${failing.name}: ${failing.reason}`),
      ].join('\n'),
      health,
      contextValue: ServerContextValue.external,
    },
    layout.startedHere?.('replica', port),
    'replica',
    port,
  );
}

function downPrimary(address: string, why: string, reason: string, layout: ClusterLayout): ServerNode {
  return withOrigin(
    {
      kind: 'server',
      id: `server:primary:${address}`,
      role: 'primary',
      label: `primary ${address}`,
      description: `down · ${why}`,
      tooltip: `Primary ${address}\nState: ${why} (${reason})`,
      health: 'down',
      contextValue: ServerContextValue.external,
    },
    startedHere(layout, 'primary', address),
    'primary',
    portOf(address),
  );
}

function unreportedReplica(port: number, layout: ClusterLayout): ServerNode {
  const id = port - layout.basePort + 1;
  const here = layout.startedHere?.('replica', port);
  return withOrigin(
    {
      kind: 'server',
      id: `server:replica:${id}`,
      role: 'replica',
      replicaId: id,
      label: `replica ${id}`,
      description: here === 'running' ? 'running · no primary reports on it' : 'down',
      tooltip: `Replica ${id} (port ${port})\nNo primary answers, so nothing reports whether it is in step.`,
      health: here === 'running' ? 'unknown' : 'down',
      contextValue: ServerContextValue.external,
    },
    here,
    'replica',
    port,
  );
}

/** Marks a node with whether this window started it, in its description, tooltip and menus. */
function withOrigin(node: ServerNode, here: StartedHere, role: 'primary' | 'replica', port: number | undefined): ServerNode {
  if (here === undefined || port === undefined) {
    return { ...node, description: `${node.description} · not started here`, tooltip: `${node.tooltip}\nNot started from this window: restart or stop it where it runs.` };
  }
  // Rows of this window's servers carry Restart and Stop; their description stays short for the side bar.
  return {
    ...node,
    launchKey: `${role}:${port}`,
    tooltip: `${node.tooltip}\n${here === 'running' ? 'Started from this window: Restart and Stop are in its row.' : 'Started from this window, and it has exited: Restart starts it again.'}`,
    contextValue: here === 'running' ? ServerContextValue.runningHere : ServerContextValue.stoppedHere,
  };
}

function startedHere(layout: ClusterLayout, role: 'primary' | 'replica', address: string): StartedHere {
  const port = portOf(address);
  return port === undefined ? undefined : layout.startedHere?.(role, port);
}

function portOf(address: string): number | undefined {
  const match = /:(\d+)$/.exec(address);
  return match ? Number(match[1]) : undefined;
}

/**
 * The primary's quorum refusal tells a command-line user what to run; in VS Code the
 * advice beside it (downReplicaAdvice) says what to click instead.
 */
export function inVsCodeWords(message: string): string {
  return message.replace(/ ?Start the missing replicas( \(dfs status shows which\))? or lower the write quorum\./g, '');
}
