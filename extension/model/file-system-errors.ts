import { toDfsError } from '../../server/protocol';

/** The FileSystemError VS Code understands for a failure: it decides what the editor offers (Retry, Revert, ...). */
export type FileSystemErrorKind = 'FileNotFound' | 'FileExists' | 'NoPermissions' | 'Unavailable' | 'Unknown';

/**
 * A read that failed its checksum, or was cut short, even when asked for again (see
 * downloadBytes and downloadToFile): what that means and what to do. Undefined for any
 * other failure.
 */
export function unreadableCopyAdvice(error: unknown): string | undefined {
  const { code } = toDfsError(error);
  return code === 'CHECKSUM' || code === 'SHORT_BODY'
    ? 'It was asked for twice and no copy arrived whole with its recorded checksum, so nothing of it was kept or shown. Try again in a moment (DFS repairs a damaged copy from a good one); if it fails again, no good copy is left: restore a kept version with "DFS: Show Versions", or upload the file again.'
    : undefined;
}

/** Maps a DFS failure to its FileSystemError kind and a message saying what happened and what to do. */
export function fileSystemErrorOf(error: unknown): { kind: FileSystemErrorKind; message: string } {
  const failure = toDfsError(error);
  const message = `DFS: ${failure.message}`;
  switch (failure.code) {
    case 'NOT_FOUND':
      return { kind: 'FileNotFound', message };
    case 'EXISTS':
    case 'CONFLICT':
      // A name already taken, or a file and a folder of one name.
      return { kind: 'FileExists', message };
    case 'FORBIDDEN':
    case 'AUTH':
      return { kind: 'NoPermissions', message: `${message}. Set the right key with "DFS: Set Client Key", or open files of your own client.` };
    case 'UNREACHABLE':
    case 'TIMEOUT':
    case 'QUORUM':
    case 'LIMIT':
      return { kind: 'Unavailable', message };
    default:
      return { kind: 'Unknown', message };
  }
}
