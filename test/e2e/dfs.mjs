// End-to-end test of the packaged DFS extension in a real VS Code: code-server
// (VS Code in the browser) in headless Chromium, driven through playwright-core
// the way a user would, with the bytes on every server's disk checked as well.
//
//   bash test/e2e/run.sh            # what CI runs: setup, package if stale, this script
//   node test/e2e/dfs.mjs           # after setup.sh; packages dfs.vsix itself if it is stale
//
// Steps (each leaves a screenshot in test/e2e/output/, DFS_E2E_OUTPUT overrides):
//   1. DFS: Start Cluster from the palette     -> 01-start-cluster.png
//   2. Explorer right-click a file, Upload     -> 02-upload-file.png
//   3. multi-select 2 files + a folder, Upload -> 03-upload-multi.png
//   4. open a stored file from the tree        -> 04-open.png
//   5. Delete from the tree, confirm           -> 05-delete-confirm.png, 05-delete.png
//   7. edit a stored file, Ctrl+S              -> 07-edit-save.png
//   8. a save over a change made elsewhere,
//      resolved through Compare                -> 08-conflict-dialog.png, 08-conflict-compare.png, 08-conflict-resolved.png
//   9. upload twice, Show Versions, Restore    -> 09-versions-list.png, 09-restore-notification.png, 09-versions-restore.png
//  10. Rename or Move... from the tree         -> 10-rename.png
//  11. DFS: Sync Folder..., confirm, save a file -> 11-sync-folder.png
//  12. kill -9 a replica, Restart it inline   -> 12-replica-down.png, 12-replica-restarted.png
//      from the Cluster view
//   6. DFS: Stop Cluster                       -> 06-stop-cluster.png
// Exit code 0 only when every step passes and nothing this run started is left running.
//
// Environment: DFS_E2E_VSIX=path uses that .vsix as it is (no packaging);
// DFS_E2E_CACHE, DFS_E2E_OUTPUT, DFS_E2E_KEEP as in code-server.mjs.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  E2E, TIMEOUTS, activeEditorLines, answerInputBox, clearNotifications, clickInlineAction, clickNotificationButton, contextMenuOn,
  expandViewPane, explorerContextMenu, filesOnDisk, killPidsNow, multiSelectExplorerItems, openActivityBarView, openExplorer,
  openExplorerFile, pickQuickPickItem, processesWith, quickInput, quickPickRows, runCommand, screenshot, statusBarText,
  viewTreeItem, visibleNotifications, waitForDialog, waitForExplorerItem, waitForNotification, waitForStatusBar,
} from './code-server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const CLIENT = 'e2e-alice';
const REPLICAS = 3;
const SERVER_DIRS = ['servidor', ...Array.from({ length: REPLICAS }, (_, i) => `replica${i + 1}`)];
const DFS_SCRIPT = 'dist/dfs.js';

/** Generous: CI and this machine have 2 busy cores. None of these is a sleep; each bounds a wait for a condition. */
const T = {
  clusterStart: 180_000, // Start Cluster waits up to 30 s per server itself
  status: 60_000, // the extension polls the cluster every 10 s
  upload: 90_000,
  disk: 60_000,
  ui: 45_000,
  processes: 30_000,
  package: 600_000,
  whole: 20 * 60_000,
};
TIMEOUTS.ui = Math.max(TIMEOUTS.ui, T.ui);

const BINARY = Buffer.from(Array.from({ length: 6000 }, (_, i) => (i * 131 + (i >> 7) * 17 + 3) & 0xff));
const WORKSPACE = {
  'hello.txt': 'Hello from the DFS end-to-end test.\nSecond line: ünïcödé ✓\nThird line, the last.\n',
  'notes.md': '# Notes\n\nKept in several copies by DFS.\n',
  'data.json': `${JSON.stringify({ replicas: REPLICAS, client: CLIENT, ok: true }, null, 2)}\n`,
  'docs/guide.txt': 'A guide inside a folder.\n',
  'docs/images/pixel.bin': BINARY,
  'untouched.txt': 'This file is never uploaded.\n',
};
const bytesOf = (name) => Buffer.from(WORKSPACE[name]);
// Steps 9 and 10: a file written after start-up, uploaded twice, so it has versions.
const VERSIONED = 'versions.md';
const VERSION_ONE = Buffer.from('# Versions\n\nThe first version.\n');
const VERSION_TWO = Buffer.from('# Versions\n\nThe second version, edited after the first upload.\n');

// ---------------------------------------------------------------- small utilities

const t0 = Date.now();
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
const log = (...a) => console.log('[dfs-e2e]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Matches an element whose whole text is s. (`:text-is()` would not do for `.label-name`: it
 * matches only the innermost element with that text, here the span inside it.) */
const exactText = (s) => new RegExp(`^\\s*${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);

/** Polls check() (returns a problem string, or null when satisfied) until it is satisfied or timeout; throws the last problem. */
async function waitUntil(what, check, { timeout, interval = 250 } = {}) {
  const deadline = Date.now() + timeout;
  let problem = 'not checked';
  for (;;) {
    try {
      problem = await check();
    } catch (e) {
      if (e.fatal) throw e; // no point waiting on
      problem = e.message;
    }
    if (!problem) return;
    if (Date.now() >= deadline) throw new Error(`${what}: still not true after ${secs(timeout)}: ${problem}`);
    await sleep(interval);
  }
}

/**
 * Waits for a notification containing ok; fails at once when one matching fail shows
 * (an error from the extension), quoting what was shown.
 */
async function waitForToast(page, ok, { fail = /^DFS: .*(fail|did not|not uploaded|nothing was|error)|^DFS upload: .*(failed|skipped|cancelled)/i, timeout = T.ui } = {}) {
  await waitUntil(`notification "${ok}"`, async () => {
    const seen = await visibleNotifications(page);
    if (seen.some((t) => t.includes(ok))) return null;
    const bad = seen.find((t) => fail.test(t));
    if (bad) throw Object.assign(new Error(`instead of "${ok}" the extension reported: ${JSON.stringify(bad)}`), { fatal: true });
    return `notifications shown: ${JSON.stringify(seen)}`;
  }, { timeout });
}

/**
 * VS Code keeps a finished progress notification up for a moment so it does not
 * flicker; wait (bounded, never failing) for those of DFS to go so screenshots show the result.
 */
async function waitForProgressToastsGone(page, timeout = 15_000) {
  await waitUntil('progress notifications to close', async () => {
    const busy = (await visibleNotifications(page)).filter((t) => /^DFS: (uploading|downloading|starting the cluster|stopping the cluster|restoring|renaming|deleting|copying)/.test(t));
    return busy.length ? JSON.stringify(busy) : null;
  }, { timeout }).catch(() => {});
}

/** A run of count consecutive ports that are free on 127.0.0.1 now, below the ephemeral range. */
async function freePortRun(count) {
  const isFree = (port) => new Promise((resolve) => {
    const srv = net.createServer().once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (32_000 - 20_000 - count));
    let free = true;
    for (let p = base; p < base + count && free; p++) free = await isFree(p);
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports found in 20000-32000`);
}

const describePorts = (basePort) => `replicas on ports ${basePort}-${basePort + REPLICAS - 1}, primary on ${basePort + REPLICAS}`;

/** Stored names a step leaves in place on purpose (a synced folder's files), so later steps' waitForDisk does not call them unexpected. */
const storedBySteps = new Set();

/** Files of CLIENT on one server's disk: name -> bytes. */
function storedOn(dataDir, serverDir) {
  const root = path.join(dataDir, serverDir, CLIENT);
  const out = new Map();
  const walk = (dir, prefix) => {
    let entries = [];
    try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(dir, e.name), rel);
      else if (e.isFile()) out.set(rel, fs.readFileSync(path.join(dir, e.name)));
    }
  };
  walk(root, '');
  return out;
}

/**
 * Waits until every server (primary and each replica) holds exactly `present` for CLIENT,
 * byte for byte, and none of `absent`; names in `ignore` may or may not be there.
 */
async function waitForDisk(dataDir, { present = [], absent = [], ignore = [] }, timeout = T.disk) {
  await waitUntil('bytes on every server\'s disk', () => {
    const problems = [];
    for (const server of SERVER_DIRS) {
      const files = storedOn(dataDir, server);
      for (const name of present) {
        const got = files.get(name);
        if (!got) problems.push(`${server}/${CLIENT}/${name} missing`);
        else if (!got.equals(bytesOf(name))) problems.push(`${server}/${CLIENT}/${name} differs (${got.length} bytes, expected ${bytesOf(name).length})`);
      }
      for (const name of absent) if (files.has(name)) problems.push(`${server}/${CLIENT}/${name} still there`);
      for (const name of files.keys()) {
        if (!present.includes(name) && !absent.includes(name) && !ignore.includes(name) && !storedBySteps.has(name)) problems.push(`${server}/${CLIENT}/${name} unexpected`);
      }
    }
    return problems.length ? problems.join('; ') : null;
  }, { timeout });
}

// ---------------------------------------------------------------- the .vsix

const VSIX_INPUTS = ['package.json', '.vscodeignore', 'README.md', 'LICENSE', 'esbuild.mjs', 'dist/dfs.js', 'dist/extension.js', 'media', 'extension', 'server'];

/** The newest file among what goes into the .vsix (sources, bundles, manifest). */
function newestInput() {
  let newest = { file: null, mtimeMs: 0 };
  const visit = (p) => {
    let st;
    try { st = fs.statSync(p); } catch { return; }
    if (st.isDirectory()) {
      for (const e of fs.readdirSync(p)) visit(path.join(p, e));
    } else if (st.mtimeMs > newest.mtimeMs) {
      newest = { file: path.relative(REPO, p), mtimeMs: st.mtimeMs };
    }
  };
  for (const i of VSIX_INPUTS) visit(path.join(REPO, i));
  return newest;
}

/** dfs.vsix, packaged with `npm run package` when it is missing or older than its inputs; copied so a concurrent repackage cannot change it under us. */
function prepareVsix(e2e, output) {
  const source = process.env.DFS_E2E_VSIX ? path.resolve(process.env.DFS_E2E_VSIX) : path.join(REPO, 'dfs.vsix');
  if (process.env.DFS_E2E_VSIX) {
    if (!fs.existsSync(source)) throw new Error(`DFS_E2E_VSIX=${source} does not exist`);
    log(`vsix: ${source} (DFS_E2E_VSIX; not repackaged)`);
  } else {
    const newest = newestInput();
    const st = fs.existsSync(source) ? fs.statSync(source) : null;
    if (st && st.mtimeMs >= newest.mtimeMs) {
      log(`vsix: ${path.relative(REPO, source)} is up to date`);
    } else {
      log(`vsix: ${st ? `dfs.vsix is older than ${newest.file}` : 'dfs.vsix is missing'}: running npm run package`);
      const packageLog = path.join(output, 'dfs-package.log');
      const started = Date.now();
      const res = spawnSync('npm', ['run', 'package'], { cwd: REPO, encoding: 'utf8', timeout: T.package, maxBuffer: 64 << 20 });
      fs.writeFileSync(packageLog, `${res.stdout ?? ''}${res.stderr ?? ''}`);
      if (res.status !== 0 || !fs.existsSync(source)) {
        const tail = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
        throw new Error(`npm run package failed (exit ${res.status ?? res.signal}); full output in ${packageLog}:\n${tail}`);
      }
      log(`vsix: packaged in ${secs(Date.now() - started)}`);
    }
  }
  const copy = path.join(e2e.tempDir('dfs-e2e-vsix-'), 'dfs.vsix');
  fs.copyFileSync(source, copy);
  return copy;
}

// ---------------------------------------------------------------- steps

const STEPS = [
  { n: 1, title: 'DFS: Start Cluster; status bar and tree show the cluster up', shot: '01-start-cluster', needs: [] },
  { n: 2, title: 'Explorer right-click a file -> Upload to DFS; in the tree and on every server', shot: '02-upload-file', needs: [1] },
  { n: 3, title: 'Multi-select two files and a folder -> Upload to DFS; all in the tree and on disk', shot: '03-upload-multi', needs: [1] },
  { n: 4, title: 'Open a stored file from the tree; its content shown', shot: '04-open', needs: [2] },
  { n: 5, title: 'Delete from the tree with confirmation; gone from tree and every server', shot: '05-delete', needs: [2] },
  // Steps run in the order of this table; a step's number names it (and its screenshot), not its place.
  // -- edit and save in place (7, 8)
  { n: 7, title: 'Edit a stored file opened from the tree, Ctrl+S; the new bytes on every server', shot: '07-edit-save', needs: [1] },
  { n: 8, title: 'A save over a change made elsewhere asks; Compare shows both; saving again stores yours on every server', shot: '08-conflict-resolved', shotInBody: true, needs: [7] },

  // -- versions and rename (9, 10)
  { n: 9, title: 'Upload a file twice, Show Versions from the tree, restore the older one; its bytes and a new generation on every server', shot: '09-versions-restore', needs: [1] },
  { n: 10, title: 'Rename a stored file from the tree; old name gone, new name with the same bytes on every server', shot: '10-rename', needs: [9] },

  // -- sync a folder (11)
  { n: 11, title: 'DFS: Sync Folder... on the workspace folder, confirm; a save uploads; status bar shows synced', shot: '11-sync-folder', needs: [1] },

  // -- cluster health (12)
  { n: 12, title: 'A replica killed (kill -9) shows down in the Cluster view; an upload is refused offering Restart Replica; its inline Restart brings it back and it catches up', shot: '12-replica-restarted', needs: [1] },

  { n: 6, title: 'DFS: Stop Cluster; welcome content again, no server process left', shot: '06-stop-cluster', needs: [1] },
];
const SHOTS = [...STEPS.map((s) => s.shot), '05-delete-confirm', '08-conflict-dialog', '08-conflict-compare', '12-replica-down', 'dfs-failure'];

const results = new Map(); // n -> { ok, detail, ms }
const COUNT = STEPS.length;

async function main() {
  const e2e = new E2E({ name: 'dfs' });
  const output = e2e.paths.output;
  for (const shot of SHOTS) fs.rmSync(path.join(output, `${shot}.png`), { force: true });
  const logsDir = path.join(output, 'dfs-logs');
  fs.rmSync(logsDir, { recursive: true, force: true });
  const dataDir = e2e.tempDir('dfs-e2e-data-');
  let page;
  let server;
  let setupError = null;
  let workspaceDir;
  const ourServers = () => processesWith(DFS_SCRIPT, dataDir);

  // Whatever happens (exception, signal, watchdog), no server of this run survives us.
  process.once('exit', () => killPidsNow(ourServers().map((p) => p.pid)));
  const watchdog = setTimeout(() => {
    log(`FAIL: the whole run took longer than ${secs(T.whole)}; aborting (code-server log: ${e2e.logFile})`);
    process.exit(1);
  }, T.whole);
  watchdog.unref();

  const dfsView = () => page.locator('[id="workbench.view.extension.dfs"]');
  const dfsRow = (label, level) => dfsView().locator(`.monaco-list-row[aria-level="${level}"]`)
    .filter({ has: page.locator('.label-name', { hasText: exactText(label) }) }).first();
  const treeRows = () => dfsView().locator('.monaco-list-row').evaluateAll(
    (rows) => rows.map((r) => `${'  '.repeat(Number(r.getAttribute('aria-level') || 1) - 1)}${r.querySelector('.label-name')?.textContent ?? '?'}`));
  const showDfs = async () => {
    await openActivityBarView(page, 'DFS');
    await dfsView().waitFor({ state: 'visible' });
  };
  /** Waits for a stored file's row: its label at its depth, its tooltip naming CLIENT/name (so it sits under our client). */
  const waitForStoredRow = async (name) => {
    const parts = name.split('/');
    const row = dfsRow(parts.at(-1), parts.length + 1);
    await row.waitFor({ state: 'visible', timeout: T.ui }).catch(async () => {
      throw new Error(`the DFS tree shows no row for ${CLIENT}/${name}; it shows: ${JSON.stringify(await treeRows())}`);
    });
    const label = await row.getAttribute('aria-label');
    if (!label?.startsWith(`${CLIENT}/${name}\n`)) throw new Error(`row "${parts.at(-1)}" is not ${CLIENT}/${name}: its label is ${JSON.stringify(label)}`);
    return row;
  };
  const expandFolder = async (label, level) => {
    const row = dfsRow(label, level);
    await row.waitFor({ state: 'visible', timeout: T.ui }).catch(async () => {
      throw new Error(`the DFS tree shows no folder "${label}" at depth ${level}; it shows: ${JSON.stringify(await treeRows())}`);
    });
    if (await row.getAttribute('aria-expanded') !== 'true') {
      await row.click();
      await page.waitForFunction((el) => el.getAttribute('aria-expanded') === 'true', await row.elementHandle(), { timeout: T.ui });
    }
  };

  /** Whether the extension's "DFS" output channel (as written to disk, any window session) has a line containing text. */
  const dfsChannelHas = (text) => {
    const logs = path.join(server.userDataDir, 'logs');
    return fs.readdirSync(logs, { recursive: true }).map(String)
      .filter((f) => f.endsWith(path.join('dfs-team.dfs', 'DFS.log')))
      .some((f) => fs.readFileSync(path.join(logs, f), 'utf8').includes(text));
  };
  /**
   * Points dfs.port/dfs.basePort at new ports in the user settings file and reloads the
   * window (code-server does not notice the file changing behind its back), then waits
   * until the extension runs with them.
   */
  const moveCluster = async (basePort) => {
    const file = path.join(server.userDataDir, 'User', 'settings.json');
    const settings = JSON.parse(fs.readFileSync(file, 'utf8'));
    Object.assign(settings, { 'dfs.port': basePort + REPLICAS, 'dfs.basePort': basePort });
    fs.writeFileSync(file, JSON.stringify(settings, null, 2));
    page = await e2e.openWorkbench(server);
    await waitUntil('the extension to run with the new ports', () => (
      dfsChannelHas(`primary 127.0.0.1:${basePort + REPLICAS},`) ? null : `no line naming primary 127.0.0.1:${basePort + REPLICAS} in the DFS log yet`
    ), { timeout: T.status });
    await waitForStatusBar(page, 'DFS offline', { timeout: T.status });
  };

  // ---------------------------------------------------------------- edit and save in place (7, 8)
  const EDIT = {
    name: 'edit-me.txt',
    stored: 'Stored by another writer.\nEdit me in VS Code.\n',
    typed: 'Edited here. ',
    mine: 'Mine: ',
  };
  EDIT.saved = EDIT.typed + EDIT.stored;
  EDIT.theirs = EDIT.saved.replace(/^Edited/, 'Theirs'); // the same size as what the editor saved
  EDIT.resolved = EDIT.mine + EDIT.saved;
  const editorTab = (name) => page.locator(`.tabs-container .tab[data-resource-name="${name}"]`).first();
  /** Runs `node dist/dfs.js <command> ...` against the cluster, as another writer would. */
  const otherWriter = (command, name, text) => {
    const settings = JSON.parse(fs.readFileSync(path.join(server.userDataDir, 'User', 'settings.json'), 'utf8'));
    const args = [path.join(REPO, DFS_SCRIPT), command];
    if (command === 'upload') {
      const dir = e2e.tempDir('dfs-e2e-writer-');
      fs.writeFileSync(path.join(dir, name), text);
      args.push(path.join(dir, name));
    } else {
      args.push(name);
    }
    args.push('--server', `127.0.0.1:${settings['dfs.port']}`, '--client', CLIENT);
    return execFileSync(process.execPath, args, { encoding: 'utf8', timeout: T.upload });
  };
  /** Waits until every server holds exactly `text` as `name` (or, with null, none holds it). */
  const waitForBytesEverywhere = (name, text) => waitUntil(`${name} on every server`, () => {
    const problems = SERVER_DIRS.flatMap((dir) => {
      const got = storedOn(dataDir, dir).get(name);
      if (text === null) return got ? [`${dir} still holds it`] : [];
      return !got ? [`${dir}: missing`] : got.equals(Buffer.from(text)) ? [] : [`${dir}: ${JSON.stringify(got.toString())}`];
    });
    return problems.length ? problems.join('; ') : null;
  }, { timeout: T.disk });
  const waitForEditorText = (text) => waitUntil('editor content', async () => {
    const lines = await activeEditorLines(page);
    return lines.join('\n').startsWith(text.replace(/\n$/, '')) ? null : `editor shows ${JSON.stringify(lines)}`;
  }, { timeout: T.ui });
  const typeAtStart = async (text) => {
    await page.locator('.editor-group-container.active .monaco-editor .view-lines').first().click();
    await page.keyboard.press('Control+Home');
    await page.keyboard.type(text);
  };

  // ---------------------------------------------------------------- setup
  try {
    const vsix = prepareVsix(e2e, output);
    const workspace = e2e.makeWorkspace(WORKSPACE);
    workspaceDir = workspace;
    const basePort = await freePortRun(REPLICAS + 1);
    log(`data dir ${dataDir}; ${describePorts(basePort)}; client id ${CLIENT}`);
    await e2e.installExtension(vsix);
    server = await e2e.startCodeServer({
      workspace,
      settings: {
        'dfs.host': '127.0.0.1',
        'dfs.port': basePort + REPLICAS,
        'dfs.basePort': basePort,
        'dfs.replicas': REPLICAS,
        'dfs.clientId': CLIENT,
        'dfs.dataDir': dataDir,
      },
    });
    log(`code-server ${server.url} (log ${server.logFile})`);
    page = await e2e.openWorkbench(server);
    for (const name of ['hello.txt', 'notes.md', 'data.json', 'docs']) await waitForExplorerItem(page, name, { timeout: T.ui });
    // The extension activates on start-up finished and then reports the (absent) cluster.
    await waitForStatusBar(page, 'DFS offline', { timeout: 2 * T.status });
  } catch (e) {
    setupError = e;
    log(`FAIL setup: ${e.message}`);
  }

  // ---------------------------------------------------------------- the steps
  const bodies = {
    1: async () => {
      for (let attempt = 1; ; attempt++) {
        await runCommand(page, 'DFS: Start Cluster');
        try {
          await waitForToast(page, 'DFS: cluster started', { timeout: T.clusterStart });
          break;
        } catch (e) {
          // Another test on this shared machine may take one of our free ports between our check and
          // the servers' bind: the extension then reports the port in use and stops what it started.
          if (attempt >= 3 || !/in use|EADDRINUSE/i.test(e.message)) throw e;
          const basePort = await freePortRun(REPLICAS + 1);
          log(`   a port was taken meanwhile (${e.message.slice(0, 300)}); moving to ${describePorts(basePort)} and starting again`);
          await moveCluster(basePort);
          await clearNotifications(page);
        }
      }
      await waitForStatusBar(page, `DFS ${REPLICAS}/${REPLICAS}`, { timeout: T.status });
      await showDfs();
      const own = viewTreeItem(page, 'Stored Files', CLIENT);
      await own.waitFor({ state: 'visible', timeout: T.ui }).catch(async () => {
        throw new Error(`the DFS tree does not show client ${CLIENT}; it shows: ${JSON.stringify(await treeRows())}`);
      });
      const ownText = await own.innerText();
      if (!/you/.test(ownText)) throw new Error(`client row does not say it is ours: ${JSON.stringify(ownText)}`);
      let procs = [];
      await waitUntil('server processes', () => {
        procs = ourServers();
        const primaries = procs.filter((p) => / primary /.test(p.cmdline)).length;
        const replicas = procs.filter((p) => / replica /.test(p.cmdline)).length;
        return primaries === 1 && replicas === REPLICAS ? null : `${primaries} primary and ${replicas} replica processes with ${DFS_SCRIPT} --data-dir ${dataDir}`;
      }, { timeout: T.processes });
      return `status bar "DFS ${REPLICAS}/${REPLICAS}", tree shows ${CLIENT} (you), ${procs.length} server processes (pids ${procs.map((p) => p.pid).join(' ')})`;
    },

    2: async () => {
      await openExplorer(page);
      await explorerContextMenu(page, 'hello.txt', 'Upload to DFS');
      await waitForToast(page, 'DFS upload: 1 uploaded.', { timeout: T.upload });
      await waitForDisk(dataDir, { present: ['hello.txt'] });
      await showDfs();
      await waitForStoredRow('hello.txt');
      return `hello.txt under ${CLIENT} in the tree; identical bytes in ${SERVER_DIRS.join(', ')}`;
    },

    3: async () => {
      const names = ['notes.md', 'data.json', 'docs/guide.txt', 'docs/images/pixel.bin'];
      await openExplorer(page);
      await multiSelectExplorerItems(page, ['notes.md', 'data.json', 'docs']);
      await explorerContextMenu(page, 'docs', 'Upload to DFS');
      await waitForToast(page, `DFS upload: ${names.length} uploaded.`, { timeout: T.upload });
      const earlier = results.get(2)?.ok ? ['hello.txt'] : [];
      await waitForDisk(dataDir, { present: [...earlier, ...names], ignore: ['hello.txt'] });
      await showDfs();
      for (const name of [...earlier, 'notes.md', 'data.json']) await waitForStoredRow(name);
      await expandFolder('docs', 2);
      await waitForStoredRow('docs/guide.txt');
      await expandFolder('images', 3);
      await waitForStoredRow('docs/images/pixel.bin');
      if (await dfsRow('untouched.txt', 2).count()) throw new Error('untouched.txt, never uploaded, is in the tree');
      return `tree: ${(await treeRows()).map((r) => r.trim()).join(', ')}; ${names.length} files identical on all ${SERVER_DIRS.length} servers`;
    },

    4: async () => {
      const expected = WORKSPACE['hello.txt'].replace(/\n$/, '').split('\n');
      await showDfs();
      const row = await waitForStoredRow('hello.txt');
      await row.click();
      const tab = page.locator('.tabs-container .tab.active[data-resource-name="hello.txt"]');
      await tab.waitFor({ state: 'visible', timeout: T.ui });
      let lines = [];
      const same = () => JSON.stringify(lines.slice(0, expected.length)) === JSON.stringify(expected) && lines.slice(expected.length).every((l) => l.trim() === '');
      await waitUntil('editor content', async () => {
        lines = await activeEditorLines(page);
        return same() ? null : `editor shows ${JSON.stringify(lines)}, expected ${JSON.stringify(expected)}`;
      }, { timeout: T.ui });
      return `editor shows the ${expected.length} lines of hello.txt, read through the dfs: file system`;
    },

    5: async () => {
      const rest = results.get(3)?.ok ? ['notes.md', 'data.json', 'docs/guide.txt', 'docs/images/pixel.bin'] : [];
      await runCommand(page, 'View: Close All Editors');
      await showDfs();
      const row = await waitForStoredRow('hello.txt');
      await contextMenuOn(page, row, 'Delete', { timeout: T.ui });
      const dialog = await waitForDialog(page, `Delete "${CLIENT}/hello.txt" from DFS?`, { timeout: T.ui });
      await screenshot(page, '05-delete-confirm');
      await dialog.locator('.dialog-buttons .monaco-button').filter({ hasText: /^Delete$/ }).first().click();
      await dialog.waitFor({ state: 'hidden', timeout: T.ui });
      await dfsRow('hello.txt', 2).waitFor({ state: 'detached', timeout: T.ui }).catch(async () => {
        throw new Error(`hello.txt is still in the tree after Delete; it shows: ${JSON.stringify(await treeRows())}`);
      });
      await waitForDisk(dataDir, { present: rest, absent: ['hello.txt'] });
      for (const name of rest.filter((n) => !n.includes('/'))) await waitForStoredRow(name);
      return `confirmed in the modal; hello.txt gone from the tree and from ${SERVER_DIRS.join(', ')}${rest.length ? `; the other ${rest.length} files kept` : ''}`;
    },

    // -- edit and save in place (7, 8)
    7: async () => {
      // Stored by another writer (the command line), so the tree shows it through its change feed.
      await otherWriter('upload', EDIT.name, EDIT.stored);
      await waitForBytesEverywhere(EDIT.name, EDIT.stored);
      await runCommand(page, 'View: Close All Editors');
      await showDfs();
      const row = await waitForStoredRow(EDIT.name);
      await row.click();
      const tab = editorTab(EDIT.name);
      await tab.waitFor({ state: 'visible', timeout: T.ui });
      await waitForEditorText(EDIT.stored);
      await typeAtStart(EDIT.typed);
      await waitUntil('the tab to show unsaved changes', async () => (/\bdirty\b/.test(await tab.getAttribute('class') ?? '') ? null : 'not dirty'), { timeout: T.ui });
      await page.keyboard.press('Control+S');
      await waitUntil('the save to finish', async () => (/\bdirty\b/.test(await tab.getAttribute('class') ?? '') ? 'the tab still shows unsaved changes' : null), { timeout: T.upload });
      await waitForBytesEverywhere(EDIT.name, EDIT.saved);
      return `typed "${EDIT.typed}" into ${EDIT.name} opened from the tree, Ctrl+S; ${SERVER_DIRS.join(', ')} hold the ${Buffer.byteLength(EDIT.saved)} new bytes`;
    },

    8: async () => {
      const tab = editorTab(EDIT.name);
      await tab.waitFor({ state: 'visible', timeout: T.ui });
      await typeAtStart(EDIT.mine);
      await waitUntil('the tab to show unsaved changes', async () => (/\bdirty\b/.test(await tab.getAttribute('class') ?? '') ? null : 'not dirty'), { timeout: T.ui });
      // Behind the editor's back, another writer stores a version of the same size: VS Code's own
      // check (time and size) cannot see it; the primary's precondition does.
      await otherWriter('upload', EDIT.name, EDIT.theirs);
      await waitForBytesEverywhere(EDIT.name, EDIT.theirs);
      await page.keyboard.press('Control+S');
      const dialog = await waitForDialog(page, `"${CLIENT}/${EDIT.name}" changed on DFS after you opened it`, { timeout: T.upload });
      await screenshot(page, '08-conflict-dialog');
      await dialog.locator('.dialog-buttons .monaco-button').filter({ hasText: /^Compare$/ }).first().click();
      await dialog.waitFor({ state: 'hidden', timeout: T.ui });
      const diff = page.locator('.editor-group-container.active .monaco-diff-editor').first();
      await diff.waitFor({ state: 'visible', timeout: T.ui });
      const side = (which) => diff.locator(`.editor.${which} .view-lines`).first();
      await waitUntil('the diff editor to show theirs (left) and yours (right)', async () => {
        const [left, right] = [await side('original').innerText(), await side('modified').innerText()].map((t) => t.replace(/\u00a0/g, ' '));
        return left.includes(EDIT.theirs.split('\n')[0]) && right.includes(EDIT.resolved.split('\n')[0]) ? null : `left ${JSON.stringify(left)}, right ${JSON.stringify(right)}`;
      }, { timeout: T.ui });
      await waitForBytesEverywhere(EDIT.name, EDIT.theirs); // Compare saved nothing
      await waitForNotification(page, 'not saved yet', { timeout: T.ui });
      await screenshot(page, '08-conflict-compare');
      // Resolved: saving again (Retry) stores yours over exactly the version compared with.
      await clickNotificationButton(page, 'not saved yet', 'Retry');
      await waitForBytesEverywhere(EDIT.name, EDIT.resolved);
      await waitUntil('the save to finish', async () => (/\bdirty\b/.test(await tab.getAttribute('class') ?? '') ? 'the tab still shows unsaved changes' : null), { timeout: T.upload });
      await screenshot(page, '08-conflict-resolved');
      // Leave the servers as the earlier steps left them, for the steps after this one.
      await runCommand(page, 'View: Close All Editors');
      await otherWriter('rm', EDIT.name);
      await waitForBytesEverywhere(EDIT.name, null);
      return `the primary refused the save over another writer's same-size version; the dialog offered Compare; the diff showed theirs and yours; Retry stored yours on ${SERVER_DIRS.join(', ')}`;
    },

    // -- versions and rename (9, 10)
    9: async () => {
      const file = path.join(server.workspace, VERSIONED);
      const roots = SERVER_DIRS.map((dir) => path.join(dataDir, dir));
      const onEveryServer = (files) => waitUntil('bytes on every server\'s disk', () => filesOnDisk(roots, files), { timeout: T.disk });
      fs.writeFileSync(file, VERSION_ONE);
      await openExplorer(page);
      await explorerContextMenu(page, VERSIONED, 'Upload to DFS');
      await waitForToast(page, 'DFS upload: 1 uploaded.', { timeout: T.upload });
      await onEveryServer({ present: { [`${CLIENT}/${VERSIONED}`]: VERSION_ONE } });
      await clearNotifications(page);
      fs.writeFileSync(file, VERSION_TWO);
      await explorerContextMenu(page, VERSIONED, 'Upload to DFS');
      const ask = await waitForDialog(page, `"${VERSIONED}" is already stored in DFS.`, { timeout: T.ui });
      await ask.locator('.dialog-buttons .monaco-button').filter({ hasText: /^Overwrite$/ }).first().click();
      await waitForToast(page, 'DFS upload: 1 uploaded.', { timeout: T.upload });
      await onEveryServer({ present: { [`${CLIENT}/${VERSIONED}`]: VERSION_TWO } });

      await showDfs();
      await contextMenuOn(page, await waitForStoredRow(VERSIONED), 'Show Versions', { timeout: T.ui });
      const versions = await quickPickRows(page);
      const parsed = versions.map((v) => ({ ...v, generation: Number(/Generation (\d+)/.exec(v.text)?.[1]), current: v.text.includes('(current)') }));
      const current = parsed.find((v) => v.current);
      const older = parsed.find((v) => !v.current);
      if (parsed.length !== 2 || !current || !older) throw new Error(`Show Versions lists ${JSON.stringify(versions.map((v) => v.text))}, expected a current and one older version`);
      for (const [v, bytes] of [[current, VERSION_TWO], [older, VERSION_ONE]]) {
        if (!v.text.includes(`${bytes.length} B`) || !v.text.includes(createHash('sha256').update(bytes).digest('hex').slice(0, 12))) throw new Error(`version row ${JSON.stringify(v.text)} lacks its size (${bytes.length} B) or short checksum`);
      }
      await screenshot(page, '09-versions-list');
      await pickQuickPickItem(page, `Generation ${older.generation}`, new RegExp(`^Generation ${older.generation} `));
      // The second quick pick, the actions for that version, replaces the first.
      await waitUntil('the actions for the picked version', async () => {
        const title = await quickInput(page).locator('.quick-input-title').innerText().catch(() => '');
        return title.includes(`generation ${older.generation}`) ? null : `the quick pick's title is ${JSON.stringify(title)}`;
      }, { timeout: T.ui });
      const actions = await quickPickRows(page);
      if (!actions.some((a) => /^Restore /.test(a.text))) throw new Error(`the actions for generation ${older.generation} offer no Restore: ${JSON.stringify(actions.map((a) => a.text))}`);
      await pickQuickPickItem(page, 'Restore', /^Restore makes generation/);
      const done = new RegExp(`restored ${CLIENT}/${VERSIONED}: generation ${older.generation}'s bytes \\(${VERSION_ONE.length} B\\) are current again as generation (\\d+)`);
      // The tree shows the restore as the file's new generation (its row's tooltip, which is its aria-label).
      let generation;
      await waitUntil('the tree to show the restored generation', async () => {
        const label = (await waitForStoredRow(VERSIONED).then((row) => row.getAttribute('aria-label'))) ?? '';
        generation = Number(/Generation: (\d+)/.exec(label)?.[1]);
        return generation > current.generation ? null : `its row says ${JSON.stringify(label)}`;
      }, { timeout: T.ui });
      // The confirmation is a notification; read it in the notification center, since in
      // code-server its toast, shown right after the quick picks close, was not seen.
      await runCommand(page, 'Notifications: Show Notifications');
      try {
        await waitUntil('the restore notification', async () => {
          const center = (await page.locator('.notifications-center .notification-list-item-message').allInnerTexts().catch(() => [])).map((t) => t.replace(/\s+/g, ' '));
          const found = center.map((t) => done.exec(t)).find(Boolean);
          if (found && Number(found[1]) !== generation) throw Object.assign(new Error(`the notification names generation ${found[1]}, the tree ${generation}`), { fatal: true });
          return found ? null : `the notification center holds ${JSON.stringify(center)}`;
        }, { timeout: T.ui });
        await screenshot(page, '09-restore-notification');
      } finally {
        // An open notification center keeps later steps' toasts from showing.
        await runCommand(page, 'Notifications: Hide Notifications');
      }
      if (!(generation > current.generation)) throw new Error(`the restore is generation ${generation}, not newer than ${current.generation}`);
      // The restored bytes are current on every server, and the version they replaced is kept there under its generation.
      await onEveryServer({
        present: {
          [`${CLIENT}/${VERSIONED}`]: VERSION_ONE,
          [`.dfs/versions/${CLIENT}/${current.generation}`]: VERSION_TWO,
          [`.dfs/versions/${CLIENT}/${older.generation}`]: VERSION_ONE,
        },
      });
      return `versions listed: ${parsed.map((v) => v.text).join(' | ')}; restored generation ${older.generation} as generation ${generation}; ${VERSIONED} holds its bytes on ${SERVER_DIRS.join(', ')}, generation ${current.generation} kept as an older version on each`;
    },

    10: async () => {
      const roots = SERVER_DIRS.map((dir) => path.join(dataDir, dir));
      const target = `renamed/${VERSIONED}`;
      await showDfs();
      await contextMenuOn(page, await waitForStoredRow(VERSIONED), 'Rename or Move...', { timeout: T.ui });
      await answerInputBox(page, target);
      await waitUntil('the rename on every server\'s disk', () => filesOnDisk(roots, { present: { [`${CLIENT}/${target}`]: VERSION_ONE }, absent: [`${CLIENT}/${VERSIONED}`] }), { timeout: T.disk });
      await expandFolder('renamed', 2);
      await waitForStoredRow(target);
      await dfsRow(VERSIONED, 2).waitFor({ state: 'detached', timeout: T.ui }).catch(() => {
        throw new Error(`${VERSIONED} is still in the tree at the top level after the rename`);
      });
      return `${CLIENT}/${VERSIONED} renamed to ${target}: gone under its old name and present with the same ${VERSION_ONE.length} bytes on ${SERVER_DIRS.join(', ')}; the tree shows it under renamed/`;
    },

    // -- sync a folder (11)
    11: async () => {
      const prefix = 'workspace';
      // The workspace as it is now: earlier steps add files to it (step 9 writes the file it versions).
      const files = fs.readdirSync(workspaceDir, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile() && !path.relative(workspaceDir, path.join(entry.parentPath ?? entry.path, entry.name)).split(path.sep).some((part) => part.startsWith('.')))
        .map((entry) => path.relative(workspaceDir, path.join(entry.parentPath ?? entry.path, entry.name)).split(path.sep).join('/'))
        .sort();
      const syncedBytes = new Map(files.map((name) => [name, fs.readFileSync(path.join(workspaceDir, name))]));
      for (const name of files) storedBySteps.add(`${prefix}/${name}`);
      /** Every server holds these bytes under CLIENT/prefix/. */
      const onEveryServer = (what) => waitUntil(what, () => {
        const problems = [];
        for (const server of SERVER_DIRS) {
          const stored = storedOn(dataDir, server);
          for (const [name, bytes] of syncedBytes) {
            const got = stored.get(`${prefix}/${name}`);
            if (!got) problems.push(`${server}/${CLIENT}/${prefix}/${name} missing`);
            else if (!got.equals(bytes)) problems.push(`${server}/${CLIENT}/${prefix}/${name} differs (${got.length} bytes, expected ${bytes.length})`);
          }
        }
        return problems.length ? problems.join('; ') : null;
      }, { timeout: T.disk });
      const pick = async (label) => {
        const row = quickInput(page).locator('.monaco-list-row').filter({ hasText: label }).first();
        await row.waitFor({ state: 'visible', timeout: T.ui }).catch(async () => {
          const offered = await quickInput(page).locator('.monaco-list-row').allInnerTexts().catch(() => []);
          throw new Error(`the quick pick offers no "${label}"; it offers ${JSON.stringify(offered)}`);
        });
        await row.click();
      };

      await runCommand(page, 'View: Close All Editors');
      await runCommand(page, 'DFS: Sync Folder...');
      await pick(path.basename(workspaceDir)); // the workspace folder, above "Another folder of the workspace..."
      const input = quickInput(page).locator('input').first();
      await quickInput(page).filter({ hasText: `stored files to keep in step with ${path.basename(workspaceDir)}` }).waitFor({ state: 'visible', timeout: T.ui });
      await input.fill(prefix);
      await page.keyboard.press('Enter');
      await pick('Keep deletes on one side');
      const question = `Sync ${path.basename(workspaceDir)} with ${CLIENT}/${prefix}/: upload ${files.length} files`;
      const dialog = await waitForDialog(page, question, { timeout: T.ui });
      const asked = (await dialog.innerText()).replace(/\s+/g, ' ').trim();
      await dialog.locator('.dialog-buttons .monaco-button').filter({ hasText: /^Sync$/ }).first().click();
      await dialog.waitFor({ state: 'hidden', timeout: T.ui });
      await waitForToast(page, `is synced with ${CLIENT}/${prefix}/`, { timeout: T.upload });
      await onEveryServer('the first sync\'s bytes on every server\'s disk');
      await waitForStatusBar(page, `DFS sync: ${files.length} synced`, { timeout: T.ui });

      // Edit a file of the synced folder in the editor and save it, as a user would.
      const typed = 'Synced on save.';
      await openExplorerFile(page, 'notes.md');
      const editor = page.locator('.editor-group-container.active .monaco-editor').first();
      await editor.locator('.view-lines').first().click();
      await page.keyboard.press('Control+End');
      await page.keyboard.type(typed);
      await page.keyboard.press('Control+S');
      const tab = page.locator('.tabs-container .tab.active[data-resource-name="notes.md"]');
      await waitUntil('the editor to save', async () => (/\bdirty\b/.test(await tab.getAttribute('class') ?? '') ? 'the notes.md tab is still dirty' : null), { timeout: T.ui });
      const saved = fs.readFileSync(path.join(workspaceDir, 'notes.md'));
      if (!saved.equals(Buffer.from(`${WORKSPACE['notes.md']}${typed}`))) throw new Error(`the saved notes.md holds ${JSON.stringify(saved.toString())}`);
      syncedBytes.set('notes.md', saved);
      await onEveryServer('the saved notes.md on every server\'s disk');
      await waitForStatusBar(page, `DFS sync: ${files.length} synced`, { timeout: T.ui });
      return `asked "${asked.slice(0, 160)}"; confirmed; ${files.length} files under ${CLIENT}/${prefix}/ on ${SERVER_DIRS.join(', ')}; typed and saved notes.md, its new ${saved.length} bytes on every server; status bar "DFS sync: ${files.length} synced"`;
    },

    // -- cluster health (12)
    12: async () => {
      await showDfs();
      await expandViewPane(page, 'Cluster');
      const description = async (label) => {
        const row = viewTreeItem(page, 'Cluster', label);
        return (await row.count()) ? (await row.locator('.label-description').first().innerText()).trim() : null;
      };
      const waitForReplica = (what, matches) => waitUntil(`Cluster view: replica 2 ${what}`, async () => {
        const text = await description('replica 2');
        return text !== null && matches.test(text) ? null : `replica 2 shows ${JSON.stringify(text)}`;
      }, { timeout: T.status });
      for (const label of ['replica 1', 'replica 2', 'replica 3']) {
        await waitUntil(`Cluster view: ${label} up`, async () => {
          const text = await description(label);
          // Servers of other windows say "not started here"; this window's carry Restart and Stop instead.
          return text?.startsWith('up') && !text.endsWith('not started here') ? null : `${label} shows ${JSON.stringify(text)}`;
        }, { timeout: T.status });
      }
      // The second replica port's process: kill -9, as a crash would.
      const replicas = ourServers().filter((p) => / replica /.test(p.cmdline))
        .map((p) => ({ ...p, port: Number(/--port (\d+)/.exec(p.cmdline)?.[1]) })).sort((a, b) => a.port - b.port);
      if (replicas.length !== REPLICAS) throw new Error(`expected ${REPLICAS} replica processes, found ${replicas.length}`);
      const victim = replicas[1];
      const before = storedOn(dataDir, 'servidor');
      if (before.size === 0) throw new Error('the primary holds no file to catch up; earlier steps stored none');
      process.kill(victim.pid, 'SIGKILL');
      // Its disk is lost too, so what comes back is an empty replica the primary must fill.
      fs.rmSync(path.join(dataDir, 'replica2'), { recursive: true, force: true });
      await waitForReplica('down', /^down\b/);
      // Under the default quorum (all) an upload now fails: the message offers to fix it from VS Code.
      await clearNotifications(page);
      await openExplorer(page);
      await explorerContextMenu(page, 'untouched.txt', 'Upload to DFS');
      const refusal = page.locator('.notification-toast').filter({ hasText: 'DFS upload: 0 uploaded, 1 failed' }).first();
      await refusal.waitFor({ state: 'visible', timeout: T.upload });
      const buttons = (await refusal.locator('.monaco-button').allInnerTexts()).map((b) => b.trim());
      for (const wanted of ['Restart Replica', 'Open Settings', 'Show Log']) {
        if (!buttons.includes(wanted)) throw new Error(`the quorum failure offers ${JSON.stringify(buttons)}, not ${wanted}`);
      }
      const refusalText = await refusal.innerText();
      if (/dfs status/.test(refusalText)) throw new Error(`the quorum failure speaks of the command line: ${JSON.stringify(refusalText)}`);
      for (const server of SERVER_DIRS) {
        if (storedOn(dataDir, server).has('untouched.txt')) throw new Error(`${server} keeps untouched.txt from the refused upload`);
      }
      await showDfs();
      await screenshot(page, '12-replica-down');
      await clearNotifications(page);
      await clickInlineAction(page, viewTreeItem(page, 'Cluster', 'replica 2'), 'Restart');
      await waitUntil(`replica 2 process on port ${victim.port}`, () => (
        ourServers().some((p) => / replica /.test(p.cmdline) && p.cmdline.includes(`--port ${victim.port}`) && p.pid !== victim.pid) ? null : 'not running'
      ), { timeout: T.processes });
      await waitForReplica('up and in step', /^up · in step\b/);
      // Every server holds what the primary holds, byte for byte, the restarted one included.
      await waitUntil('bytes on every server\'s disk', () => {
        const primary = storedOn(dataDir, 'servidor');
        const problems = [];
        for (const server of SERVER_DIRS.slice(1)) {
          const files = storedOn(dataDir, server);
          for (const [name, bytes] of primary) {
            if (!files.get(name)?.equals(bytes)) problems.push(`${server}/${CLIENT}/${name} ${files.has(name) ? 'differs' : 'missing'}`);
          }
          for (const name of files.keys()) if (!primary.has(name)) problems.push(`${server}/${CLIENT}/${name} not on the primary`);
        }
        return problems.length ? problems.join('; ') : null;
      }, { timeout: T.disk });
      return `replica 2 (pid ${victim.pid}, port ${victim.port}) killed and its disk wiped: shown down; an upload was refused offering ${buttons.join(' / ')}; inline Restart: up and in step, its ${storedOn(dataDir, 'replica2').size} files identical to the primary's`;
    },

    6: async () => {
      await runCommand(page, 'DFS: Stop Cluster');
      await waitForToast(page, 'DFS: cluster stopped.', { timeout: T.ui });
      await waitForStatusBar(page, 'DFS offline', { timeout: T.status });
      await showDfs();
      const welcome = dfsView().locator('.welcome-view-content').filter({ hasText: 'No DFS cluster answers at the configured address.' }).first();
      await welcome.waitFor({ state: 'visible', timeout: T.ui }).catch(async () => {
        throw new Error(`the DFS view shows no welcome content; its rows: ${JSON.stringify(await treeRows())}`);
      });
      for (const button of ['Start Cluster', 'Open Settings']) {
        await welcome.locator('.monaco-button').filter({ hasText: button }).first().waitFor({ state: 'visible', timeout: T.ui });
      }
      await waitUntil('server processes to exit', () => {
        const left = ourServers();
        return left.length ? `still running: ${left.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}` : null;
      }, { timeout: T.processes });
      return 'status bar "DFS offline"; welcome text with Start Cluster and Open Settings; no dist/dfs.js process of this run left';
    },
  };

  for (const step of STEPS) {
    const started = Date.now();
    const label = `${step.n} (${STEPS.indexOf(step) + 1}/${COUNT}) ${step.title}`;
    const missing = step.needs.filter((n) => !results.get(n)?.ok);
    if (setupError || missing.length) {
      const why = setupError ? `not run: setup failed (${setupError.message.split('\n')[0]})` : `not run: needs step ${missing.join(', ')}`;
      results.set(step.n, { ok: false, detail: why, ms: 0 });
      log(`FAIL ${label}\n         ${why}`);
      continue;
    }
    try {
      await clearNotifications(page);
      const detail = await bodies[step.n]();
      results.set(step.n, { ok: true, detail, ms: Date.now() - started });
      log(`PASS ${label} (${secs(Date.now() - started)})\n         ${detail}`);
    } catch (e) {
      const toasts = await visibleNotifications(page);
      const status = await statusBarText(page).catch(() => '?');
      const detail = `${e.message}\n         notifications: ${JSON.stringify(toasts)}\n         status bar: ${JSON.stringify(status.replace(/\s+/g, ' '))}`;
      results.set(step.n, { ok: false, detail, ms: Date.now() - started });
      log(`FAIL ${label} (${secs(Date.now() - started)})\n         ${detail}`);
    }
    // A step's own screenshot may already be taken at its telling moment (shotInBody); otherwise now.
    if (!step.shotInBody || !results.get(step.n).ok) {
      await waitForProgressToastsGone(page);
      await screenshot(page, step.shot).catch((e) => log(`(screenshot ${step.shot} failed: ${e.message})`));
    }
  }

  // ---------------------------------------------------------------- cleanup
  const anyFailed = setupError || [...results.values()].some((r) => !r.ok);
  if (anyFailed && page) await screenshot(page, 'dfs-failure').catch(() => {});
  const copied = e2e.copyLogs(logsDir);
  await e2e.close();
  let leftover = [];
  await waitUntil('processes of this run to go', () => {
    leftover = ourServers();
    return leftover.length ? leftover.map((p) => p.pid).join(' ') : null;
  }, { timeout: 10_000 }).catch(() => {});
  const killed = killPidsNow(leftover.map((p) => p.pid));
  clearTimeout(watchdog);

  // ---------------------------------------------------------------- report
  console.log('');
  log(`results (${secs(Date.now() - t0)} in all):`);
  for (const step of STEPS) {
    const r = results.get(step.n);
    log(`  ${r.ok ? 'PASS' : 'FAIL'} ${step.n} ${step.title}${r.ok ? ` (${secs(r.ms)})` : `: ${r.detail.split('\n')[0]}`}`);
  }
  if (killed.length) log(`  FAIL cleanup: ${killed.length} ${DFS_SCRIPT} process(es) of this run outlived code-server; killed ${killed.join(' ')}`);
  else log(`  ok   cleanup: no ${DFS_SCRIPT} process of this run left`);
  log(`screenshots: ${output}/{${STEPS.map((s) => s.shot).join(',')}}.png`);
  const passed = [...results.values()].filter((r) => r.ok).length;
  // .ci/run's closing line counts these.
  fs.writeFileSync(path.join(output, 'summary.json'), `${JSON.stringify({ steps: COUNT, passed })}\n`);
  if (anyFailed || killed.length) {
    log(`code-server log: ${e2e.logFile}`);
    if (copied) {
      const channel = fs.readdirSync(copied, { recursive: true }).map(String).find((f) => f.endsWith(path.join('dfs-team.dfs', 'DFS.log')));
      log(`VS Code logs: ${copied}${channel ? ` (the extension's "DFS" output channel: ${path.join(copied, channel)})` : ''}`);
    }
    log(`FAILED: ${passed}/${COUNT} steps passed${killed.length ? ', processes left behind' : ''}`);
    return 1;
  }
  log(`PASSED: ${COUNT}/${COUNT} steps`);
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  log(`FAIL: ${e.stack ?? e}`);
}
process.exit(code);
