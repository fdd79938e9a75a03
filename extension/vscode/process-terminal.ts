import * as vscode from 'vscode';
import type { NodeExit, NodeProcess } from '../cluster/node-process';
import type { ProcessRegistry } from '../cluster/process-registry';
import type { Logger } from '../model/logger';

const RED = '\x1b[31m';
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

/**
 * The terminal of one `dfs` task. The process starts when VS Code opens the terminal
 * and closing the terminal (or terminating the task) stops it, so the terminal panel
 * always shows exactly the servers that run.
 */
export class ProcessTerminal implements vscode.Pseudoterminal {
  private readonly written = new vscode.EventEmitter<string>();
  private readonly closed = new vscode.EventEmitter<number>();
  readonly onDidWrite = this.written.event;
  readonly onDidClose = this.closed.event;

  constructor(
    private readonly process: NodeProcess,
    private readonly registry: ProcessRegistry,
    private readonly log: Logger & { append(line: string): void },
  ) {}

  open(): void {
    const launch = this.process.launch;
    this.write(`${DIM}DFS ${launch.label}: dfs ${launch.args.join(' ')}${RESET}`);
    this.process.on('line', (line: string, stream: 'stdout' | 'stderr') => {
      this.write(stream === 'stderr' ? `${RED}${line}${RESET}` : line);
      this.log.append(line.includes(`[${launch.label}]`) ? line : `[${launch.label}] ${line}`);
    });
    this.process.once('exit', (exit: NodeExit) => {
      this.write(`${DIM}DFS ${launch.label} exited (${exit.signal ?? `code ${exit.code}`})${RESET}`);
      this.closed.fire(exit.requested ? 0 : exit.code ?? 1);
      this.written.dispose();
      this.closed.dispose();
    });
    this.registry.add(this.process);
    this.process.start();
  }

  close(): void {
    void this.process.stop().catch((error: unknown) => this.log.error(`stopping DFS ${this.process.launch.label} failed`, error));
  }

  private write(line: string): void {
    this.written.fire(`${line}\r\n`);
  }
}
