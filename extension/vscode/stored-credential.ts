import * as vscode from 'vscode';
import type { Logger } from '../model/logger';

/** What differs between the credentials kept in secret storage: the cluster secret, a client key. */
export interface CredentialKind<T> {
  /** The secret storage key. */
  storageKey: string;
  /** "cluster secret", "client key": for messages and the log. */
  what: string;
  title: string;
  prompt: string;
  placeHolder?: string;
  /** The text as stored (a key loses the spaces a paste brings; a secret is kept exactly). */
  normalize(text: string): string;
  /** Undefined when the text is acceptable; otherwise what is wrong with it and how to fix it. */
  problem(text: string): string | undefined;
  parse(text: string): T;
  /** Logged after it is stored or forgotten: what changes now. */
  storedNote(value: T): string;
  forgottenNote: string;
}

/**
 * One credential in VS Code's secret storage, never in settings.json. Set asks for it
 * in a password box, Forget deletes it; a change from another window is picked up too.
 */
export class StoredCredential<T> implements vscode.Disposable {
  private current: T | undefined;
  private readonly subscription: vscode.Disposable;

  constructor(
    private kind: CredentialKind<T>,
    private readonly storage: vscode.SecretStorage,
    private readonly log: Logger,
    private readonly changed: (value: T | undefined) => void,
  ) {
    this.subscription = storage.onDidChange((event) => {
      if (event.key === this.kind.storageKey) {
        void this.load().then(undefined, (error: unknown) => log.error(`reading the ${this.kind.what} failed`, error));
      }
    });
  }

  get value(): T | undefined {
    return this.current;
  }

  /** Keeps another credential of the same sort from now on (another cluster's client key) and loads it. */
  async use(kind: CredentialKind<T>): Promise<void> {
    if (kind.storageKey !== this.kind.storageKey) {
      this.kind = kind;
      // At once, not after the read: the previous cluster's key must not be sent to the next one meanwhile.
      this.current = undefined;
      this.changed(undefined);
      await this.load();
    }
  }

  async load(): Promise<void> {
    const stored = await this.storage.get(this.kind.storageKey);
    let value: T | undefined;
    if (stored) {
      try {
        value = this.kind.parse(stored);
      } catch (error) {
        // Kept, not deleted: the user may want to see what is there before replacing it.
        this.log.error(`the stored ${this.kind.what} is unusable; set it again`, error);
      }
    }
    this.current = value;
    this.changed(this.current);
  }

  /** Asks for the value (hidden input) and stores it; Escape changes nothing. */
  async prompt(): Promise<boolean> {
    const text = await vscode.window.showInputBox({
      title: this.kind.title,
      prompt: this.kind.prompt,
      placeHolder: this.kind.placeHolder,
      password: true,
      ignoreFocusOut: true,
      validateInput: (value) => this.kind.problem(this.kind.normalize(value)),
    });
    if (text === undefined) {
      return false;
    }
    const normalized = this.kind.normalize(text);
    const problem = this.kind.problem(normalized);
    if (problem) {
      await vscode.window.showErrorMessage(`DFS: ${problem} Nothing was changed.`);
      return false;
    }
    await this.storage.store(this.kind.storageKey, normalized);
    await this.load();
    if (this.current !== undefined) {
      this.log.info(this.kind.storedNote(this.current));
    }
    return true;
  }

  async forget(): Promise<void> {
    await this.storage.delete(this.kind.storageKey);
    await this.load();
    this.log.info(this.kind.forgottenNote);
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
