import { appendFileSync } from 'fs';

/**
 * The words every escaped error's log line carries, so a person grepping a log and the
 * test suites find them the same way.
 */
export const ESCAPED_ERROR_MARK = 'ESCAPED ERROR';

/**
 * Where each escaped error is also appended as one JSON line, when set. The test
 * suites set it, so a test fails when any server it started (directly, through
 * `dfs cluster`, or through the extension) had an error escape.
 */
export const ESCAPE_LOG_ENV = 'DFS_ESCAPE_LOG';

export interface EscapeRecord {
  role: string;
  pid: number;
  timeMs: number;
  kind: 'uncaught exception' | 'unhandled rejection';
  stack: string;
}

/**
 * A peer must never be able to take a server down: every socket and handler catches
 * its own errors, and anything that still escapes is a bug in this code. It is logged
 * with its stack and the process carries on (commits are atomic, so no state is left
 * half-made).
 */
export function keepServing(role: string, log: (line: string) => void): void {
  const report = (kind: EscapeRecord['kind'], reason: unknown): void => {
    const stack = reason instanceof Error ? (reason.stack ?? reason.message) : String(reason);
    log(`${ESCAPED_ERROR_MARK} (${kind}), still serving; this is a bug, please report it with this line: ${stack}`);
    const file = process.env[ESCAPE_LOG_ENV];
    if (file) {
      const record: EscapeRecord = { role, pid: process.pid, timeMs: Date.now(), kind, stack };
      try {
        appendFileSync(file, JSON.stringify(record) + '\n');
      } catch {
        // The log line above already says it.
      }
    }
  };
  process.on('uncaughtException', (error) => report('uncaught exception', error));
  process.on('unhandledRejection', (reason) => report('unhandled rejection', reason));
}
