import { readFileSync } from 'fs';

export interface MemoryPeak {
  /** VmHWM: the kernel's own peak resident set since the process started, in bytes. */
  hwm: number;
  /** The largest VmRSS seen while sampling, in bytes (a cross-check of hwm). */
  sampledPeak: number;
  samples: number;
  /** VmRSS when sampling began: the idle process, before the measured work. */
  startRss: number;
}

function statusField(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples a process's resident memory every `everyMs` until stopped (Linux /proc only). */
export class MemorySampler {
  private peak = 0;
  private samples = 0;
  private readonly startRss: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    everyMs = 20,
  ) {
    this.startRss = statusField(pid, 'VmRSS') ?? 0;
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  stop(): MemoryPeak {
    clearInterval(this.timer);
    this.sample();
    return { hwm: statusField(this.pid, 'VmHWM') ?? 0, sampledPeak: this.peak, samples: this.samples, startRss: this.startRss };
  }

  private sample(): void {
    const rss = statusField(this.pid, 'VmRSS');
    if (rss !== undefined) {
      this.peak = Math.max(this.peak, rss);
      this.samples++;
    }
  }
}
