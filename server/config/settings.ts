import { existsSync, readFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DfsError } from '../protocol';
import {
  DEFAULT_BASE_PORT,
  DEFAULT_DATA_DIR,
  DEFAULT_HOST,
  DEFAULT_PRIMARY_PORT,
  DEFAULT_REPLICAS,
  WriteQuorum,
  parseHostPort,
  parseWriteQuorum,
  ReplicationMode,
  parseReplicationMode,
} from './cluster-layout';
import { formatHostPort, parseAddressList } from '../client/primary-addresses';

export const CONFIG_FILE = 'dfs.config.json';

/** Every setting a flag or `dfs.config.json` can carry. Flags win over the file, the file over defaults. */
export interface Settings {
  host: string;
  port: number;
  replicas: number;
  basePort: number;
  dataDir: string;
  /** Replicas on other hosts, HOST:PORT each; when set they replace the local range. */
  replica: string[];
  writeQuorum: WriteQuorum;
  /** How uploads reach the replicas: fan-out (the default), a pipeline through them, or auto (a pipeline when any is on another host). */
  replication: ReplicationMode;
  /** For client commands: whose files, and which primaries (a leader and its standbys), HOST:PORT each. */
  client: string;
  server: string[];
  /** How long a client command keeps trying the primaries when none answers; unset: 8 s with several, one try with one. */
  failoverWaitMs?: number;
  maxFileSize: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  /** Seconds between catch-up passes and between scrubs (0 turns scrubbing off). */
  syncIntervalMs: number;
  scrubIntervalMs: number;
  /** A file holding the cluster secret (DFS_SECRET in the environment also works). */
  secretFile?: string;
  /** For clients: a file holding a client or admin key (DFS_KEY in the environment also works). */
  keyFile?: string;
  /** Allows listening beyond loopback without a secret. */
  insecure: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  /** Unset: what the open-file limit allows (see descriptor-limit.ts). */
  maxConnections?: number;
  /** Bytes of its disk a server keeps free: a file that would eat into them is refused with NO_SPACE before its bytes are sent. */
  minFree: number;
  /** Bytes each client may store in all (older versions included); unset means no quota. */
  quota?: number;
  /** Older versions the primary keeps of each file, on every copy; 0 keeps none. */
  keepVersions: number;
  /** Catalog journal lines beyond the last snapshot before a node writes a new snapshot; unset means the store's default (20,000). */
  compactAfterLines?: number;
  /** Files of at most this many bytes travel inside their catalog record (one shared journal sync for bytes and record); 0 turns it off; unset means 64 KiB. */
  inlineMax?: number;
  /** etcd client URLs: with them, several primaries share the replicas and one leads (dfs primary only). */
  etcd: string[];
  /** The key prefix the primaries of one cluster share in etcd. */
  etcdPrefix: string;
  /** Seconds a leader's lease lasts without a keep-alive: how soon a standby can take over. */
  leaseTtl: number;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * Room for what a node must still write when files no longer fit: catalog journal
 * lines (deletes too append one), the snapshot a compaction rewrites, folder entries.
 * A catalog of 100,000 versions snapshots to about 30 MiB.
 */
export const DEFAULT_MIN_FREE = 64 * MiB;

export function defaultSettings(): Settings {
  return {
    host: DEFAULT_HOST,
    port: DEFAULT_PRIMARY_PORT,
    replicas: DEFAULT_REPLICAS,
    basePort: DEFAULT_BASE_PORT,
    dataDir: DEFAULT_DATA_DIR,
    replica: [],
    writeQuorum: 'all',
    replication: 'fanout',
    client: defaultClientId(),
    server: [`${DEFAULT_HOST}:${DEFAULT_PRIMARY_PORT}`],
    maxFileSize: 64 * GiB,
    headerTimeoutMs: 10_000,
    idleTimeoutMs: 30_000,
    syncIntervalMs: 5_000,
    scrubIntervalMs: 3_600_000,
    insecure: false,
    minFree: DEFAULT_MIN_FREE,
    etcd: [],
    etcdPrefix: '/dfs',
    leaseTtl: 2,
    keepVersions: 5,
  };
}

/** The OS user name, made into a valid client id. */
export function defaultClientId(): string {
  let name = 'user';
  try {
    name = os.userInfo().username || name;
  } catch {
    // No passwd entry (some containers): keep the fallback.
  }
  const cleaned = name.replace(/[^A-Za-z0-9_@+-]/g, '_').replace(/^\.+/, '');
  return cleaned.length > 0 ? cleaned : 'user';
}

type Checker = (value: unknown, key: string) => unknown;

const portNumber: Checker = (value, key) => {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 65535) {
    throw invalid(key, value, 'a port number from 0 to 65535');
  }
  return value;
};
const count: Checker = (value, key) => {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 64) {
    throw invalid(key, value, 'a whole number from 0 to 64');
  }
  return value;
};
const positive: Checker = (value, key) => {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw invalid(key, value, 'a whole number, zero or more');
  }
  return value;
};
const text: Checker = (value, key) => {
  if (typeof value !== 'string' || value.length === 0) {
    throw invalid(key, value, 'a non-empty string');
  }
  return value;
};
const address: Checker = (value, key) => {
  text(value, key);
  parseHostPort(value as string);
  return value;
};

const CHECKS: Record<keyof Settings, Checker> = {
  host: text,
  port: portNumber,
  replicas: count,
  basePort: portNumber,
  dataDir: text,
  replica: (value, key) => {
    if (!Array.isArray(value)) {
      throw invalid(key, value, 'a list of "HOST:PORT" strings');
    }
    value.forEach((item) => address(item, key));
    return value;
  },
  writeQuorum: (value, key) => {
    try {
      return parseWriteQuorum(value);
    } catch {
      throw invalid(key, value, '"all", "majority" or a whole number');
    }
  },
  replication: (value, key) => {
    try {
      return parseReplicationMode(value);
    } catch {
      throw invalid(key, value, '"fanout", "pipeline" or "auto"');
    }
  },
  client: text,
  server: (value, key) => {
    // "HOST:PORT", "HOST:PORT,HOST:PORT" or a list of them: always a list after the check.
    if (typeof value !== 'string' && !(Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string'))) {
      throw invalid(key, value, '"HOST:PORT", "HOST:PORT,HOST:PORT,..." or a list of "HOST:PORT" strings');
    }
    try {
      return parseAddressList(value).map(formatHostPort);
    } catch (error) {
      throw invalid(key, value, `"HOST:PORT", "HOST:PORT,HOST:PORT,..." or a list of "HOST:PORT" strings (${(error as Error).message})`);
    }
  },
  failoverWaitMs: positive,
  maxFileSize: positive,
  headerTimeoutMs: positive,
  idleTimeoutMs: positive,
  syncIntervalMs: positive,
  scrubIntervalMs: positive,
  secretFile: text,
  keyFile: text,
  insecure: (value, key) => {
    if (typeof value !== 'boolean') {
      throw invalid(key, value, 'true or false');
    }
    return value;
  },
  tlsCert: text,
  tlsKey: text,
  tlsCa: text,
  maxConnections: (value, key) => {
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      throw invalid(key, value, 'a whole number, one or more');
    }
    return value;
  },
  minFree: positive,
  quota: positive,
  keepVersions: (value, key) => {
    if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 1000) {
      throw invalid(key, value, 'a whole number from 0 to 1000');
    }
    return value;
  },
  etcd: (value, key) => {
    const urls = typeof value === 'string' ? value.split(',').map((url) => url.trim()).filter((url) => url.length > 0) : value;
    if (!Array.isArray(urls) || urls.length === 0 || !urls.every((url) => typeof url === 'string' && /^https?:\/\/[^/\s]+\/?$/.test(url))) {
      throw invalid(key, value, 'etcd client URLs such as "http://127.0.0.1:2379", as a list or separated by commas');
    }
    return urls.map((url: string) => url.replace(/\/$/, ''));
  },
  etcdPrefix: (value, key) => {
    if (typeof value !== 'string' || !/^\/[A-Za-z0-9_.\/-]*[^/]$/.test(value)) {
      throw invalid(key, value, 'a key prefix such as "/dfs" (starting with "/", not ending with one)');
    }
    return value;
  },
  leaseTtl: (value, key) => {
    if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 60) {
      throw invalid(key, value, 'a whole number of seconds from 1 to 60');
    }
    return value;
  },
  inlineMax: (value, key) => {
    if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) > 1024 * 1024) {
      throw invalid(key, value, 'a whole number of bytes from 0 (off) to 1048576');
    }
    return value;
  },
  compactAfterLines: (value, key) => {
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      throw invalid(key, value, 'a whole number, 1 or more');
    }
    return value;
  },
};

/** Reads `dfs.config.json` from `dir` if there is one; a bad file is a clear error naming the key. */
export function loadConfigFile(dir: string): Partial<Settings> {
  const file = path.join(dir, CONFIG_FILE);
  if (!existsSync(file)) {
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new DfsError('BAD_HEADER', `${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new DfsError('BAD_HEADER', `${file} must hold a JSON object of settings`);
  }
  return checkSettings(parsed as Record<string, unknown>, file);
}

export function checkSettings(values: Record<string, unknown>, source: string): Partial<Settings> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    const check = CHECKS[key as keyof Settings];
    if (!check) {
      throw new DfsError('BAD_HEADER', `${source}: unknown setting "${key}"; known settings are ${Object.keys(CHECKS).join(', ')}`);
    }
    try {
      result[key] = check(value, key);
    } catch (error) {
      throw new DfsError('BAD_HEADER', `${source}: ${(error as Error).message}`);
    }
  }
  return result as Partial<Settings>;
}

export function resolveSettings(fromFlags: Partial<Settings>, fromFile: Partial<Settings>): Settings {
  const merged = { ...defaultSettings(), ...fromFile, ...fromFlags };
  if (fromFlags.port !== undefined && fromFlags.server === undefined && fromFile.server === undefined) {
    merged.server = [`${merged.host}:${merged.port}`];
  }
  return merged;
}

function invalid(key: string, value: unknown, expected: string): DfsError {
  return new DfsError('BAD_HEADER', `"${key}" is ${JSON.stringify(value)}; expected ${expected}`);
}
