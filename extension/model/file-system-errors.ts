import { toDfsError } from '../../server/protocol';

/** The FileSystemError VS Code understands for a failure: it decides what the editor offers (Retry, Revert, ...). */
export type FileSystemErrorKind = 'FileNotFound' | 'FileExists' | 'NoPermissions' | 'Unavailable' | 'Unknown';

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
