import * as assert from 'assert';
import { spawn } from 'child_process';
import * as path from 'path';
import * as readline from 'readline';
import { ESCAPED_ERROR_MARK } from '../../server/node/escaped-errors';
import { takeEscapes } from '../support/escapes';

describe('escaped errors', () => {
  it('are logged in a recognisable form and recorded for the test suites, and the process carries on', async () => {
    takeEscapes();
    const module = path.resolve(__dirname, '..', '..', 'server', 'node', 'escaped-errors.js');
    const script = `
      const { keepServing } = require(${JSON.stringify(module)});
      keepServing('replica 9', (line) => console.log('[replica 9] ' + line));
      setTimeout(() => { throw new Error('thrown from a timer'); }, 1);
      setTimeout(() => { void Promise.reject(new Error('rejected and never caught')); }, 5);
      setTimeout(() => console.log('still serving after both'), 50);
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    readline.createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.strictEqual(code, 0);
    assert.ok(lines.includes('still serving after both'), lines.join('\n'));
    const logged = lines.filter((line) => line.includes(ESCAPED_ERROR_MARK));
    assert.strictEqual(logged.length, 2, lines.join('\n'));
    assert.match(logged[0], /\(uncaught exception\).*thrown from a timer/);
    assert.match(logged[1], /\(unhandled rejection\).*rejected and never caught/);
    const recorded = takeEscapes();
    assert.deepStrictEqual(
      recorded.map((escape) => [escape.role, escape.kind, escape.pid]),
      [
        ['replica 9', 'uncaught exception', child.pid],
        ['replica 9', 'unhandled rejection', child.pid],
      ],
    );
    assert.match(recorded[0].stack, /thrown from a timer/);
  });
});
