import { DfsError } from '../protocol';

/** The report's fixed values: three replicas on a contiguous range from 9000. */
export const DEFAULT_REPLICAS = 3;
export const DEFAULT_BASE_PORT = 9000;
export const DEFAULT_PRIMARY_PORT = 8000;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_DATA_DIR = 'dfs-data';
export const PRIMARY_ROOT = 'servidor';

export interface ReplicaAddress {
  id: number;
  host: string;
  port: number;
}

/** NUM_REPLICAS = 3 and BASE_PORT = 9000 give 9000, 9001, 9002. */
export function replicaPorts(basePort: number, replicas: number): number[] {
  return Array.from({ length: replicas }, (_, index) => basePort + index);
}

/** The report's rule: id = port - base port + 1, for a port on the configured list only. */
export function replicaIdForPort(port: number, basePort: number, replicas: number): number {
  const ports = replicaPorts(basePort, replicas);
  if (!ports.includes(port)) {
    const range = ports.length === 0 ? 'none (0 replicas configured)' : `${ports[0]}-${ports[ports.length - 1]}`;
    throw new DfsError(
      'BAD_HEADER',
      `port ${port} is not a configured replica port; with ${replicas} replicas from base port ${basePort} the allowed ports are ${range}. Start the replica on one of them, or change --replicas / --base-port.`,
    );
  }
  return port - basePort + 1;
}

export function replicaRoot(id: number): string {
  return `replica${id}`;
}

/** Replica addresses the primary writes to: the local contiguous range, or the hosts given with --replica. */
export function replicaAddresses(options: { host: string; basePort: number; replicas: number; remote?: readonly string[] }): ReplicaAddress[] {
  if (options.remote && options.remote.length > 0) {
    return options.remote.map((address, index) => ({ id: index + 1, ...parseHostPort(address) }));
  }
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  return replicaPorts(options.basePort, options.replicas).map((port) => ({ id: port - options.basePort + 1, host, port }));
}

export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(text.trim());
  if (!match) {
    throw new DfsError('BAD_HEADER', `${JSON.stringify(text)} is not HOST:PORT`);
  }
  const port = Number(match[2]);
  if (port < 1 || port > 65535) {
    throw new DfsError('BAD_HEADER', `port ${port} in ${JSON.stringify(text)} is out of range`);
  }
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

export type WriteQuorum = 'all' | 'majority' | number;

/** How an upload reaches the replicas: from the primary to each (fan-out), or through them in a chain (pipeline); auto picks by where they are. */
export type ReplicationMode = 'fanout' | 'pipeline' | 'auto';
export const REPLICATION_MODES: readonly ReplicationMode[] = ['fanout', 'pipeline', 'auto'];

export function parseReplicationMode(value: unknown): ReplicationMode {
  if (typeof value === 'string' && (REPLICATION_MODES as readonly string[]).includes(value)) {
    return value as ReplicationMode;
  }
  throw new DfsError('BAD_HEADER', `replication must be one of ${REPLICATION_MODES.join(', ')}, not ${JSON.stringify(value)}`);
}

export function parseWriteQuorum(value: unknown): WriteQuorum {
  if (value === 'all' || value === 'majority') {
    return value;
  }
  const number = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(number) || number < 0) {
    throw new DfsError('BAD_HEADER', `write quorum ${JSON.stringify(value)} is not "all", "majority" or a whole number of replicas`);
  }
  return number;
}

/** How many replicas must hold a write before it is acknowledged. */
export function replicasRequired(quorum: WriteQuorum, replicaCount: number): number {
  if (quorum === 'all') {
    return replicaCount;
  }
  if (quorum === 'majority') {
    return Math.min(replicaCount, Math.floor(replicaCount / 2) + 1);
  }
  if (quorum > replicaCount) {
    throw new DfsError('BAD_HEADER', `write quorum ${quorum} is more than the ${replicaCount} configured replicas`);
  }
  return quorum;
}
