import { spawn } from 'child_process';
import { startServer, stopServer } from './launcher';

/**
 * The "link rate" baseline of the multihost bench: one raw TCP stream of `bytes`
 * from a sender on one host to a sink on another, both their own Node processes
 * (started through `ip netns exec` where the host is a namespace), timed by the
 * sender from connect until the sink, having read every byte, answers with the
 * count. No protocol, no disk: what one stream over the shaped links reaches.
 */

const SINK = `
const net = require('net');
const [host] = process.argv.slice(1);
const server = net.createServer((socket) => {
  let received = 0;
  socket.on('data', (chunk) => (received += chunk.length));
  socket.on('end', () => socket.end(String(received)));
  socket.on('error', () => undefined);
});
server.listen(0, host, () => console.log('raw sink listening on ' + host + ':' + server.address().port));
process.once('SIGTERM', () => process.exit(0));
`;

const SENDER = `
const net = require('net');
const [host, port, total] = process.argv.slice(1);
const chunk = Buffer.alloc(256 * 1024, 0x5a);
const started = process.hrtime.bigint();
const socket = net.connect(Number(port), host, () => {
  let sent = 0;
  const pump = () => {
    while (sent < Number(total)) {
      const piece = chunk.subarray(0, Math.min(chunk.length, Number(total) - sent));
      sent += piece.length;
      if (!socket.write(piece)) return void socket.once('drain', pump);
    }
    socket.end();
  };
  pump();
});
let answer = '';
socket.on('data', (data) => (answer += data));
socket.on('end', () => console.log(JSON.stringify({ received: Number(answer), seconds: Number(process.hrtime.bigint() - started) / 1e9 })));
socket.on('error', (error) => { console.error(error.message); process.exit(1); });
`;

export interface LinkRate {
  /** Which hosts, as "from -> to". */
  path: string;
  bytes: number;
  seconds: number;
  /** 10^6 bytes per second. */
  mbps: number;
}

export interface StreamEnd {
  name: string;
  /** Where it listens or what it dials. */
  address: string;
  /** `ip netns exec NS`, or [] for the root namespace. */
  launcher: string[];
}

export async function measureLinkRate(from: StreamEnd, to: StreamEnd, bytes: number, scratch: string): Promise<LinkRate> {
  const sink = await startServer(`raw sink on ${to.name}`, [SINK, to.address], { dataDir: scratch, script: '-e', launcher: to.launcher });
  try {
    const [command, ...args] = [...from.launcher, process.execPath, '-e', SENDER, to.address, String(sink.port), String(bytes)];
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (data) => (stdout += data));
      child.stderr!.on('data', (data) => (stderr += data));
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`raw sender on ${from.name} exited ${code}: ${stderr.trim()}`))));
    });
    const { received, seconds } = JSON.parse(output.trim()) as { received: number; seconds: number };
    if (received !== bytes) {
      throw new Error(`the raw sink on ${to.name} received ${received} of ${bytes} bytes`);
    }
    return { path: `${from.name} -> ${to.name}`, bytes, seconds, mbps: bytes / 1e6 / seconds };
  } finally {
    await stopServer(sink.child);
  }
}
