import { validateFileName } from '../../server/protocol/names';
import * as path from 'path';

/**
 * What an input box for a new stored name says about what was typed: the server's own
 * name rules, and no name that is already stored (a copy or rename never replaces).
 * Undefined: the name is fine.
 */
export function checkNewName(typed: string, current: string, stored: ReadonlySet<string>): string | undefined {
  const name = typed.trim();
  if (name === current) {
    return 'That is the current name; type another.';
  }
  try {
    validateFileName(name);
  } catch (error) {
    return `${(error as Error).message}.`;
  }
  if (stored.has(name)) {
    return `"${name}" is already stored; choose a name that is not.`;
  }
  const clash = [...stored].find((other) => other.startsWith(`${name}/`));
  if (clash) {
    return `"${name}" is a folder (it holds ${clash}); choose another name.`;
  }
  const parent = [...ancestors(name)].find((folder) => stored.has(folder));
  if (parent) {
    return `"${parent}" is a stored file, so it cannot also be a folder.`;
  }
  return undefined;
}

/** "notes.md" -> "notes copy.md"; "notes copy.md" -> "notes copy 2.md", and so on until one is free. */
export function copyName(name: string, stored: ReadonlySet<string>): string {
  const extension = path.posix.extname(name);
  const stem = extension && extension !== name ? name.slice(0, -extension.length) : name;
  const base = stem.replace(/ copy(?: \d+)?$/, '');
  for (let n = 1; ; n++) {
    const candidate = `${base} copy${n === 1 ? '' : ` ${n}`}${extension}`;
    if (!stored.has(candidate)) {
      return candidate;
    }
  }
}

function* ancestors(name: string): Generator<string> {
  const parts = name.split('/');
  for (let i = 1; i < parts.length; i++) {
    yield parts.slice(0, i).join('/');
  }
}
