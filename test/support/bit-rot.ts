import { execFileSync } from 'child_process';
import { promises as fs } from 'fs';

/**
 * Bit rot: one byte changed in place with the file's modification time put back to
 * the nanosecond (touch -r from a copy made with cp -p), so inode, size and mtime all
 * still match what the node recorded when it placed the file. Only the hash can tell:
 * the node streams such a copy and cuts the download one chunk short at the end.
 */
export async function rot(file: string, offset: number): Promise<void> {
  const reference = `${file}.mtime-reference`;
  execFileSync('cp', ['-p', file, reference]);
  const handle = await fs.open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, offset);
    byte[0] ^= 0x5a;
    await handle.write(byte, 0, 1, offset);
  } finally {
    await handle.close();
  }
  execFileSync('touch', ['-r', reference, file]);
  await fs.rm(reference);
}
