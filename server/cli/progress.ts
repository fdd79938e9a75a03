import { formatBytes } from '../protocol';

/** A one-line progress bar on a terminal; silent when output is not a terminal. */
export class ProgressBar {
  private readonly started = Date.now();
  private lastDraw = 0;

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number, total: number): void {
    if (!this.stream.isTTY) {
      return;
    }
    const now = Date.now();
    if (now - this.lastDraw < 100 && done < total) {
      return;
    }
    this.lastDraw = now;
    const fraction = total === 0 ? 1 : done / total;
    const width = 24;
    const filled = Math.round(fraction * width);
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const line = `${this.label.slice(-40).padEnd(40)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${formatBytes(done)} / ${formatBytes(total)} ${formatBytes(done / seconds)}/s`;
    this.stream.write(`\r${line}`);
  }

  finish(): void {
    if (this.stream.isTTY && this.lastDraw > 0) {
      this.stream.write('\n');
    }
  }
}
