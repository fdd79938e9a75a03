import * as assert from 'assert';
import { existsSync, readFileSync, readdirSync, statSync } from 'fs';
import * as path from 'path';
import { SETTING_KEYS } from '../../extension/model/settings';
import { REPO_ROOT } from '../support/processes';

interface MenuEntry {
  command?: string;
  submenu?: string;
  when?: string;
  group?: string;
}

const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
const contributes = manifest.contributes;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    return statSync(full).isDirectory() ? sourceFiles(full) : full.endsWith('.ts') ? [full] : [];
  });
}

const extensionSource = sourceFiles(path.join(REPO_ROOT, 'extension'))
  .map((file) => readFileSync(file, 'utf8'))
  .join('\n');

describe('package.json contributions', () => {
  const declared = new Set<string>(contributes.commands.map((command: { command: string }) => command.command));
  const menuEntries: [string, MenuEntry][] = Object.entries(contributes.menus as Record<string, MenuEntry[]>).flatMap(([menu, entries]) => entries.map((entry): [string, MenuEntry] => [menu, entry]));

  it('declares every command a menu uses', () => {
    assert.ok(menuEntries.length > 10);
    for (const [menu, entry] of menuEntries) {
      assert.ok(entry.command && declared.has(entry.command), `${menu} uses ${entry.command}, which contributes.commands does not declare`);
    }
  });

  it('registers in code every declared command, and declares every command the code registers', () => {
    const registered = new Set([...extensionSource.matchAll(/command\('(dfs\.[\w.]+)'/g)].map((match) => match[1]));
    assert.deepStrictEqual([...registered].sort(), [...declared].sort());
  });

  it('gives every command the DFS category and a title', () => {
    for (const command of contributes.commands) {
      assert.strictEqual(command.category, 'DFS', command.command);
      assert.ok(command.title.length > 0, command.command);
    }
  });

  it('only matches viewItem values that the code sets as a contextValue', () => {
    const setInCode = new Set(
      [...extensionSource.matchAll(/\b(\w+): '(dfs[A-Z]\w*)'/g)].filter((match) => ['client', 'folder', 'file', 'runningHere', 'stoppedHere', 'external'].includes(match[1])).map((match) => match[2]),
    );
    assert.deepStrictEqual([...setInCode].sort(), ['dfsClient', 'dfsFile', 'dfsFolder', 'dfsServerExternal', 'dfsServerRunningHere', 'dfsServerStoppedHere']);
    const whenClauses = [...menuEntries.map(([, entry]) => entry.when ?? ''), ...contributes.viewsWelcome.map((welcome: { when?: string }) => welcome.when ?? '')];
    const matched = whenClauses.flatMap((when) => [...when.matchAll(/viewItem\s*==\s*([\w.-]+)/g)].map((match) => match[1]));
    assert.ok(matched.length > 0, 'some menus depend on the node kind');
    for (const value of matched) {
      assert.ok(setInCode.has(value), `a when clause matches viewItem == ${value}, which no tree node sets`);
    }
    assert.ok(!whenClauses.some((when) => /viewItem\s*=~/.test(when)), 'regex matches are not checked here; keep to ==');
  });

  it('only uses context keys the code sets', () => {
    const viewIds = new Set(Object.values(contributes.views as Record<string, { id: string }[]>).flatMap((views) => views.map((view) => view.id)));
    const whenClauses = [...menuEntries.map(([, entry]) => entry.when ?? ''), ...contributes.viewsWelcome.map((welcome: { when?: string }) => welcome.when ?? '')];
    const keys = new Set(whenClauses.flatMap((when) => [...when.matchAll(/\b(dfs\.[a-zA-Z]+)\b/g)].map((match) => match[1])).filter((key) => !viewIds.has(key)));
    for (const key of keys) {
      assert.ok(extensionSource.includes(`'setContext', '${key}'`), `${key} is used in a when clause but never set`);
    }
  });

  it('refers only to icon files that exist', () => {
    const iconPaths: string[] = [manifest.icon, ...contributes.viewsContainers.activitybar.map((container: { icon: string }) => container.icon)];
    for (const views of Object.values(contributes.views as Record<string, { icon?: string }[]>)) {
      views.forEach((view) => view.icon && iconPaths.push(view.icon));
    }
    for (const command of contributes.commands) {
      if (typeof command.icon === 'object') {
        iconPaths.push(command.icon.light, command.icon.dark);
      } else if (typeof command.icon === 'string' && !command.icon.startsWith('$(')) {
        iconPaths.push(command.icon);
      }
    }
    assert.ok(iconPaths.length >= 3);
    for (const icon of iconPaths) {
      assert.ok(existsSync(path.join(REPO_ROOT, icon)), `${icon} exists`);
    }
    assert.match(readFileSync(path.join(REPO_ROOT, contributes.viewsContainers.activitybar[0].icon), 'utf8'), /<svg[\s\S]*<\/svg>/);
    assert.deepStrictEqual([...readFileSync(path.join(REPO_ROOT, manifest.icon)).subarray(1, 4)].map((byte) => String.fromCharCode(byte)).join(''), 'PNG', 'the marketplace icon must be a PNG');
  });

  it('points views and welcome content at the declared container and view', () => {
    const containerIds = contributes.viewsContainers.activitybar.map((container: { id: string }) => container.id);
    assert.deepStrictEqual(Object.keys(contributes.views), containerIds);
    const viewIds = new Set(Object.values(contributes.views as Record<string, { id: string }[]>).flatMap((views) => views.map((view) => view.id)));
    for (const welcome of contributes.viewsWelcome) {
      assert.ok(viewIds.has(welcome.view), welcome.view);
      for (const match of (welcome.contents as string).matchAll(/\(command:([\w.]+)\)/g)) {
        assert.ok(declared.has(match[1]), `welcome button runs ${match[1]}`);
      }
    }
    assert.ok(extensionSource.includes("createTreeView<DfsNode>('dfs.files'"), 'the code creates the declared view');
    assert.ok(extensionSource.includes("createTreeView<ClusterViewNode>('dfs.cluster'"), 'the code creates the Cluster view');
  });

  it('declares the dfs task type that the task provider registers, and a setting for every key the code reads', () => {
    assert.deepStrictEqual(contributes.taskDefinitions.map((definition: { type: string }) => definition.type), ['dfs']);
    assert.ok(extensionSource.includes("DFS_TASK_TYPE = 'dfs'"));
    const settings = Object.keys(contributes.configuration.properties).sort();
    assert.deepStrictEqual(settings, SETTING_KEYS.map((key) => `dfs.${key}`).sort());
    assert.ok(settings.includes('dfs.tlsCaFile'));
  });

  it('lists every command in the README\'s table with where it appears, and says which are not in the palette', () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const rows = new Map([...readme.matchAll(/^\| ([^|]+?) \| ([^|]+) \|$/gm)].map((match) => [match[1], match[2]]));
    const hidden = new Set((contributes.menus.commandPalette as MenuEntry[]).filter((entry) => entry.when === 'false').map((entry) => entry.command));
    for (const command of contributes.commands as { command: string; title: string }[]) {
      const where = rows.get(command.title);
      assert.ok(where, `README's command table has a row for ${command.title}`);
      assert.strictEqual(/not in the palette/.test(where), hidden.has(command.command), `${command.title}: the README says ${hidden.has(command.command) ? '' : 'not '}"not in the palette"`);
      const menus = menuEntries.filter(([, entry]) => entry.command === command.command).map(([menu]) => menu);
      const named: Record<string, RegExp> = { 'view/item/context': /DFS view item/, 'view/title': /DFS view title/, 'explorer/context': /Explorer context/, 'editor/title': /editor title/, 'editor/context': /editor context/ };
      for (const menu of menus) {
        assert.match(where, named[menu] ?? /palette/, `${command.title} appears in ${menu}, which the README's row names`);
      }
    }
  });

  it('keeps activation cheap: never "*", at most after start-up so the status bar shows without delaying it', () => {
    for (const event of manifest.activationEvents) {
      assert.notStrictEqual(event, '*');
    }
    assert.ok(extensionSource.includes('export function activate(') && !extensionSource.includes('async function activate('), 'activate() is synchronous: it waits on nothing');
  });
});
