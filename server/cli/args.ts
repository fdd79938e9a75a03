import { parseArgs } from 'util';
import { DfsError, Precondition } from '../protocol';
import { loadKey } from '../config/security-settings';
import { Settings, checkSettings, loadConfigFile, resolveSettings } from '../config/settings';

/** Flags every command accepts, spelled as in the README. */
const FLAGS = {
  host: { type: 'string' },
  port: { type: 'string' },
  replicas: { type: 'string' },
  'base-port': { type: 'string' },
  'data-dir': { type: 'string' },
  replica: { type: 'string', multiple: true },
  'write-quorum': { type: 'string' },
  replication: { type: 'string' },
  client: { type: 'string' },
  server: { type: 'string' },
  'failover-wait': { type: 'string' },
  'max-file-size': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'header-timeout': { type: 'string' },
  'sync-interval': { type: 'string' },
  'scrub-interval': { type: 'string' },
  'secret-file': { type: 'string' },
  'key-file': { type: 'string' },
  admin: { type: 'boolean' },
  insecure: { type: 'boolean' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'max-connections': { type: 'string' },
  'min-free': { type: 'string' },
  quota: { type: 'string' },
  'keep-versions': { type: 'string' },
  'compact-after': { type: 'string' },
  etcd: { type: 'string' },
  'etcd-prefix': { type: 'string' },
  'lease-ttl': { type: 'string' },
  ha: { type: 'boolean' },
  'if-generation': { type: 'string' },
  'if-absent': { type: 'boolean' },
  generation: { type: 'string' },
  output: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
  'no-overwrite': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ParsedCommand {
  settings: Settings;
  positionals: string[];
  output?: string;
  json: boolean;
  noOverwrite: boolean;
  help: boolean;
  /** --if-generation G or --if-absent: the precondition an upload or delete carries. */
  precondition?: Precondition;
  /** --generation G: a kept older version instead of the current one. */
  generation?: number;
  /** --admin: `dfs key issue` makes an admin key. */
  admin: boolean;
  /** --ha: `dfs cluster` starts a local etcd and two primaries. */
  ha: boolean;
}

export function parseCommandLine(argv: string[], cwd: string): ParsedCommand {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: FLAGS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new DfsError('BAD_HEADER', `${(error as Error).message}. Run "dfs --help" for the flags.`);
  }
  const { values, positionals } = parsed;
  const flags: Record<string, unknown> = {};
  const number = (flag: string): number => {
    const value = values[flag as keyof typeof values] as string;
    if (!/^\d+$/.test(value)) {
      throw new DfsError('BAD_HEADER', `--${flag} ${JSON.stringify(value)} is not a whole number`);
    }
    return Number(value);
  };
  const numeric: Record<string, keyof Settings> = {
    port: 'port',
    replicas: 'replicas',
    'base-port': 'basePort',
    'max-file-size': 'maxFileSize',
    'idle-timeout': 'idleTimeoutMs',
    'header-timeout': 'headerTimeoutMs',
    'sync-interval': 'syncIntervalMs',
    'scrub-interval': 'scrubIntervalMs',
    'max-connections': 'maxConnections',
    'min-free': 'minFree',
    quota: 'quota',
    'keep-versions': 'keepVersions',
    'compact-after': 'compactAfterLines',
    'lease-ttl': 'leaseTtl',
    'failover-wait': 'failoverWaitMs',
  };
  for (const [flag, key] of Object.entries(numeric)) {
    if (values[flag as keyof typeof values] !== undefined) {
      flags[key] = number(flag);
    }
  }
  if (values.host !== undefined) flags.host = values.host;
  if (values['data-dir'] !== undefined) flags.dataDir = values['data-dir'];
  if (values.replica !== undefined) flags.replica = values.replica;
  if (values['write-quorum'] !== undefined) flags.writeQuorum = values['write-quorum'];
  if (values.replication !== undefined) flags.replication = values.replication;
  if (values.client !== undefined) flags.client = values.client;
  if (values.server !== undefined) flags.server = values.server;
  if (values['secret-file'] !== undefined) flags.secretFile = values['secret-file'];
  if (values['key-file'] !== undefined) flags.keyFile = values['key-file'];
  if (values.insecure !== undefined) flags.insecure = values.insecure;
  if (values['tls-cert'] !== undefined) flags.tlsCert = values['tls-cert'];
  if (values['tls-key'] !== undefined) flags.tlsKey = values['tls-key'];
  if (values['tls-ca'] !== undefined) flags.tlsCa = values['tls-ca'];
  if (values.etcd !== undefined) flags.etcd = values.etcd;
  if (values['etcd-prefix'] !== undefined) flags.etcdPrefix = values['etcd-prefix'];
  const fromFlags = checkSettings(flags, 'command line');
  const fromFile = loadConfigFile(cwd);
  const settings = resolveSettings(fromFlags, fromFile);
  // With a client key, the client id is the key's unless one is given.
  if (fromFlags.client === undefined && fromFile.client === undefined) {
    const key = loadKey(settings);
    if (key?.kind === 'client') {
      settings.client = key.clientId!;
    }
  }
  if (values['if-generation'] !== undefined && values['if-absent']) {
    throw new DfsError('BAD_HEADER', '--if-generation and --if-absent contradict each other; give one');
  }
  const precondition: Precondition | undefined =
    values['if-generation'] !== undefined ? { kind: 'generation', generation: number('if-generation') } : values['if-absent'] ? { kind: 'absent' } : undefined;
  return {
    settings,
    positionals,
    output: values.output,
    json: values.json ?? false,
    noOverwrite: values['no-overwrite'] ?? false,
    help: values.help ?? false,
    precondition,
    generation: values.generation !== undefined ? number('generation') : undefined,
    admin: values.admin ?? false,
    ha: values.ha ?? false,
  };
}
