import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ClusterOptions, TestCluster } from './cluster';
import { REPO_ROOT } from './processes';
import { Uri, createExtensionContext, testing } from './vscode-double';

export interface ExtensionUnderTest {
  context: ReturnType<typeof createExtensionContext>;
  extension: { activate(context: unknown): void; deactivate(): Promise<void> };
  /** Runs a registered command the way the palette or a menu would. */
  run<T>(command: string, ...args: unknown[]): Promise<T>;
  /** Deactivates, disposes every registration and resets the test double. */
  close(): Promise<void>;
}

/** Activates the bundled extension against the vscode test double with these `dfs.*` settings. */
export function activateExtension(work: string, settings: Record<string, unknown>, options: { workspaceState?: Map<string, unknown> } = {}): ExtensionUnderTest {
  testing.reset();
  for (const [key, value] of Object.entries(settings)) {
    testing.configuration.set(`dfs.${key}`, value);
  }
  testing.workspaceFolders = [{ uri: Uri.file(work), name: 'work', index: 0 }];
  const context = createExtensionContext(REPO_ROOT, path.join(work, 'global-storage'), options.workspaceState);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const extension = require(path.join(REPO_ROOT, 'dist', 'extension.js')) as ExtensionUnderTest['extension'];
  extension.activate(context);
  return {
    context,
    extension,
    run: <T>(command: string, ...args: unknown[]): Promise<T> => {
      const handler = testing.commands.get(command);
      if (!handler) {
        throw new Error(`command ${command} is not registered`);
      }
      return Promise.resolve(handler(...args)) as Promise<T>;
    },
    close: async () => {
      await extension.deactivate();
      context.subscriptions.forEach((subscription) => subscription.dispose());
      testing.reset();
    },
  };
}

/** A suite's own servers and the extension activated against them. */
export interface ExtensionOnCluster {
  cluster: TestCluster;
  work: string;
  extension: ExtensionUnderTest;
}

/** Real servers (2 replicas unless `options` says otherwise) and the extension activated against them as `clientId`, once its status bar counts every replica. */
export async function startExtensionOnCluster(clientId: string, workPrefix: string, options: ClusterOptions = {}): Promise<ExtensionOnCluster> {
  const replicas = options.replicas ?? 2;
  const cluster = await TestCluster.start({ ...options, replicas });
  const work = await fs.mkdtemp(path.join(os.tmpdir(), workPrefix));
  const extension = activateExtension(work, { host: '127.0.0.1', port: cluster.primaryPort, clientId, replicas, basePort: cluster.basePort, dataDir: path.join(work, 'data') });
  await testing.waitForStatusBar((text) => text.includes(`DFS ${replicas}/${replicas}`));
  return { cluster, work, extension };
}

/** Undoes startExtensionOnCluster, whatever part of it ran. */
export async function stopExtensionOnCluster(setup: Partial<ExtensionOnCluster>): Promise<void> {
  await setup.extension?.close();
  await setup.cluster?.destroy();
  if (setup.work) {
    await fs.rm(setup.work, { recursive: true, force: true });
  }
}
