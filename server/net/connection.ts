import type { Duplex } from 'stream';
import { DecodedLine, DfsError, LineDecoder, MAX_HEADER_BYTES } from '../protocol';

export interface ConnectionTimeouts {
  /** Longest wait for a whole header. */
  headerMs: number;
  /** Longest silence in the middle of a body or between protocol steps. */
  idleMs: number;
  /** A pause this long after an unterminated header ends it (the report's framing). */
  settleMs: number;
  /** Longest wait for the peer to take a write; the idle timeout when unset. */
  drainMs?: number;
}

export const DEFAULT_TIMEOUTS: ConnectionTimeouts = { headerMs: 10_000, idleMs: 30_000, settleMs: 15 };

const HIGH_WATER = 1024 * 1024;
/** The slowest body we keep receiving: 1 KiB per idle period (30 s by default). */
const MIN_BYTES_PER_IDLE_PERIOD = 1024;
const LOW_WATER = 256 * 1024;

/**
 * Reads headers, lines and exactly-sized bodies from any duplex stream, with a timeout
 * on every wait. Bytes are pulled, so a slow consumer pauses the peer instead of
 * buffering the file in memory.
 */
export class Connection {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  /** The first bytes of the header, so even a header refused unread can be answered with its verb's token. */
  headerStart = Buffer.alloc(0);
  /** Set when a header ended at a pause, so even its failure is answered the report's way. */
  headerUnterminated = false;

  constructor(
    readonly stream: Duplex,
    readonly timeouts: ConnectionTimeouts = DEFAULT_TIMEOUTS,
  ) {
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('error', this.onError);
    stream.on('close', this.onEnd);
  }

  /**
   * Hands the stream over to another reader (the multiplexer, after its preface): stops
   * listening and returns the bytes that arrived beyond what was read.
   */
  detach(): Buffer {
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('error', this.onError);
    this.stream.off('close', this.onEnd);
    const rest = Buffer.concat(this.queue);
    this.queue.length = 0;
    this.queued = 0;
    this.ended = true;
    this.failure ??= new DfsError('PROTOCOL', 'the connection was handed over to the multiplexer');
    this.notify();
    return rest;
  }

  private readonly onData = (chunk: Buffer): void => {
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (this.queued > HIGH_WATER) {
      this.stream.pause();
    }
    this.notify();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };

  private readonly onError = (error: Error): void => {
    this.failure = error;
    this.notify();
  };

  /** True while a reply can still reach the peer, even after it half-closed. */
  get isOpen(): boolean {
    return !this.failure && !this.stream.destroyed && this.stream.writable;
  }

  /** Reads a request header: a terminated line, or the report's unterminated one ended by a pause. */
  async readHeader(maxBytes = MAX_HEADER_BYTES): Promise<DecodedLine> {
    const decoder = new LineDecoder(maxBytes);
    const deadline = Date.now() + this.timeouts.headerMs;
    for (;;) {
      const chunk = this.take();
      if (chunk) {
        if (this.headerStart.length < 32) {
          this.headerStart = Buffer.concat([this.headerStart, chunk.subarray(0, 32)]).subarray(0, 32);
        }
        const decoded = decoder.push(chunk);
        if (decoded) {
          this.unshift(decoded.rest);
          return decoded;
        }
        continue;
      }
      this.throwIfFailed();
      if (this.ended) {
        this.headerUnterminated = decoder.pending > 0;
        const partial = decoder.takeUnterminated();
        if (partial) {
          return partial;
        }
        throw new DfsError('PROTOCOL', 'connection closed before a header arrived');
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new DfsError('TIMEOUT', `no complete header within ${this.timeouts.headerMs} ms`);
      }
      const waitMs = decoder.pending > 0 ? Math.min(this.timeouts.settleMs, remaining) : remaining;
      const arrived = await this.waitForData(waitMs);
      if (!arrived && decoder.pending > 0) {
        this.headerUnterminated = true;
        const partial = decoder.takeUnterminated();
        if (partial) {
          return partial;
        }
      }
    }
  }

  /** Reads one newline-terminated line: a reply, or a step inside a session. */
  async readLine(timeoutMs = this.timeouts.idleMs, maxBytes = MAX_HEADER_BYTES): Promise<string> {
    const decoder = new LineDecoder(maxBytes);
    for (;;) {
      const chunk = this.take();
      if (chunk) {
        const decoded = decoder.push(chunk);
        if (decoded) {
          this.unshift(decoded.rest);
          return decoded.line;
        }
        continue;
      }
      this.throwIfFailed();
      if (this.ended) {
        const partial = decoder.takeUnterminated();
        if (partial) {
          return partial.line;
        }
        throw new DfsError('PROTOCOL', 'connection closed by the peer');
      }
      if (!(await this.waitForData(timeoutMs))) {
        throw new DfsError('TIMEOUT', `peer sent nothing for ${timeoutMs} ms`);
      }
    }
  }

  /** Yields exactly `size` bytes, then stops; fails on a short body or a stall. */
  async *readBody(size: number): AsyncGenerator<Buffer> {
    let remaining = size;
    // A body that trickles in (a byte every few seconds) would dodge the idle timeout
    // forever while holding a slot and three replica connections: ask for a token rate.
    let windowStart = Date.now();
    let windowBytes = 0;
    while (remaining > 0) {
      const now = Date.now();
      if (now - windowStart >= this.timeouts.idleMs) {
        if (windowBytes < MIN_BYTES_PER_IDLE_PERIOD) {
          throw new DfsError('TIMEOUT', `transfer too slow: ${windowBytes} bytes in ${now - windowStart} ms after ${size - remaining} of ${size} bytes`);
        }
        windowStart = now;
        windowBytes = 0;
      }
      let chunk = this.take();
      if (!chunk) {
        this.throwIfFailed();
        if (this.ended) {
          throw new DfsError('SHORT_BODY', `connection closed after ${size - remaining} of ${size} bytes`);
        }
        if (!(await this.waitForData(this.timeouts.idleMs))) {
          throw new DfsError('TIMEOUT', `transfer stalled after ${size - remaining} of ${size} bytes (nothing for ${this.timeouts.idleMs} ms)`);
        }
        continue;
      }
      if (chunk.length > remaining) {
        this.unshift(chunk.subarray(remaining));
        chunk = chunk.subarray(0, remaining);
      }
      remaining -= chunk.length;
      windowBytes += chunk.length;
      yield chunk;
    }
  }

  /** Reads whatever arrives until the peer closes: LIST and the record listings end that way. */
  async readToEnd(maxBytes: number, timeoutMs = this.timeouts.idleMs): Promise<Buffer> {
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = this.take();
      if (chunk) {
        total += chunk.length;
        if (total > maxBytes) {
          throw new DfsError('LIMIT', `reply is larger than ${maxBytes} bytes`);
        }
        parts.push(chunk);
        continue;
      }
      this.throwIfFailed();
      if (this.ended) {
        return Buffer.concat(parts);
      }
      if (!(await this.waitForData(timeoutMs))) {
        throw new DfsError('TIMEOUT', `peer sent nothing for ${timeoutMs} ms`);
      }
    }
  }

  /** True when bytes beyond what was asked for have already arrived. */
  hasUnreadBytes(): boolean {
    return this.queued > 0;
  }

  /** Writes, waiting for the peer to drain when its buffer is full, never longer than the idle timeout. */
  async write(data: string | Buffer): Promise<void> {
    this.throwIfFailed();
    if (this.stream.destroyed || this.stream.writableEnded) {
      throw new DfsError('PROTOCOL', 'connection is already closed');
    }
    if (this.stream.write(data)) {
      return;
    }
    await this.waitForDrain();
  }

  async writeLine(line: string): Promise<void> {
    await this.write(line + '\n');
  }

  /** Ends our side after everything written has been flushed. */
  async end(data?: string | Buffer): Promise<void> {
    if (this.stream.destroyed || this.stream.writableEnded) {
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.stream.destroy();
        resolve();
      }, this.timeouts.idleMs);
      const finish = (): void => {
        clearTimeout(timer);
        resolve();
      };
      if (data !== undefined) {
        this.stream.end(data, finish);
      } else {
        this.stream.end(finish);
      }
      this.stream.once('close', finish);
    });
  }

  /** Half-closes and waits for the peer to finish and close its side. */
  async endAndWaitForClose(timeoutMs: number): Promise<void> {
    if (this.stream.destroyed) {
      return;
    }
    const closed = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.stream.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.stream.on('data', () => undefined);
    this.stream.resume();
    this.stream.end();
    await closed;
    this.stream.destroy();
  }

  /**
   * Closes after a failure reply without resetting the connection: unread bytes at
   * close would make the kernel send a reset that can swallow the reply.
   */
  async endDiscarding(data: string | Buffer, graceMs = 2_000): Promise<void> {
    this.queue.length = 0;
    this.queued = 0;
    this.stream.removeAllListeners('data');
    this.stream.on('data', () => undefined);
    this.stream.resume();
    await this.end(data);
    if (!this.stream.destroyed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.stream.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.stream.destroy();
  }

  destroy(error?: Error): void {
    this.stream.destroy(error);
  }

  private waitForDrain(): Promise<void> {
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.stream.off('drain', onDrain);
        this.stream.off('close', onClose);
        this.stream.off('error', onClose);
      };
      const onDrain = (): void => {
        cleanup();
        resolve();
      };
      const onClose = (): void => {
        cleanup();
        reject(this.failure ? new DfsError('PROTOCOL', `connection failed: ${this.failure.message}`) : new DfsError('PROTOCOL', 'connection closed by the peer'));
      };
      const drainMs = this.timeouts.drainMs ?? this.timeouts.idleMs;
      const timer = setTimeout(() => {
        cleanup();
        reject(new DfsError('TIMEOUT', `peer did not read for ${drainMs} ms`));
      }, drainMs);
      this.stream.on('drain', onDrain);
      this.stream.once('close', onClose);
      this.stream.once('error', onClose);
    });
  }

  private take(): Buffer | undefined {
    const chunk = this.queue.shift();
    if (chunk) {
      this.queued -= chunk.length;
      if (this.queued < LOW_WATER && this.stream.isPaused() && !this.ended) {
        this.stream.resume();
      }
    }
    return chunk;
  }

  private unshift(chunk: Buffer): void {
    if (chunk.length > 0) {
      this.queue.unshift(chunk);
      this.queued += chunk.length;
    }
  }

  private throwIfFailed(): void {
    if (this.failure) {
      throw new DfsError('PROTOCOL', `connection failed: ${this.failure.message}`);
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private waitForData(timeoutMs: number): Promise<boolean> {
    if (this.queue.length > 0 || this.ended || this.failure) {
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(false);
      }, timeoutMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }
}
