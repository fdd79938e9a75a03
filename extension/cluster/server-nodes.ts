import { formatHostPort } from '../../server/client/primary-addresses';
import type { ClusterState } from '../model/cluster-state';
import { ClusterViewNode, clusterNodes } from '../model/cluster-health';
import type { ExtensionSettings } from '../model/settings';
import { launchKey, parseLaunchKey } from './node-launch';
import type { ProcessRegistry } from './process-registry';

/**
 * The Cluster view's rows now: the latest status joined with the processes this window
 * started. Those are servers of the dfs.* settings' cluster, so with a named cluster in
 * use (dfs.clusters) nothing there counts as started here, whatever its ports.
 */
export function serverNodesNow(state: ClusterState, settings: ExtensionSettings, registry: ProcessRegistry, nowMs = Date.now()): ClusterViewNode[] {
  const ours = settings.cluster === undefined;
  return clusterNodes(
    state,
    {
      primaries: settings.servers.map(formatHostPort),
      basePort: settings.basePort,
      startedHere: ours ? (role, port) => registry.startedHere(launchKey(role, port)) : undefined,
      replicaPortsHere: ours ? registry.keys.map(parseLaunchKey).flatMap((launch) => (launch.role === 'replica' ? [launch.port] : [])) : [],
    },
    nowMs,
  );
}
