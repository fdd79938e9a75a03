import { DfsError } from './errors';

/** What a rename expects of its source: any current version, or exactly this generation. */
export type SourceRule = { kind: 'any' } | { kind: 'generation'; generation: number };

/**
 * What a rename may do to an existing destination: nothing (`absent`, the default:
 * refused with EXISTS), replace whatever is there (`any`), or replace exactly this
 * generation.
 */
export type DestinationRule = { kind: 'absent' } | { kind: 'any' } | { kind: 'generation'; generation: number };

export function formatSourceRule(rule: SourceRule): string {
  return rule.kind === 'any' ? 'any' : String(rule.generation);
}

export function formatDestinationRule(rule: DestinationRule): string {
  return rule.kind === 'generation' ? String(rule.generation) : rule.kind;
}

function parseWholeNumber(text: string): number | undefined {
  return /^\d{1,16}$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : undefined;
}

export function parseSourceRule(text: string): SourceRule {
  if (text === 'any') {
    return { kind: 'any' };
  }
  const generation = parseWholeNumber(text);
  if (generation === undefined) {
    throw new DfsError('BAD_HEADER', `source precondition ${JSON.stringify(text.slice(0, 40))} is neither "any" nor a generation number`);
  }
  return { kind: 'generation', generation };
}

export function parseDestinationRule(text: string): DestinationRule {
  if (text === 'absent' || text === 'any') {
    return { kind: text };
  }
  const generation = parseWholeNumber(text);
  if (generation === undefined) {
    throw new DfsError('BAD_HEADER', `destination rule ${JSON.stringify(text.slice(0, 40))} is none of "absent", "any" or a generation number`);
  }
  return { kind: 'generation', generation };
}

/** The current generations of both names when the rename is decided (undefined: absent or deleted). */
export interface RenameSides {
  from: string;
  to: string;
  source: number | undefined;
  destination: number | undefined;
}

/**
 * Whether a rename may go ahead, decided from the two names' current generations:
 * throws the refusal a client sees, with nothing changed. A CONFLICT or EXISTS starts
 * with `[current generation N|none]` (of the source, or of the destination) like any
 * failed precondition, so a client can retry against it.
 */
export function checkRename(sides: RenameSides, source: SourceRule, destination: DestinationRule): void {
  const { from, to } = sides;
  checkRenameNames(from, to);
  if (source.kind === 'generation' && sides.source !== source.generation) {
    throw new DfsError(
      'CONFLICT',
      `[current generation ${sides.source ?? 'none'}] ${from} was expected to be at generation ${source.generation}, but ${sides.source === undefined ? 'it does not exist' : `it is at generation ${sides.source}`}; nothing was renamed. Look at the stored file (dfs ls, dfs versions) and try again.`,
    );
  }
  if (sides.source === undefined) {
    throw new DfsError('NOT_FOUND', `${from} is not stored, so it cannot be renamed; nothing was changed`);
  }
  if (sides.destination !== undefined && destination.kind === 'absent') {
    throw new DfsError(
      'EXISTS',
      `[current generation ${sides.destination}] ${to} exists already (generation ${sides.destination}); nothing was renamed. Rename with replace (dfs mv --replace) to overwrite it, or choose another name.`,
    );
  }
  if (destination.kind === 'generation' && sides.destination !== destination.generation) {
    if (sides.destination !== undefined) {
      throw new DfsError(
        'EXISTS',
        `[current generation ${sides.destination}] ${to} was to be replaced at generation ${destination.generation}, but it is at generation ${sides.destination}; nothing was renamed. Look at it and try again.`,
      );
    }
    throw new DfsError(
      'CONFLICT',
      `[current generation none] ${to} was to be replaced at generation ${destination.generation}, but it no longer exists; nothing was renamed. Try again without a destination generation.`,
    );
  }
}

/** The checks on the two names alone: distinct, and neither the other's folder. */
export function checkRenameNames(from: string, to: string): void {
  if (from === to) {
    throw new DfsError('BAD_FILE_NAME', `${from} is renamed to itself; choose a different destination name`);
  }
  if (to.startsWith(from + '/')) {
    throw new DfsError('CONFLICT', `cannot move ${from} to ${to}: a file cannot become a folder holding itself; choose another destination`);
  }
  if (from.startsWith(to + '/')) {
    throw new DfsError('CONFLICT', `cannot rename ${from} to ${to}: ${to} is the folder holding it; choose another destination`);
  }
}
