import * as assert from 'assert';
import { spawn } from 'child_process';
import { existsSync, promises as fs } from 'fs';
import { builtinModules } from 'module';
import * as path from 'path';
import { inflateRawSync } from 'zlib';
import { REPO_ROOT } from '../support/processes';

interface ZipEntry {
  name: string;
  read(): Buffer;
}

/** Lists a zip's files from its central directory; enough of the format for a .vsix. */
function readZip(zip: Buffer): ZipEntry[] {
  const endSignature = 0x06054b50;
  let end = -1;
  for (let offset = zip.length - 22; offset >= Math.max(0, zip.length - 22 - 0xffff); offset--) {
    if (zip.readUInt32LE(offset) === endSignature) {
      end = offset;
      break;
    }
  }
  assert.ok(end >= 0, 'the .vsix is a zip (end of central directory found)');
  const count = zip.readUInt16LE(end + 10);
  let offset = zip.readUInt32LE(end + 16);
  const entries: ZipEntry[] = [];
  for (let index = 0; index < count; index++) {
    assert.strictEqual(zip.readUInt32LE(offset), 0x02014b50, 'central directory entry signature');
    const method = zip.readUInt16LE(offset + 10);
    const compressedSize = zip.readUInt32LE(offset + 20);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const localOffset = zip.readUInt32LE(offset + 42);
    const name = zip.subarray(offset + 46, offset + 46 + nameLength).toString('utf8');
    entries.push({
      name,
      read: () => {
        assert.strictEqual(zip.readUInt32LE(localOffset), 0x04034b50, `local header of ${name}`);
        const dataStart = localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
        const data = zip.subarray(dataStart, dataStart + compressedSize);
        return method === 0 ? Buffer.from(data) : inflateRawSync(data);
      },
    });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

function runPackage(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', 'package'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.once('close', (code) => resolve({ code, output }));
  });
}

describe('npm run package', function () {
  // Two production builds and vsce: a few seconds, more on a busy two-core machine.
  this.timeout(180_000);
  let entries: ZipEntry[];

  before(async () => {
    const vsix = path.join(REPO_ROOT, 'dfs.vsix');
    await fs.rm(vsix, { force: true });
    const { code, output } = await runPackage();
    assert.strictEqual(code, 0, `npm run package failed:\n${output}`);
    entries = readZip(await fs.readFile(vsix));
  });

  it('ships only the bundles, media, README, LICENSE and package.json', async () => {
    const names = entries.map((entry) => entry.name).sort();
    const media = (await fs.readdir(path.join(REPO_ROOT, 'media'))).map((file) => `extension/media/${file}`);
    const expected = ['[Content_Types].xml', 'extension.vsixmanifest', 'extension/LICENSE.txt', 'extension/dist/dfs.js', 'extension/dist/extension.js', 'extension/package.json', ...media];
    if (existsSync(path.join(REPO_ROOT, 'README.md'))) {
      expected.push('extension/readme.md');
    } else {
      console.log('      note: the repository has no README.md yet, so the .vsix carries none');
    }
    assert.deepStrictEqual(names, expected.sort());
  });

  it('bundles need no node_modules: they require only Node built-ins and vscode', () => {
    const builtins = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)]);
    for (const bundle of ['extension/dist/extension.js', 'extension/dist/dfs.js']) {
      const code = entries.find((entry) => entry.name === bundle)!.read().toString('utf8');
      const required = [...code.matchAll(/require\(["']([^"']+)["']\)/g)].map((match) => match[1]);
      assert.ok(required.length > 0, `${bundle} is a CommonJS bundle`);
      for (const name of required) {
        assert.ok(builtins.has(name) || (name === 'vscode' && bundle.endsWith('extension.js')), `${bundle} requires ${name}`);
      }
      assert.doesNotMatch(code, /sourceMappingURL/, `${bundle} is a production build`);
    }
  });

  it('carries a manifest whose entry point is in the package', () => {
    const manifest = JSON.parse(entries.find((entry) => entry.name === 'extension/package.json')!.read().toString('utf8'));
    assert.strictEqual(manifest.main, './dist/extension.js');
    assert.ok(manifest.contributes.commands.length > 0);
    assert.match(entries.find((entry) => entry.name === 'extension/LICENSE.txt')!.read().toString('utf8'), /MIT License[\s\S]*DFS contributors/);
  });
});
