import { DfsError } from './errors';

export interface DecodedLine {
  line: string;
  /** False when the line was taken at a pause in the stream, the framing of the report's clients. */
  terminated: boolean;
  /** Bytes that arrived after the line; they belong to whatever follows it. */
  rest: Buffer;
}

const NEWLINE = 0x0a;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Splits one header line off a byte stream. It never touches a socket: the adapter
 * feeds it chunks and, when the peer pauses, may ask for the unterminated line.
 */
export class LineDecoder {
  private buffered: Buffer[] = [];
  private length = 0;

  constructor(private readonly maxBytes: number) {}

  get pending(): number {
    return this.length;
  }

  /** Returns the line once a newline arrives; throws once the line outgrows the limit. */
  push(chunk: Buffer): DecodedLine | undefined {
    const newline = chunk.indexOf(NEWLINE);
    if (newline === -1) {
      this.buffered.push(chunk);
      this.length += chunk.length;
      if (this.length > this.maxBytes) {
        throw tooLong(this.maxBytes);
      }
      return undefined;
    }
    if (this.length + newline > this.maxBytes) {
      throw tooLong(this.maxBytes);
    }
    const lineBytes = Buffer.concat([...this.buffered, chunk.subarray(0, newline)]);
    this.buffered = [];
    this.length = 0;
    return { line: decode(stripCarriageReturn(lineBytes)), terminated: true, rest: chunk.subarray(newline + 1) };
  }

  /** The report's clients send a header in one write with no terminator: the pause is the frame. */
  takeUnterminated(): DecodedLine | undefined {
    if (this.length === 0) {
      return undefined;
    }
    const lineBytes = Buffer.concat(this.buffered);
    this.buffered = [];
    this.length = 0;
    return { line: decode(stripCarriageReturn(lineBytes)), terminated: false, rest: Buffer.alloc(0) };
  }
}

function stripCarriageReturn(bytes: Buffer): Buffer {
  return bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, bytes.length - 1) : bytes;
}

function decode(bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new DfsError('BAD_HEADER', 'header is not valid UTF-8');
  }
}

function tooLong(maxBytes: number): DfsError {
  return new DfsError('HEADER_TOO_LONG', `header is longer than ${maxBytes} bytes`);
}
