import { readFileSync, readdirSync } from 'fs';

export interface DfsProcess {
  pid: number;
  args: string[];
}

/** Running `dfs.js` servers whose arguments include every one given, read from /proc (the extension starts them, not the test). */
export function dfsProcesses(...argsContained: string[]): DfsProcess[] {
  const found: DfsProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      // The process ended while we looked.
      continue;
    }
    if (args.some((arg) => arg.endsWith('dfs.js')) && argsContained.every((wanted) => args.includes(wanted))) {
      found.push({ pid: Number(entry), args });
    }
  }
  return found;
}
