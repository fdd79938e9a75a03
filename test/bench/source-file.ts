import { createCipheriv, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import { MiB } from './options';

/**
 * Writes `size` incompressible bytes (AES-256-CTR keystream under a random key: as
 * random as /dev/urandom for any compressor, and several times faster to make), then
 * fsyncs, so no dirty page of the source is still being written back during a
 * measurement.
 */
export async function generateSource(file: string, size: number): Promise<void> {
  const cipher = createCipheriv('aes-256-ctr', randomBytes(32), randomBytes(16));
  const zeros = Buffer.alloc(4 * MiB);
  const handle = await fs.open(file, 'w');
  try {
    let written = 0;
    while (written < size) {
      const block = cipher.update(zeros.subarray(0, Math.min(zeros.length, size - written)));
      await handle.write(block, 0, block.length);
      written += block.length;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Reads a file in `chunk`-sized pieces, as DfsClient.uploadFile does (positional reads, fresh buffers). */
export async function* readChunks(file: string, chunk: number): AsyncGenerator<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    let position = 0;
    while (position < size) {
      const buffer = Buffer.allocUnsafe(Math.min(chunk, size - position));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) {
        throw new Error(`${file} shrank while it was read`);
      }
      position += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}
