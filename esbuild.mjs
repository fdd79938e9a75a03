// Bundles the servers/CLI, the extension and the benchmark (with its minimal baseline server) into dist/.
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
};

const builds = [
  { ...common, entryPoints: ['server/cli/main.ts'], outfile: 'dist/dfs.js', banner: { js: '#!/usr/bin/env node' } },
  { ...common, entryPoints: ['extension/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  { ...common, entryPoints: ['test/bench/bench.ts'], outfile: 'dist/bench.js' },
  { ...common, entryPoints: ['test/bench/minimal-server.ts'], outfile: 'dist/bench-minimal-server.js' },
];

import { existsSync } from 'fs';
const present = builds.filter((build) => existsSync(build.entryPoints[0]));

if (watch) {
  for (const build of present) {
    const context = await esbuild.context(build);
    await context.watch();
  }
} else {
  await Promise.all(present.map((build) => esbuild.build(build)));
}
