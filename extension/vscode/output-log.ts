import * as vscode from 'vscode';
import { Logger, describeError } from '../model/logger';

/** The "DFS" output channel, behind the Logger interface the pure code writes to. */
export class OutputLog implements Logger, vscode.Disposable {
  private readonly channel: vscode.LogOutputChannel;

  constructor() {
    this.channel = vscode.window.createOutputChannel('DFS', { log: true });
  }

  info(message: string): void {
    this.channel.info(message);
  }

  warn(message: string): void {
    this.channel.warn(message);
  }

  error(message: string, error?: unknown): void {
    this.channel.error(error === undefined ? message : `${message}: ${describeError(error)}`);
  }

  /** Writes a server process's own output as it came, so the log reads like its terminal. */
  append(line: string): void {
    this.channel.appendLine(line);
  }

  show(): void {
    this.channel.show(true);
  }

  dispose(): void {
    this.channel.dispose();
  }
}
