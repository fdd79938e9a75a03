import type { Precondition } from '../../server/protocol';

/**
 * Saving an editor's buffer over a stored file without ever replacing, blind, a version
 * someone else stored meanwhile. Every save is an upload with a precondition the
 * primary checks at its commit point; this decides which one, and what the user may
 * do when it fails. Pure: the file system provider asks, VS Code's dialogs answer.
 */

/** A version as the editor saw it: which generation, and the time and size stat() reported for it. */
export interface SeenVersion {
  generation: number;
  mtimeMs: number;
  size: number;
}

/**
 * VS Code's own "the content of the file is newer" check (FileService.validateWriteFile):
 * before a save it stats the file and refuses when the time moved on and the size
 * changed. A write that follows such a stat was therefore one the user chose to
 * overwrite (Overwrite, Accept Your Changes), or one the check was turned off for.
 */
export function vscodeSeesNewer(opened: SeenVersion, now: SeenVersion): boolean {
  return now.mtimeMs > opened.mtimeMs && now.size !== opened.size;
}

export interface SaveContext {
  /** The version the editor's content came from; undefined when the editor never read one (a new file). */
  opened?: SeenVersion;
  /** What stat() told VS Code just before this write: a version, 'absent', or undefined when no stat came first. */
  statted?: SeenVersion | 'absent';
  /** The generation the user compared their buffer with and may now replace (see ConflictResolution 'compare'). */
  compared?: number;
  /** VS Code's writeFile options. */
  create: boolean;
  overwrite: boolean;
}

export type SaveDecision = { kind: 'upload'; precondition: Precondition } | { kind: 'refuse'; reason: 'not-found' | 'exists' };

/** The precondition a save is sent with. */
export function decideSave(context: SaveContext): SaveDecision {
  const { opened, statted, compared } = context;
  if (statted === 'absent' || (statted === undefined && opened === undefined)) {
    if (!context.create) {
      return { kind: 'refuse', reason: 'not-found' };
    }
    // Deleted since it was opened: the primary refuses the opened generation, and the user is asked.
    return { kind: 'upload', precondition: opened ? generation(opened.generation) : { kind: 'absent' } };
  }
  if (statted === undefined) {
    return { kind: 'upload', precondition: generation(opened!.generation) };
  }
  if (!context.overwrite) {
    return { kind: 'refuse', reason: 'exists' };
  }
  if (opened === undefined || opened.generation === statted.generation || compared === statted.generation || vscodeSeesNewer(opened, statted)) {
    // Nothing read before (Save As over it, or an API write that asked to overwrite), the
    // version opened, the one compared with, or one VS Code already showed as newer.
    return { kind: 'upload', precondition: generation(statted.generation) };
  }
  // Changed since it was opened, and VS Code did not notice (same size): the primary refuses, the user is asked.
  return { kind: 'upload', precondition: generation(opened.generation) };
}

function generation(value: number): Precondition {
  return { kind: 'generation', generation: value };
}

export const COMPARE = 'Compare';
export const OVERWRITE = 'Overwrite';
export const SAVE_ANYWAY = 'Save Anyway';

export interface ConflictPrompt {
  message: string;
  detail: string;
  /** Buttons, besides Cancel (which every modal has). */
  choices: string[];
}

/** The question when the primary refused a save: `current` is what it holds now (null: deleted). */
export function conflictPrompt(label: string, current: number | null, opened: number | undefined): ConflictPrompt {
  if (current === null) {
    return {
      message: `"${label}" was deleted from DFS after you opened it.`,
      detail: 'Save Anyway stores your version as a new file. Cancel keeps your changes in the editor, unsaved.',
      choices: [SAVE_ANYWAY],
    };
  }
  return {
    message: `"${label}" changed on DFS after you opened it: generation ${current} is stored now${opened === undefined ? '' : `, your editor holds generation ${opened} with your changes`}.`,
    detail: 'Compare opens the stored version beside yours; save again from there to store yours over it. Overwrite stores yours over it now. Cancel keeps your changes in the editor, unsaved.',
    choices: [COMPARE, OVERWRITE],
  };
}

export type ConflictResolution = { kind: 'upload'; precondition: Precondition } | { kind: 'compare'; generation: number } | { kind: 'cancel' };

/** What the user's answer to conflictPrompt means. Overwrite replaces exactly what the primary said it holds, no later version. */
export function resolveConflict(choice: string | undefined, current: number | null): ConflictResolution {
  if (current === null) {
    return choice === SAVE_ANYWAY ? { kind: 'upload', precondition: { kind: 'absent' } } : { kind: 'cancel' };
  }
  if (choice === OVERWRITE) {
    return { kind: 'upload', precondition: generation(current) };
  }
  return choice === COMPARE ? { kind: 'compare', generation: current } : { kind: 'cancel' };
}

/** The failure the save reports after Compare or Cancel: the buffer stays dirty and says what to do. */
export function notSavedMessage(label: string, resolution: ConflictResolution, current: number | null): string {
  if (resolution.kind === 'compare') {
    return `not saved yet: the diff shows the stored generation ${resolution.generation} of ${label} (left) and yours (right). Save again (or Retry) to store yours over generation ${resolution.generation}, or Revert to take the stored one.`;
  }
  const now = current === null ? 'was deleted on DFS' : `changed on DFS (now generation ${current})`;
  return `not saved: ${label} ${now} after you opened it. Your changes are still in the editor; save again to choose Compare or Overwrite, or Revert to take the stored one.`;
}
