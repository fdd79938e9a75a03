import * as path from 'path';
import { WriteQuorum, parseWriteQuorum, replicasRequired } from '../../server/config/cluster-layout';
import { HostPort, parseAddressList } from '../../server/client/primary-addresses';
import { defaultClientId } from '../../server/config/settings';
import { DfsError, validateClientId } from '../../server/protocol';

/** The `dfs.*` settings, checked and with their defaults filled in. */
export interface ExtensionSettings {
  host: string;
  port: number;
  /** Every primary this window talks to, the leader and its standbys: dfs.servers, or dfs.host:dfs.port when that is empty. */
  servers: HostPort[];
  clientId: string;
  /** False when dfs.clientId is empty and clientId is the machine's default (a client key then names it). */
  clientIdFromSettings: boolean;
  replicas: number;
  basePort: number;
  dataDir: string;
  writeQuorum: WriteQuorum;
  /** TLS files, absolute paths: the CA this window's client trusts; the certificate and key the servers it starts present. */
  tlsCaFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** The `dfs.clusters` entry this window connects to instead of dfs.host/dfs.port/dfs.servers (see cluster-choice.ts); undefined: those. */
  cluster?: string;
}

export const SETTING_KEYS = ['host', 'port', 'servers', 'clientId', 'replicas', 'basePort', 'dataDir', 'writeQuorum', 'tlsCaFile', 'tlsCertFile', 'tlsKeyFile', 'clusters'] as const;

/**
 * Reads settings through `get` (VS Code's configuration in the extension, a map in
 * tests). Empty client id and data directory mean "use the default", because a
 * machine-specific default cannot be written into package.json.
 */
export function readSettings(get: (key: (typeof SETTING_KEYS)[number]) => unknown, defaultDataDir: string): ExtensionSettings {
  const host = stringOr(get('host'), '127.0.0.1').trim();
  const port = wholeNumber(get('port'), 8000, 'dfs.port', 1, 65535);
  const replicas = wholeNumber(get('replicas'), 3, 'dfs.replicas', 0, 64);
  const basePort = wholeNumber(get('basePort'), 9000, 'dfs.basePort', 1, 65535);
  const clientIdText = stringOr(get('clientId'), '').trim();
  let clientId: string;
  try {
    clientId = validateClientId(clientIdText || defaultClientId());
  } catch (error) {
    throw new DfsError('BAD_CLIENT_ID', `dfs.clientId: ${(error as Error).message}`);
  }
  const dataDirText = stringOr(get('dataDir'), '').trim();
  const rawQuorum = get('writeQuorum');
  let writeQuorum: WriteQuorum;
  try {
    writeQuorum = parseWriteQuorum(rawQuorum === undefined || rawQuorum === '' ? 'all' : rawQuorum);
    replicasRequired(writeQuorum, replicas);
  } catch (error) {
    throw new DfsError('BAD_HEADER', `dfs.writeQuorum: ${(error as Error).message}`);
  }
  const file = (key: 'tlsCaFile' | 'tlsCertFile' | 'tlsKeyFile'): string | undefined => {
    const text = stringOr(get(key), '').trim();
    return text ? path.resolve(text) : undefined;
  };
  const tls = { tlsCaFile: file('tlsCaFile'), tlsCertFile: file('tlsCertFile'), tlsKeyFile: file('tlsKeyFile') };
  if (Boolean(tls.tlsCertFile) !== Boolean(tls.tlsKeyFile)) {
    throw new DfsError('BAD_HEADER', 'dfs.tlsCertFile and dfs.tlsKeyFile go together: set both for the servers Start Cluster starts to use TLS, or neither');
  }
  if (tls.tlsCertFile && !tls.tlsCaFile) {
    throw new DfsError('BAD_HEADER', 'dfs.tlsCertFile also needs dfs.tlsCaFile: the CA that signed the servers\' certificates, so the primary and this window can check them');
  }
  if (basePort + replicas - 1 > 65535) {
    throw new DfsError('BAD_HEADER', `dfs.basePort ${basePort} with ${replicas} replicas runs past port 65535`);
  }
  if (replicas > 0 && port >= basePort && port < basePort + replicas) {
    throw new DfsError('BAD_HEADER', `dfs.port ${port} falls inside the replica ports ${basePort}..${basePort + replicas - 1}; choose another port or base port`);
  }
  return {
    host: host || '127.0.0.1',
    port,
    servers: readServers(get('servers'), { host: host || '127.0.0.1', port }),
    clientId,
    clientIdFromSettings: clientIdText !== '',
    replicas,
    basePort,
    dataDir: path.resolve(dataDirText || defaultDataDir),
    writeQuorum,
    ...tls,
  };
}

function readServers(value: unknown, fallback: HostPort): HostPort[] {
  if (value === undefined || value === null || (Array.isArray(value) && value.length === 0) || value === '') {
    return [fallback];
  }
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new DfsError('BAD_HEADER', `dfs.servers is ${JSON.stringify(value)}; expected a list of "HOST:PORT" strings (empty: dfs.host and dfs.port)`);
  }
  try {
    return parseAddressList(value as string[]);
  } catch (error) {
    throw new DfsError('BAD_HEADER', `dfs.servers: ${(error as Error).message}; expected a list of "HOST:PORT" strings`);
  }
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

function wholeNumber(value: unknown, fallback: number, key: string, min: number, max: number): number {
  if (value === undefined || value === null || value === '') {
    return fallback;
  }
  const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    throw new DfsError('BAD_HEADER', `${key} is ${JSON.stringify(value)}; expected a whole number from ${min} to ${max}`);
  }
  return number;
}
