// A walk through the packaged extension in a real VS Code (code-server in headless
// Chromium), with screenshots. Not part of `npm test`: it needs the browser and
// code-server that `bash test/e2e/setup.sh` caches. Run:
//   npm run package && node test/extension/code-server-walkthrough.mjs
// Screenshots land in $DFS_E2E_OUTPUT (default test/e2e/output).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  E2E, clickDialogButton, contextMenuOn, explorerContextMenu, runCommand, screenshot,
  waitForExplorerItem, waitForNotification, waitForStatusBar,
} from '../e2e/code-server.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const REPLICAS = 2;

/** Consecutive free ports: REPLICAS for the replicas, then one for the primary. */
async function freeRun(count) {
  const isFree = (port) => new Promise((resolve) => {
    const server = net.createServer().once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    let free = true;
    for (let port = base; port < base + count && free; port++) free = await isFree(port);
    if (free) return base;
  }
}

const results = [];
let page;
async function step(name, action) {
  const started = Date.now();
  try {
    await action();
    results.push(true);
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    results.push(false);
    console.log(`FAIL ${name}: ${error.message.split('\n').slice(0, 8).join('\n     ')}`);
    if (page) await screenshot(page, `walkthrough-fail-${results.length}`).catch(() => {});
  }
}
const dfsView = () => page.locator('.activitybar .action-item a[aria-label^="DFS"]').first().click();
const explorer = () => page.locator('.activitybar .action-item a[aria-label^="Explorer"]').first().click();
const treeRow = (label) => page.locator('.sidebar .monaco-list-row').filter({ hasText: label }).first();

const e2e = new E2E();
try {
  const workspace = e2e.makeWorkspace({ 'a.txt': 'hello from a\n', 'docs/c.txt': 'nested\n', 'docs/deeper/d.txt': 'deeper\n' });
  const dataDir = e2e.tempDir('dfs-walkthrough-data-');
  const basePort = await freeRun(REPLICAS + 1);
  const stored = (...parts) => path.join(dataDir, ...parts);
  await e2e.installExtension(path.join(REPO, 'dfs.vsix'));
  const server = await e2e.startCodeServer({
    workspace,
    settings: { 'dfs.port': basePort + REPLICAS, 'dfs.basePort': basePort, 'dfs.replicas': REPLICAS, 'dfs.clientId': 'alice', 'dfs.dataDir': dataDir },
  });
  page = await e2e.openWorkbench(server);

  await step('status bar says offline after start-up', () => waitForStatusBar(page, 'DFS offline', { timeout: 60_000 }));
  await step('the DFS view shows the welcome content', async () => {
    await dfsView();
    await page.locator('.welcome-view-content').filter({ hasText: 'No DFS cluster answers' }).first().waitFor({ state: 'visible' });
    await screenshot(page, 'walkthrough-1-welcome');
  });
  await step('DFS: Start Cluster starts the servers as tasks', async () => {
    await runCommand(page, 'DFS: Start Cluster');
    await waitForNotification(page, 'cluster started', { timeout: 60_000 });
    await waitForStatusBar(page, `DFS ${REPLICAS}/${REPLICAS}`);
    await screenshot(page, 'walkthrough-2-started');
  });
  await step('Upload to DFS from the Explorer: a file', async () => {
    await explorer();
    await waitForExplorerItem(page, 'a.txt');
    await explorerContextMenu(page, 'a.txt', 'Upload to DFS');
    await waitForNotification(page, '1 uploaded');
    if (fs.readFileSync(stored(`replica${REPLICAS}`, 'alice', 'a.txt'), 'utf8') !== 'hello from a\n') throw new Error('a.txt not on the last replica');
  });
  await step('Upload to DFS from the Explorer: a folder', async () => {
    await explorerContextMenu(page, 'docs', 'Upload to DFS');
    await waitForNotification(page, '2 uploaded');
    if (!fs.existsSync(stored('servidor', 'alice', 'docs', 'deeper', 'd.txt'))) throw new Error('docs/deeper/d.txt not stored');
  });
  await step('the same name again asks Overwrite / Skip / Overwrite All', async () => {
    await explorerContextMenu(page, 'a.txt', 'Upload to DFS');
    await page.locator('.monaco-dialog-box').filter({ hasText: 'already stored' }).waitFor({ state: 'visible' });
    await screenshot(page, 'walkthrough-3-overwrite');
    await clickDialogButton(page, 'Skip');
    await waitForNotification(page, '1 skipped');
  });
  await step('the tree shows the files with folders', async () => {
    await dfsView();
    await treeRow('docs').waitFor({ state: 'visible' });
    await treeRow('a.txt').hover();
    await screenshot(page, 'walkthrough-4-tree');
  });
  await step('clicking a file opens it read-only', async () => {
    await treeRow('a.txt').click();
    await page.locator('.editor-group-container.active .view-lines').filter({ hasText: 'hello from a' }).first().waitFor({ state: 'visible' });
    await screenshot(page, 'walkthrough-5-open');
  });
  await step('Delete asks, then removes every copy', async () => {
    await contextMenuOn(page, treeRow('a.txt'), 'Delete');
    await clickDialogButton(page, 'Delete');
    for (;;) {
      if (!fs.existsSync(stored('servidor', 'alice', 'a.txt')) && !fs.existsSync(stored('replica1', 'alice', 'a.txt'))) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await treeRow('a.txt').waitFor({ state: 'detached' });
  });
  await step('the servers run in the terminal panel', async () => {
    await runCommand(page, 'View: Toggle Terminal');
    await page.locator('.terminal-tabs-entry, .tabs-list .monaco-list-row').filter({ hasText: 'primary' }).first().waitFor({ state: 'visible' });
    await screenshot(page, 'walkthrough-6-terminal');
  });
  await step('DFS: Stop Cluster stops them', async () => {
    await runCommand(page, 'DFS: Stop Cluster');
    await waitForNotification(page, 'cluster stopped');
    await waitForStatusBar(page, 'DFS offline');
    await screenshot(page, 'walkthrough-7-stopped');
  });
} finally {
  await e2e.close();
}
const passed = results.filter(Boolean).length;
console.log(`walkthrough: ${passed} passed, ${results.length - passed} failed`);
process.exit(passed === results.length ? 0 : 1);
