import { execFileSync } from 'child_process';
import * as os from 'os';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  /** Filesystem and device holding the scratch folder, as df and lsblk see them. */
  filesystem: string;
  device: string;
  loadAverage: number[];
}

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** What the figures were measured on, for the README and the JSON. */
export function describeMachine(scratch: string): MachineInfo {
  const df = run('df', ['-PT', scratch]).split('\n')[1]?.split(/\s+/) ?? [];
  const source = df[0] ?? '?';
  const base = source.replace(/^\/dev\//, '');
  const lsblk = run('lsblk', ['-dno', 'NAME,SIZE,ROTA,MODEL', `/dev/${base.replace(/p?\d+$/, '') || base}`]) || run('lsblk', ['-dno', 'NAME,SIZE,ROTA,MODEL', source]);
  const [name, size, rota, ...model] = lsblk.split(/\s+/);
  const device = lsblk
    ? `${name} ${size}${rota === '1' ? ', reported rotational' : rota === '0' ? ', non-rotational' : ''}${model.length ? `, ${model.join(' ')}` : ''}${name?.startsWith('vd') ? ' (virtio virtual disk)' : ''}`
    : source;
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? '?',
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    filesystem: `${df[1] ?? '?'} on ${source}`,
    device,
    loadAverage: os.loadavg().map((value) => Math.round(value * 100) / 100),
  };
}
