import { promises as fs } from 'fs';
import * as net from 'net';
import * as path from 'path';
import { throughput, Throughput } from './copy-limit';
import { CpuMeter } from './cpu-usage';
import { DurableFile } from './durable-file';
import { readChunks } from './source-file';
import { settleDisk } from './settle';

/**
 * The raw loopback baseline: one TCP stream of the same bytes, from the source file
 * (read in the client's chunk size) to a minimal server in this process that writes
 * them into one file with DiskStore's durability, then answers OK. No protocol, no
 * hashing: what one copy over loopback costs at best.
 */
export async function measureLoopback(source: string, scratch: string, chunk: number): Promise<Throughput> {
  const root = path.join(scratch, 'loopback');
  await fs.mkdir(path.join(root, '.dfs', 'tmp'), { recursive: true });
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    void (async () => {
      try {
        const file = await DurableFile.create(root, 'bench', 'loopback.bin');
        // Events rather than for-await: the iterator would destroy the socket at the end of the bytes, before the reply.
        await new Promise<void>((resolve, reject) => {
          socket.on('data', (piece: Buffer) => {
            socket.pause();
            file.write(piece).then(() => socket.resume(), reject);
          });
          socket.once('end', resolve);
          socket.once('error', reject);
        });
        await file.commit();
        socket.end('OK\n');
      } catch (error) {
        socket.destroy(error as Error);
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await settleDisk();
  try {
    const meter = new CpuMeter({});
    const started = process.hrtime.bigint();
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const reply = new Promise<string>((resolve, reject) => {
      let text = '';
      socket.on('data', (data: Buffer) => (text += data.toString()));
      socket.once('end', () => resolve(text));
      socket.once('error', reject);
    });
    let bytes = 0;
    for await (const piece of readChunks(source, chunk)) {
      bytes += piece.length;
      if (!socket.write(piece)) {
        await new Promise((resolve) => socket.once('drain', resolve));
      }
    }
    socket.end();
    const answer = await reply;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = meter.stop();
    socket.destroy();
    if (answer.trim() !== 'OK') {
      throw new Error(`loopback server answered ${JSON.stringify(answer)}`);
    }
    return { ...throughput(bytes, seconds), cpu };
  } finally {
    server.close();
    await fs.rm(root, { recursive: true, force: true });
    await settleDisk();
  }
}
