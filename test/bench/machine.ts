import { execFileSync } from 'child_process';
import { readFileSync } from 'fs';
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

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
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
  const fsType = df[1] ?? '?';
  const notes: string[] = [];
  const mount = readText('/proc/mounts')
    .split('\n')
    .map((line) => line.split(' '))
    .find((fields) => fields[0] === source && fields[1] === (df[6] ?? ''));
  if (mount?.[3]) {
    notes.push(mount[3].split(',').filter((option) => ['discard', 'nobarrier', 'data=writeback', 'sync'].includes(option)).join(',') || '');
  }
  if (fsType === 'ext4') {
    const journal = readText(`/sys/fs/ext4/${base}/journal_task`).trim();
    if (journal === '<none>') {
      notes.push('no journal');
    }
  }
  const fsNotes = notes.filter((note) => note).join(', ');
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? '?',
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    filesystem: `${fsType}${fsNotes ? ` (${fsNotes})` : ''} on ${source}`,
    device,
    loadAverage: os.loadavg().map((value) => Math.round(value * 100) / 100),
  };
}
