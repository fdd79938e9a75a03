/**
 * On a case-insensitive file system (macOS and Windows defaults, where the extension
 * runs its servers) `Notes.md` and `notes.md` are one file, and `Docs/a` and
 * `docs/b` share one folder. Returns the part of `existing` that `name` would
 * silently merge with, or undefined when the two stay apart.
 */
export function caseClash(name: string, existing: string): string | undefined {
  const ours = name.split('/');
  const theirs = existing.split('/');
  for (let index = 0; index < Math.min(ours.length, theirs.length); index++) {
    if (ours[index] === theirs[index]) {
      continue;
    }
    return ours[index].toLowerCase() === theirs[index].toLowerCase() ? theirs.slice(0, index + 1).join('/') : undefined;
  }
  return undefined;
}
