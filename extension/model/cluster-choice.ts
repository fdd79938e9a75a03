import * as path from 'path';
import { HostPort, formatHostPort, parseAddressList } from '../../server/client/primary-addresses';
import { DfsError, validateClientId } from '../../server/protocol';
import type { ExtensionSettings } from './settings';

/** One entry of `dfs.clusters`: a named connection to a cluster that runs elsewhere (or here). */
export interface NamedCluster {
  name: string;
  /** Its primaries, the leader and its standbys. */
  servers: HostPort[];
  /** Whose files this window works on there; unset: dfs.clientId (or the client key's id). */
  clientId?: string;
  /** The CA its servers' certificates are signed by: set, the window uses TLS with it. Absolute. */
  tlsCaFile?: string;
  /** For reading from its replicas when no primary answers, and for the copies a file should have; unset: dfs.replicas / dfs.basePort. */
  replicas?: number;
  basePort?: number;
}

/** What the window connects to: the dfs.* settings as they are, or them with a named cluster's connection put in. */
export interface ConnectionChoice {
  settings: ExtensionSettings;
  clusters: NamedCluster[];
  /** The named cluster in use; undefined: dfs.host/dfs.port/dfs.servers. */
  current?: NamedCluster;
  /** Set when the remembered choice is no longer in dfs.clusters: what happened, for the log. */
  note?: string;
}

const NAME = /^[^\u0000-\u001f\u007f]{1,64}$/;

/**
 * Checks `dfs.clusters` (an array of `{ name, servers, clientId?, tlsCaFile?, replicas?,
 * basePort? }`), saying which entry and field is wrong. Names are unique: they key the
 * remembered choice and each cluster's client key in secret storage.
 */
export function readClusters(value: unknown): NamedCluster[] {
  if (value === undefined || value === null || value === '') {
    return [];
  }
  if (!Array.isArray(value)) {
    throw new DfsError('BAD_HEADER', `dfs.clusters is ${JSON.stringify(value)}; expected a list of { "name": ..., "servers": ["HOST:PORT", ...] }`);
  }
  const seen = new Set<string>();
  return value.map((entry: unknown, index) => {
    const where = `dfs.clusters[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new DfsError('BAD_HEADER', `${where} is ${JSON.stringify(entry)}; expected { "name": ..., "servers": ["HOST:PORT", ...] }`);
    }
    const fields = entry as Record<string, unknown>;
    const unknown = Object.keys(fields).filter((key) => !['name', 'servers', 'clientId', 'tlsCaFile', 'replicas', 'basePort'].includes(key));
    if (unknown.length > 0) {
      throw new DfsError('BAD_HEADER', `${where} has ${unknown.map((key) => `"${key}"`).join(', ')}, which DFS does not know; a cluster takes name, servers, clientId, tlsCaFile, replicas and basePort`);
    }
    const name = typeof fields.name === 'string' ? fields.name.trim() : '';
    if (!NAME.test(name)) {
      throw new DfsError('BAD_HEADER', `${where}.name is ${JSON.stringify(fields.name)}; expected a name of 1 to 64 characters`);
    }
    if (seen.has(name)) {
      throw new DfsError('BAD_HEADER', `${where}.name "${name}" is used by an earlier entry too; each cluster needs its own name`);
    }
    seen.add(name);
    const at = `${where} ("${name}")`;
    const servers = fields.servers;
    if (!Array.isArray(servers) || servers.length === 0 || !servers.every((server) => typeof server === 'string')) {
      throw new DfsError('BAD_HEADER', `${at}.servers is ${JSON.stringify(servers)}; expected a list of "HOST:PORT" strings, at least one`);
    }
    const cluster: NamedCluster = { name, servers: wrap(`${at}.servers`, () => parseAddressList(servers as string[])) };
    if (fields.clientId !== undefined && fields.clientId !== '') {
      cluster.clientId = wrap(`${at}.clientId`, () => validateClientId(String(fields.clientId)));
    }
    if (typeof fields.tlsCaFile === 'string' && fields.tlsCaFile.trim() !== '') {
      cluster.tlsCaFile = path.resolve(fields.tlsCaFile.trim());
    } else if (fields.tlsCaFile !== undefined && fields.tlsCaFile !== '') {
      throw new DfsError('BAD_HEADER', `${at}.tlsCaFile is ${JSON.stringify(fields.tlsCaFile)}; expected the path of a PEM file`);
    }
    if (fields.replicas !== undefined) {
      cluster.replicas = whole(`${at}.replicas`, fields.replicas, 0, 64);
    }
    if (fields.basePort !== undefined) {
      cluster.basePort = whole(`${at}.basePort`, fields.basePort, 1, 65535);
    }
    return cluster;
  });
}

/**
 * The connection in effect: the remembered named cluster when it is still configured,
 * else the dfs.* settings unchanged (so with dfs.clusters empty nothing differs from
 * before). A named cluster brings its own servers, client id and TLS CA; what Start
 * Cluster uses (dfs.host, dfs.port, data folder, server certificates) stays the dfs.*
 * settings', since Start Cluster runs only that cluster.
 */
export function resolveConnection(base: ExtensionSettings, clusters: NamedCluster[], remembered: string | undefined): ConnectionChoice {
  if (remembered === undefined) {
    return { settings: base, clusters };
  }
  const current = clusters.find((cluster) => cluster.name === remembered);
  if (!current) {
    return { settings: base, clusters, note: `the cluster "${remembered}" chosen earlier is no longer in dfs.clusters; using dfs.host/dfs.port/dfs.servers` };
  }
  return {
    settings: {
      ...base,
      servers: current.servers,
      clientId: current.clientId ?? base.clientId,
      clientIdFromSettings: current.clientId !== undefined || base.clientIdFromSettings,
      tlsCaFile: current.tlsCaFile,
      replicas: current.replicas ?? base.replicas,
      basePort: current.basePort ?? base.basePort,
      cluster: current.name,
    },
    clusters,
    current,
  };
}

/** Where a cluster's client key is kept in secret storage; the dfs.* connection keeps the key it always had. */
export function clientKeyStorageKey(clusterName: string | undefined): string {
  return clusterName === undefined ? 'dfs.clientKey' : `dfs.clientKey:${clusterName}`;
}

/** How the quick pick names the dfs.host / dfs.port / dfs.servers connection. */
export const DEFAULT_CONNECTION = 'Default';

export function describeServers(servers: readonly HostPort[]): string {
  return servers.map(formatHostPort).join(', ');
}

function wrap<T>(where: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    throw new DfsError('BAD_HEADER', `${where}: ${(error as Error).message}`);
  }
}

function whole(where: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new DfsError('BAD_HEADER', `${where} is ${JSON.stringify(value)}; expected a whole number from ${min} to ${max}`);
  }
  return value;
}
