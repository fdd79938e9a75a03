import { DfsError } from './errors';

/**
 * A conditional write's expectation about the name's current state, checked
 * atomically with the commit: the editor's safe save and our overwrite prompts.
 */
export type Precondition = { kind: 'absent' } | { kind: 'generation'; generation: number };

export function formatPrecondition(precondition: Precondition): string {
  return precondition.kind === 'absent' ? 'absent' : String(precondition.generation);
}

export function parsePrecondition(text: string): Precondition {
  if (text === 'absent') {
    return { kind: 'absent' };
  }
  if (/^\d{1,16}$/.test(text) && Number.isSafeInteger(Number(text))) {
    return { kind: 'generation', generation: Number(text) };
  }
  throw new DfsError('BAD_HEADER', `precondition ${JSON.stringify(text.slice(0, 40))} is neither "absent" nor a generation number`);
}

export function describePrecondition(precondition: Precondition): string {
  return precondition.kind === 'absent' ? 'not to exist' : `to be at generation ${precondition.generation}`;
}

/** True when a name whose current generation is `current` (undefined: absent or deleted) meets it. */
export function preconditionHolds(precondition: Precondition, current: number | undefined): boolean {
  return precondition.kind === 'absent' ? current === undefined : current === precondition.generation;
}

const CURRENT_PREFIX = /^\[current generation (\d+|none)\] /;

/**
 * A failed precondition: CONFLICT, with the current generation first in the reason so
 * a client can retry against it without parsing the English that follows.
 */
export function preconditionFailed(name: string, precondition: Precondition, current: number | undefined): DfsError {
  const now = current === undefined ? 'it does not exist' : `it is at generation ${current}`;
  return new DfsError(
    'CONFLICT',
    `[current generation ${current ?? 'none'}] ${name} was expected ${describePrecondition(precondition)}, but ${now}; nothing was changed. Look at the stored file (dfs ls, dfs versions) and try again.`,
  );
}

/**
 * The current generation a CONFLICT (or a rename's EXISTS: the destination's) carries:
 * a number, null when the name does not exist, undefined when the error is no failed
 * precondition.
 */
export function currentGenerationOf(error: unknown): number | null | undefined {
  if (!(error instanceof DfsError) || (error.code !== 'CONFLICT' && error.code !== 'EXISTS')) {
    return undefined;
  }
  const match = CURRENT_PREFIX.exec(error.message);
  if (!match) {
    return undefined;
  }
  return match[1] === 'none' ? null : Number(match[1]);
}
