/**
 * Every failure that crosses the wire carries one of these codes, so clients can
 * react to the kind of failure without parsing English.
 */
export const ErrorCodes = [
  'BAD_HEADER',
  'HEADER_TOO_LONG',
  'UNKNOWN_VERB',
  'BAD_CLIENT_ID',
  'BAD_FILE_NAME',
  'BAD_SIZE',
  'TOO_LARGE',
  'NOT_FOUND',
  'SHORT_BODY',
  'EXTRA_BYTES',
  'TIMEOUT',
  'UNREACHABLE',
  'QUORUM',
  'REPLICA_FAILED',
  'STORAGE',
  'CONFLICT',
  // A rename's destination exists and the request did not say it may be replaced.
  'EXISTS',
  'INCOMPLETE',
  'CHECKSUM',
  'CANCELLED',
  'PROTOCOL',
  'AUTH',
  'FORBIDDEN',
  'LIMIT',
  'NO_SPACE',
  'INTERNAL',
  'FENCED',
  // Our client's own verdict, never on the wire: an answer was lost and what happened cannot be told.
  'OUTCOME_UNKNOWN',
] as const;

export type ErrorCode = (typeof ErrorCodes)[number];

export function isErrorCode(value: string): value is ErrorCode {
  return (ErrorCodes as readonly string[]).includes(value);
}

export class DfsError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DfsError';
  }
}

/** Turns anything thrown into a DfsError without losing a code it already had. */
export function toDfsError(error: unknown, fallback: ErrorCode = 'INTERNAL'): DfsError {
  if (error instanceof DfsError) {
    return error;
  }
  const message = error instanceof Error ? error.message : String(error);
  return new DfsError(fallback, message);
}
