import { closeSync, openSync, readSync, statSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ESCAPE_LOG_ENV, EscapeRecord } from '../../server/node/escaped-errors';

/**
 * Every server a test run starts inherits this process's environment, so pointing
 * DFS_ESCAPE_LOG at one file here catches escaped errors from servers started by
 * TestCluster, the netns harness, `dfs cluster`, the extension's Start Cluster and
 * the chaos run alike.
 */
const file = process.env[ESCAPE_LOG_ENV] ?? path.join(os.tmpdir(), `dfs-escapes-${process.pid}.jsonl`);
if (!process.env[ESCAPE_LOG_ENV]) {
  writeFileSync(file, '');
  process.env[ESCAPE_LOG_ENV] = file;
}
let readUpTo = sizeOf();

function sizeOf(): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The escaped errors servers logged since the last call. */
export function takeEscapes(): EscapeRecord[] {
  const size = sizeOf();
  if (size <= readUpTo) {
    return [];
  }
  const buffer = Buffer.alloc(size - readUpTo);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, readUpTo);
  } finally {
    closeSync(fd);
  }
  // Only whole lines: a server may be writing one right now.
  const text = buffer.toString('utf8');
  const whole = text.slice(0, text.lastIndexOf('\n') + 1);
  readUpTo += Buffer.byteLength(whole);
  return whole
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as EscapeRecord);
}

/** An error describing escaped errors, or undefined when there were none. */
export function escapeFailure(escapes: EscapeRecord[], during: string): Error | undefined {
  if (escapes.length === 0) {
    return undefined;
  }
  const lines = escapes.map((escape) => `  ${escape.role} (pid ${escape.pid}), ${escape.kind}: ${escape.stack.split('\n').slice(0, 6).join('\n    ')}`);
  return new Error(`${escapes.length} error(s) escaped a server's handlers ${during}:\n${lines.join('\n')}`);
}
