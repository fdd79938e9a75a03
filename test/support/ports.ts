import * as net from 'net';

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A run of `count` consecutive free ports, as the report's replica layout needs. */
export async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    // Below the kernel's ephemeral range (32768+), where outgoing connections would collide.
    const base = 10_000 + Math.floor(Math.random() * 22_000);
    let free = true;
    for (let port = base; port < base + Math.max(count, 1) && free; port++) {
      free = await isFree(port);
    }
    if (free) {
      return base;
    }
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

/** Whether something accepts connections on 127.0.0.1:port now. */
export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
