import type { ExtensionSettings } from '../model/settings';

export type NodeRole = 'primary' | 'replica';

/** The `dfs` task definition: which process of the local cluster a task runs. */
export interface DfsTaskDefinition {
  type: 'dfs';
  role: NodeRole;
  /** For a replica: which of the configured replica ports. For the primary: dfs.port. */
  port?: number;
}

export interface NodeLaunch {
  role: NodeRole;
  port: number;
  /** Names the process in task names, the log and error messages ("replica 2"). */
  label: string;
  /** Identifies the process across a task and the registry, one per port. */
  key: string;
  args: string[];
}

export function launchKey(role: NodeRole, port: number): string {
  return `${role}:${port}`;
}

export function parseLaunchKey(key: string): { role: NodeRole; port: number } {
  const [role, port] = key.split(':');
  return { role: role === 'primary' ? 'primary' : 'replica', port: Number(port) };
}

/** Replicas first: the primary checks its replicas as it starts, so they should already listen. */
export function clusterLaunches(settings: ExtensionSettings): NodeLaunch[] {
  const replicas = Array.from({ length: settings.replicas }, (_, index) => launchFor({ type: 'dfs', role: 'replica', port: settings.basePort + index }, settings));
  return [...replicas, launchFor({ type: 'dfs', role: 'primary' }, settings)];
}

/** Arguments for `dfs.js`, from a task definition and the current settings. */
export function launchFor(definition: DfsTaskDefinition, settings: ExtensionSettings): NodeLaunch {
  const tls = settings.tlsCertFile && settings.tlsKeyFile && settings.tlsCaFile ? ['--tls-cert', settings.tlsCertFile, '--tls-key', settings.tlsKeyFile, '--tls-ca', settings.tlsCaFile] : [];
  const common = ['--host', settings.host, '--base-port', String(settings.basePort), '--replicas', String(settings.replicas), '--data-dir', settings.dataDir, ...tls];
  if (definition.role === 'primary') {
    const port = definition.port ?? settings.port;
    return {
      role: 'primary',
      port,
      label: 'primary',
      key: launchKey('primary', port),
      args: ['primary', '--port', String(port), '--write-quorum', String(settings.writeQuorum), ...common],
    };
  }
  const port = definition.port ?? settings.basePort;
  const id = port - settings.basePort + 1;
  return {
    role: 'replica',
    port,
    label: `replica ${id}`,
    key: launchKey('replica', port),
    args: ['replica', '--port', String(port), ...common],
  };
}

/** `listening on 127.0.0.1:9000` (IPv6 hosts come bracketed). */
export function parseListeningLine(line: string): { host: string; port: number } | undefined {
  const match = /listening on (\S+):(\d+)\s*$/.exec(line);
  return match ? { host: match[1], port: Number(match[2]) } : undefined;
}
