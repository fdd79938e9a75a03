import { readFileSync } from 'fs';
import * as os from 'os';

/** Clock ticks per second of /proc's CPU times; 100 on every Linux this runs on. */
const TICKS = 100;

interface MachineTimes {
  user: number;
  system: number;
  iowait: number;
  idle: number;
  steal: number;
}

function machineTimes(): MachineTimes | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = fields;
    return { user: user + nice, system: system + irq + softirq, iowait, idle, steal: steal ?? 0 };
  } catch {
    return undefined;
  }
}

function processSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces; the fields after its closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return undefined;
  }
}

export interface CpuReport {
  wallSeconds: number;
  /** Machine-wide, in cores (of os.cpus().length): user, system (irq included), iowait, steal. */
  machine?: { cores: number; busyCores: number; user: number; system: number; iowait: number; steal: number };
  /** CPU seconds (user + system) per process over the interval, by role. */
  processes: Record<string, number>;
}

/**
 * Counters for "where does the time go" without a profiler: the machine's CPU use
 * from /proc/stat and each process's own CPU seconds from /proc/<pid>/stat, between
 * start and stop. The bench process itself is counted as "bench (client)".
 */
export class CpuMeter {
  private readonly started = process.hrtime.bigint();
  private readonly machine = machineTimes();
  private readonly perProcess: Map<string, { pid: number; seconds: number }>;
  private readonly self = process.cpuUsage();

  constructor(processes: Record<string, number>) {
    this.perProcess = new Map(Object.entries(processes).map(([role, pid]) => [role, { pid, seconds: processSeconds(pid) ?? 0 }]));
  }

  stop(): CpuReport {
    const wallSeconds = Number(process.hrtime.bigint() - this.started) / 1e9;
    const processes: Record<string, number> = {};
    for (const [role, { pid, seconds }] of this.perProcess) {
      const now = processSeconds(pid);
      if (now !== undefined) {
        processes[role] = round(now - seconds);
      }
    }
    const self = process.cpuUsage(this.self);
    processes['bench (client)'] = round((self.user + self.system) / 1e6);
    const end = machineTimes();
    let machine: CpuReport['machine'];
    if (this.machine && end) {
      const cores = (ticks: number): number => round(ticks / TICKS / wallSeconds);
      const user = cores(end.user - this.machine.user);
      const system = cores(end.system - this.machine.system);
      machine = {
        cores: os.cpus().length,
        busyCores: round(user + system),
        user,
        system,
        iowait: cores(end.iowait - this.machine.iowait),
        steal: cores(end.steal - this.machine.steal),
      };
    }
    return { wallSeconds: round(wallSeconds), machine, processes };
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

export function formatCpu(report: CpuReport): string {
  const m = report.machine;
  const machine = m ? `machine ${m.busyCores}/${m.cores} cores busy (user ${m.user}, sys ${m.system}, iowait ${m.iowait}, steal ${m.steal})` : 'machine ?';
  const processes = Object.entries(report.processes)
    .map(([role, seconds]) => `${role} ${seconds}s`)
    .join(', ');
  return `${machine}; CPU seconds: ${processes} over ${report.wallSeconds}s`;
}

/** Several intervals as one: CPU seconds added up, machine shares weighted by wall time. */
export function mergeCpu(reports: CpuReport[]): CpuReport {
  const wallSeconds = reports.reduce((sum, report) => sum + report.wallSeconds, 0);
  const processes: Record<string, number> = {};
  for (const report of reports) {
    for (const [role, seconds] of Object.entries(report.processes)) {
      processes[role] = round((processes[role] ?? 0) + seconds);
    }
  }
  const withMachine = reports.filter((report) => report.machine);
  let machine: CpuReport['machine'];
  if (withMachine.length > 0 && wallSeconds > 0) {
    const weighted = (key: 'busyCores' | 'user' | 'system' | 'iowait' | 'steal'): number =>
      round(withMachine.reduce((sum, report) => sum + report.machine![key] * report.wallSeconds, 0) / wallSeconds);
    machine = { cores: withMachine[0].machine!.cores, busyCores: weighted('busyCores'), user: weighted('user'), system: weighted('system'), iowait: weighted('iowait'), steal: weighted('steal') };
  }
  return { wallSeconds: round(wallSeconds), machine, processes };
}
