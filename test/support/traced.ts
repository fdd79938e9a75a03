import * as assert from 'assert';
import { promises as fs } from 'fs';
import { run } from './netns';
import type { SpawnedNode } from './processes';
import { Trace, parseStrace } from './strace-parse';
import { SyncReport, checkSyncOrder, describeViolation } from './sync-rules';

/**
 * Running servers under strace (Debian's package) and checking their traces against
 * the sync ordering rules (sync-rules.ts). `stringBytes` is how much of each write
 * strace shows: every journal write must fit whole, or its records cannot be checked.
 */
export function straceLauncher(output: string, stringBytes = 4096, syncDelayMicros?: number): string[] {
  const launcher = ['strace', '-f', '-yy', '-s', String(stringBytes), '-o', output, '-e', 'trace=fsync,fdatasync,read,write,writev,pwrite64,openat,rename,renameat,renameat2,link,linkat,unlink,unlinkat,mkdir,mkdirat,rmdir'];
  // Every sync made as slow as a disk's that really writes through (strace holds the
  // thread that made it before returning): a sync that costs nothing here would let
  // any design pass for one that shares them, or make sharing a matter of timing.
  return syncDelayMicros ? [...launcher, '-e', `inject=fsync,fdatasync:delay_exit=${syncDelayMicros}`] : launcher;
}

/** SIGTERM to the server strace runs (strace's child); resolves once strace has exited too, its log complete. */
export async function stopTraced(node: SpawnedNode): Promise<void> {
  const pid = node.child.pid!;
  const children = (await fs.readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean);
  for (const child of children) {
    process.kill(Number(child), 'SIGTERM');
  }
  await node.exited;
}

/** Why strace cannot be used here, or undefined when it can. */
export async function straceUnavailable(): Promise<string | undefined> {
  const probe = await run('strace', ['-f', '-o', '/dev/null', 'true']);
  if (probe.missing) {
    return 'the "strace" command is not installed (Debian package strace)';
  }
  return probe.code === 0 ? undefined : `strace cannot trace here: ${probe.stderr.trim()}`;
}

export interface Checked {
  trace: Trace;
  report: SyncReport;
}

export async function checkTraceFile(file: string): Promise<Checked> {
  const trace = parseStrace(await fs.readFile(file, 'utf8'));
  return { trace, report: checkSyncOrder(trace) };
}

export function assertNoViolations({ trace, report }: Checked, node: string): void {
  const { violations } = report;
  assert.ok(violations.length === 0, `${node}: ${violations.length} sync ordering violations:\n\n${violations.slice(0, 5).map((violation) => describeViolation(violation, trace)).join('\n\n')}`);
}
