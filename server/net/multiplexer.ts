import { Duplex } from 'stream';
import {
  DfsError,
  Frame,
  FrameDecoder,
  FrameType,
  INITIAL_STREAM_WINDOW,
  MAX_FRAME_PAYLOAD,
  MAX_STREAM_ID,
  ResetCode,
  decodeReset,
  decodeWindow,
  encodeFrameHeader,
  encodeReset,
  encodeWindow,
} from '../protocol';

export interface MuxOptions {
  /** The side that opened the physical connection numbers its streams odd, the other even. */
  role: 'initiator' | 'acceptor';
  /** Silence this long (no frame at all, PINGs unanswered) means the peer is gone. */
  idleMs: number;
  /** Streams the peer may have open at once; beyond it a new one is reset with REFUSED. */
  maxStreams?: number;
  /** Bytes already read off the transport after the preface. */
  initialBytes?: Buffer;
  /** Called for every stream the peer opens. */
  onStream?: (stream: MuxStream) => void;
  /** Who the peer is, for messages ("replica 2 (127.0.0.1:4001)"). */
  peer: string;
  /**
   * A client's connection: it keeps the process alive only while a stream is open (a
   * CLI exits once its last request is done), and closes after this long with none.
   */
  closeWhenIdleMs?: number;
}

const DEFAULT_MAX_STREAMS = 4096;
/** Up to this size a payload is copied behind its header: cheaper than a second buffer in the writev. */
const SMALL_PAYLOAD = 16 * 1024;

/**
 * Many streams over one duplex (a TCP or TLS socket): each stream is itself a Duplex,
 * so a Connection and a server session run over it unchanged. Each direction of each
 * stream has its own credit, so a stream whose reader is slow stops only itself.
 */
export class MuxSession {
  readonly closed: Promise<void>;
  private readonly streams = new Map<number, MuxStream>();
  private readonly decoder = new FrameDecoder({ dataPieces: true });
  private readonly drainWaiters: (() => void)[] = [];
  private nextId: number;
  /** The highest id the peer has opened: frames for lower ids that are gone are late, not wrong. */
  private highestPeerId = 0;
  private lastHeardMs = Date.now();
  private readonly timer: NodeJS.Timeout;
  private failure: DfsError | undefined;
  private corked = false;
  private idleSinceMs = Date.now();
  private resolveClosed!: () => void;

  constructor(
    readonly transport: Duplex,
    private readonly options: MuxOptions,
  ) {
    this.nextId = options.role === 'initiator' ? 1 : 2;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    transport.on('data', (chunk: Buffer) => this.receive(chunk));
    transport.on('drain', () => this.flushDrainWaiters());
    transport.on('error', (error: Error) => this.lose(`${error.message}`));
    transport.on('end', () => this.lose('the peer closed the connection'));
    transport.on('close', () => this.lose('the connection closed'));
    transport.resume();
    const tick = Math.max(10, Math.floor(options.idleMs / 3));
    this.timer = setInterval(() => this.checkLiveness(), tick);
    this.timer.unref();
    if (options.initialBytes && options.initialBytes.length > 0) {
      this.receive(options.initialBytes);
    }
    this.holdProcess();
  }

  /** False once the physical connection is lost: every stream on it is gone. */
  get alive(): boolean {
    return this.failure === undefined;
  }

  /** Streams open now, in both directions. */
  get openStreams(): number {
    return this.streams.size;
  }

  get peer(): string {
    return this.options.peer;
  }

  /** A new stream to the peer; fails when the connection is lost or its ids are used up (open another connection). */
  openStream(): MuxStream {
    if (this.failure) {
      throw this.failure;
    }
    if (this.nextId > MAX_STREAM_ID) {
      throw new DfsError('PROTOCOL', `the connection to ${this.options.peer} has used up its stream ids`);
    }
    const id = this.nextId;
    this.nextId += 2;
    const stream = new MuxStream(this, id);
    this.streams.set(id, stream);
    this.holdProcess();
    this.send(FrameType.OPEN, id);
    return stream;
  }

  /** Closes the physical connection: every stream on it is reset. */
  close(reason = 'closed by this side'): void {
    this.lose(reason);
    this.transport.destroy();
  }

  /** @internal Writes one frame; false when the transport's buffer is full (wait with whenDrained). */
  send(type: FrameType, streamId: number, payload?: Buffer): boolean {
    if (this.failure) {
      return true;
    }
    const header = encodeFrameHeader(type, streamId, payload?.length ?? 0);
    if (!this.corked) {
      // Frames written in one turn of the event loop (every stream's small steps, woken
      // by whatever arrived on any socket in that turn) leave in one writev: flushed per
      // tick, a small upload cost the primary a syscall per frame, 18% of its CPU.
      this.corked = true;
      this.transport.cork();
      setImmediate(this.flush);
    }
    if (!payload || payload.length === 0) {
      return this.transport.write(header);
    }
    if (payload.length <= SMALL_PAYLOAD) {
      return this.transport.write(Buffer.concat([header, payload]));
    }
    this.transport.write(header);
    return this.transport.write(payload);
  }

  private readonly flush = (): void => {
    this.corked = false;
    this.transport.uncork();
  };

  /** @internal Runs `then` once the transport has room again (or at once when the session is gone). */
  whenDrained(then: () => void): void {
    if (this.failure || !this.transport.writableNeedDrain) {
      then();
      return;
    }
    this.drainWaiters.push(then);
  }

  /** @internal */
  forget(id: number): void {
    if (this.streams.delete(id) && this.streams.size === 0) {
      this.idleSinceMs = Date.now();
      this.holdProcess();
    }
  }

  /** With closeWhenIdleMs, the transport holds the event loop open only while a stream is. */
  private holdProcess(): void {
    if (this.options.closeWhenIdleMs === undefined || this.failure) {
      return;
    }
    const socket = this.transport as Duplex & { ref?: () => void; unref?: () => void };
    if (this.streams.size > 0) {
      socket.ref?.();
    } else {
      socket.unref?.();
    }
  }

  /** @internal */
  get lost(): DfsError | undefined {
    return this.failure;
  }

  private flushDrainWaiters(): void {
    for (const waiter of this.drainWaiters.splice(0)) {
      waiter();
    }
  }

  private receive(chunk: Buffer): void {
    if (this.failure) {
      return;
    }
    this.lastHeardMs = Date.now();
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      this.close(`${this.options.peer} sent a malformed frame: ${(error as Error).message}`);
      return;
    }
    for (const frame of frames) {
      try {
        this.dispatch(frame);
      } catch (error) {
        this.close(`${this.options.peer} broke the framing: ${(error as Error).message}`);
        return;
      }
      if (this.failure) {
        return;
      }
    }
  }

  private dispatch(frame: Frame): void {
    switch (frame.type) {
      case FrameType.PING:
        this.send(FrameType.PONG, 0, frame.payload);
        return;
      case FrameType.PONG:
        return;
      case FrameType.OPEN:
        this.accept(frame.streamId);
        return;
    }
    const stream = this.streams.get(frame.streamId);
    if (!stream) {
      if (this.wasOpened(frame.streamId)) {
        // A frame that crossed our RESET or END on the wire: the stream is gone, drop it.
        return;
      }
      throw new DfsError('PROTOCOL', `${FrameType[frame.type]} for stream ${frame.streamId}, which was never opened`);
    }
    switch (frame.type) {
      case FrameType.DATA:
        stream.receiveData(frame.payload);
        return;
      case FrameType.END:
        stream.receiveEnd();
        return;
      case FrameType.RESET: {
        const { code, reason } = decodeReset(frame.payload);
        stream.receiveReset(code, reason);
        return;
      }
      case FrameType.WINDOW:
        stream.receiveWindow(decodeWindow(frame.payload));
        return;
    }
  }

  private wasOpened(id: number): boolean {
    const ours = (id % 2 === 1) === (this.options.role === 'initiator');
    return ours ? id < this.nextId : id <= this.highestPeerId;
  }

  private accept(id: number): void {
    const ours = (id % 2 === 1) === (this.options.role === 'initiator');
    if (ours || id <= this.highestPeerId) {
      throw new DfsError('PROTOCOL', `OPEN with stream id ${id}, which the peer may not use now`);
    }
    this.highestPeerId = id;
    if (!this.options.onStream) {
      this.send(FrameType.RESET, id, encodeReset(ResetCode.REFUSED, 'this side opens the streams'));
      return;
    }
    if (this.streams.size >= (this.options.maxStreams ?? DEFAULT_MAX_STREAMS)) {
      this.send(FrameType.RESET, id, encodeReset(ResetCode.REFUSED, `${this.streams.size} streams are open already`));
      return;
    }
    const stream = new MuxStream(this, id);
    this.streams.set(id, stream);
    this.options.onStream(stream);
  }

  private checkLiveness(): void {
    const idleClose = this.options.closeWhenIdleMs;
    if (idleClose !== undefined && this.streams.size === 0 && Date.now() - this.idleSinceMs >= idleClose) {
      this.close('no request for a while');
      return;
    }
    const silentMs = Date.now() - this.lastHeardMs;
    if (silentMs >= this.options.idleMs) {
      this.close(`${this.options.peer} sent nothing for ${silentMs} ms, not even an answer to a PING`);
    } else if (silentMs >= this.options.idleMs / 3) {
      this.send(FrameType.PING, 0, Buffer.alloc(8));
    }
  }

  private lose(reason: string): void {
    if (this.failure) {
      return;
    }
    this.failure = new DfsError('PROTOCOL', `the connection to ${this.options.peer} was lost: ${reason}`);
    clearInterval(this.timer);
    for (const stream of [...this.streams.values()]) {
      stream.receiveReset(ResetCode.CONNECTION_LOST, reason);
    }
    this.streams.clear();
    this.flushDrainWaiters();
    this.transport.destroy();
    this.resolveClosed();
  }
}

/**
 * One stream: a Duplex whose writes become DATA frames within the credit the peer
 * granted, whose end() is END, and whose destroy() before both sides ended is RESET.
 */
export class MuxStream extends Duplex {
  private sendCredit = INITIAL_STREAM_WINDOW;
  /** DATA the peer may still send before we grant more. */
  private receiveCredit = INITIAL_STREAM_WINDOW;
  /** Bytes pushed to our reader that it has not taken yet, nor granted back. */
  private pushedTotal = 0;
  private grantedTotal = 0;
  private sentEnd = false;
  private receivedEnd = false;
  private reset = false;
  private waitingForCredit: (() => void) | undefined;

  constructor(
    private readonly session: MuxSession,
    readonly id: number,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
  }

  /** Where the physical connection goes, for the logs of a server serving this stream. */
  get remoteAddress(): string | undefined {
    return (this.session.transport as Duplex & { remoteAddress?: string }).remoteAddress;
  }

  get remotePort(): number | undefined {
    return (this.session.transport as Duplex & { remotePort?: number }).remotePort;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.sendFrom(chunk, 0, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.reset) {
      callback(this.session.lost ?? new DfsError('PROTOCOL', 'the stream was reset'));
      return;
    }
    this.sentEnd = true;
    this.session.send(FrameType.END, this.id);
    callback();
  }

  override _read(): void {
    this.grantCredit();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.reset && !this.session.lost) {
      if (!error && this.receivedEnd) {
        // The peer is done and so are we: a clean close, whatever we had left unsaid.
        if (!this.sentEnd) {
          this.sentEnd = true;
          this.session.send(FrameType.END, this.id);
        }
      } else if (!(this.sentEnd && this.receivedEnd)) {
        this.session.send(FrameType.RESET, this.id, encodeReset(ResetCode.CANCEL, error?.message ?? 'abandoned'));
      }
    }
    this.reset = true;
    this.session.forget(this.id);
    const resume = this.waitingForCredit;
    this.waitingForCredit = undefined;
    resume?.();
    callback(error);
  }

  /** @internal */
  receiveData(payload: Buffer): void {
    if (this.receivedEnd) {
      this.resetWith(ResetCode.PROTOCOL, 'DATA after END');
      return;
    }
    if (payload.length > this.receiveCredit) {
      this.resetWith(ResetCode.FLOW_CONTROL, `sent ${payload.length} bytes with ${this.receiveCredit} of credit left`);
      return;
    }
    this.receiveCredit -= payload.length;
    this.pushedTotal += payload.length;
    this.push(payload);
    this.grantCredit();
  }

  /** @internal */
  receiveEnd(): void {
    if (this.receivedEnd) {
      this.resetWith(ResetCode.PROTOCOL, 'a second END');
      return;
    }
    this.receivedEnd = true;
    this.push(null);
    if (this.sentEnd && this.writableFinished) {
      // Both sides ended: the stream is over even if nobody reads the end.
      this.session.forget(this.id);
    }
  }

  /** @internal */
  receiveReset(code: ResetCode, reason: string): void {
    if (this.reset) {
      return;
    }
    this.reset = true;
    this.session.forget(this.id);
    const error =
      code === ResetCode.CONNECTION_LOST
        ? (this.session.lost ?? new DfsError('PROTOCOL', `the connection to ${this.session.peer} was lost: ${reason}`))
        : new DfsError('PROTOCOL', `${this.session.peer} reset the stream (${ResetCode[code] ?? code}): ${reason}`);
    this.destroy(error);
  }

  /** @internal */
  receiveWindow(increment: number): void {
    this.sendCredit += increment;
    if (this.sendCredit > 0x7fff_ffff) {
      this.resetWith(ResetCode.FLOW_CONTROL, 'credit beyond 2^31 - 1 bytes');
      return;
    }
    const resume = this.waitingForCredit;
    this.waitingForCredit = undefined;
    resume?.();
  }

  private resetWith(code: ResetCode, reason: string): void {
    this.session.send(FrameType.RESET, this.id, encodeReset(code, reason));
    this.reset = true;
    this.session.forget(this.id);
    this.destroy(new DfsError('PROTOCOL', `stream ${this.id} from ${this.session.peer} broke the rules (${ResetCode[code]}): ${reason}`));
  }

  /** Sends `chunk` from `offset` in frames as credit and the transport allow, then calls back. */
  private sendFrom(chunk: Buffer, offset: number, callback: (error?: Error | null) => void): void {
    for (;;) {
      if (this.reset) {
        callback(this.session.lost ?? new DfsError('PROTOCOL', 'the stream was reset'));
        return;
      }
      if (offset >= chunk.length) {
        callback();
        return;
      }
      if (this.sendCredit <= 0) {
        this.waitingForCredit = () => this.sendFrom(chunk, offset, callback);
        return;
      }
      const size = Math.min(chunk.length - offset, this.sendCredit, MAX_FRAME_PAYLOAD);
      const piece = offset === 0 && size === chunk.length ? chunk : chunk.subarray(offset, offset + size);
      this.sendCredit -= size;
      offset += size;
      if (!this.session.send(FrameType.DATA, this.id, piece)) {
        const next = offset;
        this.session.whenDrained(() => this.sendFrom(chunk, next, callback));
        return;
      }
    }
  }

  /** Grants back what our reader has taken, in steps big enough that WINDOW frames stay rare. */
  private grantCredit(): void {
    if (this.reset || this.receivedEnd) {
      return;
    }
    const taken = this.pushedTotal - this.readableLength;
    const ungranted = taken - this.grantedTotal;
    if (ungranted >= INITIAL_STREAM_WINDOW / 4) {
      this.grantedTotal += ungranted;
      this.receiveCredit += ungranted;
      this.session.send(FrameType.WINDOW, this.id, encodeWindow(ungranted));
    }
  }
}
