import { DfsError, formatBytes } from '../protocol';

/** Errno codes that mean the disk (or the user's quota on it) has no room left. */
const OUT_OF_SPACE = new Set(['ENOSPC', 'EDQUOT']);

const ADVICE = 'Free space on that disk (or move its data folder to a bigger one) and try again; it keeps serving what it holds meanwhile.';

export function isOutOfSpace(error: unknown): boolean {
  return OUT_OF_SPACE.has((error as NodeJS.ErrnoException | undefined)?.code ?? '');
}

/**
 * Turns a failed file operation into the DfsError a peer or a user reads: a full disk
 * becomes NO_SPACE, naming the node and its data folder and saying what to do, so it
 * survives the trip from a replica through the primary to the client; anything else
 * is STORAGE.
 */
export class DiskFailures {
  constructor(
    /** How messages name the node: "the primary", "replica 2". */
    readonly node: string,
    /** The data folder, absolute. */
    readonly root: string,
  ) {}

  /** `action` in the infinitive: "write the staged bytes". */
  of(error: unknown, action: string): DfsError {
    if (error instanceof DfsError) {
      return error;
    }
    if (isOutOfSpace(error)) {
      return new DfsError('NO_SPACE', `${this.node}'s disk is full: no space left under ${this.root} to ${action}. ${ADVICE}`);
    }
    return new DfsError('STORAGE', `cannot ${action}: ${(error as Error).message}`);
  }

  /** The refusal made before any byte is sent when storing `size` bytes would eat into the reserve. */
  noRoom(freeBytes: number, size: number, reserveBytes: number): DfsError {
    return new DfsError(
      'NO_SPACE',
      `${this.node}'s disk is too full: ${formatBytes(freeBytes)} free under ${this.root}, and ${formatBytes(size)} more would leave less than the ${formatBytes(reserveBytes)} it keeps free (--min-free). ${ADVICE}`,
    );
  }
}
