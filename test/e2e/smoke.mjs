// Smoke test of the e2e machinery (no DFS code involved): code-server on a
// temp workspace, the workbench in headless Chromium, the Explorer, the
// command palette, context menus, multi-select and (when the repo's
// @vscode/vsce is installed) a .vsix installed into code-server.
//
//   bash test/e2e/setup.sh && node test/e2e/smoke.mjs
//
// Screenshots go to test/e2e/output/ (DFS_E2E_OUTPUT overrides).
// Exit code 0 when every step passed.

import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  E2E, activeEditorText, explorerContextMenu, multiSelectExplorerItems, openExplorerFile,
  runCommand, screenshot, waitForExplorerItem, waitForNotification,
} from './code-server.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const t0 = Date.now();
const results = [];

async function step(name, fn) {
  const t = Date.now();
  try {
    const note = await fn();
    results.push({ name, ok: note !== 'skip' });
    console.log(`${note === 'skip' ? 'skip' : 'ok  '} ${name} (${((Date.now() - t) / 1000).toFixed(1)}s)`);
  } catch (e) {
    results.push({ name, ok: false, error: e });
    console.log(`FAIL ${name} (${((Date.now() - t) / 1000).toFixed(1)}s)\n${e.stack ?? e}`);
    if (e.fatal) throw e;
  }
}

/** Builds a tiny extension with a palette command and an Explorer context-menu entry. */
function buildSmokeVsix() {
  let vsce;
  try {
    vsce = path.join(path.dirname(createRequire(path.join(REPO, 'package.json')).resolve('@vscode/vsce/package.json')), 'vsce');
  } catch {
    return null;
  }
  const dir = e2e.tempDir('dfs-e2e-smoke-ext-');
  const pkg = {
    name: 'dfs-e2e-smoke', displayName: 'DFS e2e smoke', publisher: 'dfs-e2e', version: '0.0.1',
    license: 'MIT', engines: { vscode: '^1.90.0' }, main: './extension.js', activationEvents: [],
    contributes: {
      commands: [
        { command: 'dfsSmoke.hello', title: 'Hello', category: 'DFS Smoke' },
        { command: 'dfsSmoke.showSelection', title: 'Show Selection', category: 'DFS Smoke' },
      ],
      menus: { 'explorer/context': [{ command: 'dfsSmoke.showSelection', group: 'z_dfs' }] },
    },
  };
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  fs.writeFileSync(path.join(dir, 'README.md'), '# DFS e2e smoke\nA throwaway extension for the e2e smoke test.\n');
  fs.writeFileSync(path.join(dir, 'LICENSE'), 'MIT\n');
  fs.writeFileSync(path.join(dir, 'extension.js'), `
const vscode = require('vscode');
const path = require('path');
exports.activate = (ctx) => {
  ctx.subscriptions.push(
    vscode.commands.registerCommand('dfsSmoke.hello', () => vscode.window.showInformationMessage('DFS smoke says hello')),
    vscode.commands.registerCommand('dfsSmoke.showSelection', (uri, uris) => {
      const all = (uris && uris.length ? uris : [uri]).filter(Boolean).map((u) => path.basename(u.fsPath)).sort();
      vscode.window.showInformationMessage('DFS smoke selection: ' + all.join(', '));
    }));
};
`);
  const out = path.join(dir, 'smoke.vsix');
  const res = spawnSync(process.execPath, [vsce, 'package', '--allow-missing-repository', '--skip-license', '-o', out],
    { cwd: dir, encoding: 'utf8', input: 'y\n', timeout: 120_000 });
  if (res.status !== 0 || !fs.existsSync(out)) {
    throw new Error(`vsce package failed (${res.status}):\n${res.stdout}\n${res.stderr}`);
  }
  return out;
}

const e2e = new E2E({ name: 'smoke' });
let page;
try {
  const workspace = e2e.makeWorkspace({
    'a.txt': 'hello from a\n',
    'b.md': '# b\n\nsecond file\n',
    'docs/c.txt': 'nested file\n',
  });

  let vsix = null;
  await step('build and install a .vsix', async () => {
    vsix = buildSmokeVsix();
    if (!vsix) { console.log('     (@vscode/vsce not installed in the repo: extension steps skipped)'); return 'skip'; }
    await e2e.installExtension(vsix);
  });

  let server;
  await step('code-server answers on a free port', async () => {
    try {
      server = await e2e.startCodeServer({ workspace });
    } catch (e) { e.fatal = true; throw e; }
    console.log(`     ${server.url}`);
  });

  await step('workbench renders with the workspace in the Explorer', async () => {
    try {
      page = await e2e.openWorkbench(server);
      for (const name of ['a.txt', 'b.md', 'docs']) await waitForExplorerItem(page, name);
    } catch (e) { e.fatal = true; throw e; }
    await screenshot(page, 'smoke-1-workbench');
  });

  await step('open a file from the Explorer', async () => {
    await openExplorerFile(page, 'a.txt');
    const text = await activeEditorText(page);
    if (!text.includes('hello from a')) throw new Error(`editor shows ${JSON.stringify(text)}`);
    await screenshot(page, 'smoke-2-open-file');
  });

  await step('command palette: View: Toggle Terminal', async () => {
    await runCommand(page, 'View: Toggle Terminal');
    await page.locator('.terminal-wrapper .xterm, .integrated-terminal .xterm').first().waitFor({ state: 'visible' });
    await screenshot(page, 'smoke-3-terminal');
  });

  await step('multi-select two files and Compare Selected from the context menu', async () => {
    await multiSelectExplorerItems(page, ['a.txt', 'b.md']);
    await explorerContextMenu(page, 'b.md', 'Compare Selected');
    const diff = page.locator('.monaco-diff-editor').first();
    await diff.locator('.view-lines').filter({ hasText: 'second file' }).first().waitFor({ state: 'visible' });
    await diff.locator('.view-lines').filter({ hasText: 'hello from a' }).first().waitFor({ state: 'visible' });
    await screenshot(page, 'smoke-4-compare');
  });

  await step('extension: palette command and Explorer context menu on a multi-selection', async () => {
    if (!vsix) return 'skip';
    await runCommand(page, 'DFS Smoke: Hello');
    await waitForNotification(page, 'DFS smoke says hello');
    await multiSelectExplorerItems(page, ['a.txt', 'docs']);
    await explorerContextMenu(page, 'docs', 'Show Selection');
    await waitForNotification(page, 'DFS smoke selection: a.txt, docs');
    await screenshot(page, 'smoke-5-extension');
  });
} catch (e) {
  if (!e.fatal) {
    results.push({ name: 'unexpected error', ok: false, error: e });
    console.log(`FAIL ${e.stack ?? e}`);
  }
} finally {
  if (page && results.some((r) => !r.ok && r.error)) await screenshot(page, 'smoke-failure').catch(() => {});
  await e2e.close();
}

const passed = results.filter((r) => r.ok).length;
const failed = results.filter((r) => !r.ok && r.error).length;
const skipped = results.length - passed - failed;
console.log(`screenshots and smoke-code-server.log in ${e2e.paths.output} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
console.log(`smoke: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed ? 1 : 0);
