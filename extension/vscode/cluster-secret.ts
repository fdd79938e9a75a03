import * as vscode from 'vscode';
import type { Logger } from '../model/logger';

const SECRET_KEY = 'dfs.clusterSecret';
const MIN_SECRET_LENGTH = 16;

/**
 * The cluster secret lives in VS Code's secret storage, never in settings.json. The
 * client presents it and Start Cluster hands it to the servers it starts.
 */
export class ClusterSecret implements vscode.Disposable {
  private current: Buffer | undefined;
  private readonly subscription: vscode.Disposable;

  constructor(
    private readonly storage: vscode.SecretStorage,
    private readonly log: Logger,
    private readonly changed: (secret: Buffer | undefined) => void,
  ) {
    this.subscription = storage.onDidChange((event) => {
      if (event.key === SECRET_KEY) {
        void this.load().then(undefined, (error: unknown) => log.error('reading the cluster secret failed', error));
      }
    });
  }

  get value(): Buffer | undefined {
    return this.current;
  }

  async load(): Promise<void> {
    const stored = await this.storage.get(SECRET_KEY);
    this.current = stored ? Buffer.from(stored, 'utf8') : undefined;
    this.changed(this.current);
  }

  /** Asks for the secret (hidden input) and stores it; Escape changes nothing. */
  async prompt(): Promise<boolean> {
    const secret = await vscode.window.showInputBox({
      title: 'DFS: Set Cluster Secret',
      prompt: 'The secret every server of the cluster was started with (--secret-file or DFS_SECRET). It is kept in VS Code\'s secret storage.',
      password: true,
      ignoreFocusOut: true,
      validateInput: (value) => (value.length < MIN_SECRET_LENGTH ? `Use at least ${MIN_SECRET_LENGTH} characters (for example the output of: openssl rand -hex 32).` : undefined),
    });
    if (secret === undefined) {
      return false;
    }
    if (secret.length < MIN_SECRET_LENGTH) {
      await vscode.window.showErrorMessage(`DFS: the cluster secret must be at least ${MIN_SECRET_LENGTH} characters; nothing was changed.`);
      return false;
    }
    await this.storage.store(SECRET_KEY, secret);
    await this.load();
    this.log.info('cluster secret stored; connections now authenticate, and Start Cluster starts servers that require it');
    return true;
  }

  async forget(): Promise<void> {
    await this.storage.delete(SECRET_KEY);
    await this.load();
    this.log.info('cluster secret forgotten; connections use the open protocol');
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
