import { promises as fs } from 'fs';

/** Peak resident memory of a process so far (VmHWM), in bytes. */
export async function peakRss(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  if (!match) {
    throw new Error(`no VmHWM for process ${pid}`);
  }
  return Number(match[1]) * 1024;
}
