import { DfsError, ErrorCode, isErrorCode } from './errors';
import { validateClientId, validateFileName } from './names';

/** Headers longer than this are refused before they are parsed. */
export const MAX_HEADER_BYTES = 8 * 1024;

/** Reply tokens, spelled exactly as the report's clients compare them. */
export const Reply = {
  SEND_FILE: 'SEND_FILE',
  UPLOAD_SUCCESS: 'UPLOAD_SUCCESS',
  UPLOAD_FAILURE: 'UPLOAD_FAILURE',
  REPLICA_SUCCESS: 'REPLICA_SUCCESS',
  REPLICA_FAILURE: 'REPLICA_FAILURE',
  REPLICA_PREPARED: 'REPLICA_PREPARED',
  REPLICA_ABORTED: 'REPLICA_ABORTED',
  DELETE_SUCCESS: 'DELETE_SUCCESS',
  DELETE_FAILURE: 'DELETE_FAILURE',
  DOWNLOAD_FAILURE: 'DOWNLOAD_FAILURE',
  FILE: 'FILE',
  OK: 'OK',
  ERROR: 'ERROR',
} as const;

/**
 * Requests. UPLOAD, LIST and REPLICA are the report's; the rest are ours and only
 * ever sent line-terminated.
 */
export type Request =
  | { verb: 'UPLOAD'; clientId: string; name: string; size: number }
  | { verb: 'LIST'; clientId: string }
  | { verb: 'REPLICA'; clientId: string; name: string; size: number }
  | { verb: 'DOWNLOAD'; clientId: string; name: string }
  | { verb: 'DELETE'; clientId: string; name: string }
  | { verb: 'FILES'; clientId: string }
  | { verb: 'CLIENTS' }
  | { verb: 'STATUS' }
  | { verb: 'REPLICA_DELETE'; clientId: string; name: string }
  | { verb: 'INVENTORY' }
  | { verb: 'SCRUB' };

export type Verb = Request['verb'];

export const Verbs: readonly Verb[] = [
  'UPLOAD',
  'LIST',
  'REPLICA',
  'DOWNLOAD',
  'DELETE',
  'FILES',
  'CLIENTS',
  'STATUS',
  'REPLICA_DELETE',
  'INVENTORY',
  'SCRUB',
];

/** The failure token a verb answers with, so even a malformed request gets a reply its client understands. */
export function failureTokenFor(verb: string | undefined): string {
  switch (verb) {
    case 'UPLOAD':
      return Reply.UPLOAD_FAILURE;
    case 'REPLICA':
    case 'REPLICA_DELETE':
      return Reply.REPLICA_FAILURE;
    case 'DELETE':
      return Reply.DELETE_FAILURE;
    case 'DOWNLOAD':
      return Reply.DOWNLOAD_FAILURE;
    default:
      return Reply.ERROR;
  }
}

/** The first word of a header, for choosing a failure token before the header is known to be valid. */
export function verbOf(line: string): string {
  const space = line.indexOf(' ');
  return space === -1 ? line : line.slice(0, space);
}

/**
 * Parses one header. Names may contain spaces: the client id is the second token,
 * the size (where there is one) the last, and the name is everything between.
 */
export function parseRequest(line: string, maxFileSize = Number.MAX_SAFE_INTEGER): Request {
  const verb = verbOf(line);
  const rest = line.slice(verb.length + 1);
  switch (verb) {
    case 'UPLOAD':
    case 'REPLICA': {
      const { clientId, remainder } = splitClientId(rest, verb);
      const lastSpace = remainder.lastIndexOf(' ');
      if (lastSpace === -1) {
        throw new DfsError('BAD_HEADER', `${verb} needs <client_id> <filename> <filesize>`);
      }
      const name = validateFileName(remainder.slice(0, lastSpace));
      const size = parseSize(remainder.slice(lastSpace + 1), maxFileSize);
      return { verb, clientId, name, size };
    }
    case 'DOWNLOAD':
    case 'DELETE':
    case 'REPLICA_DELETE': {
      const { clientId, remainder } = splitClientId(rest, verb);
      return { verb, clientId, name: validateFileName(remainder) };
    }
    case 'LIST':
    case 'FILES': {
      if (rest.length === 0 || rest.includes(' ')) {
        throw new DfsError('BAD_HEADER', `${verb} needs exactly <client_id>`);
      }
      return { verb, clientId: validateClientId(rest) };
    }
    case 'CLIENTS':
    case 'STATUS':
    case 'INVENTORY':
    case 'SCRUB': {
      if (line !== verb) {
        throw new DfsError('BAD_HEADER', `${verb} takes no arguments`);
      }
      return { verb };
    }
    default:
      throw new DfsError('UNKNOWN_VERB', `unknown verb ${JSON.stringify(verb.slice(0, 40))}; expected one of ${Verbs.join(', ')}`);
  }
}

export function formatRequest(request: Request): string {
  switch (request.verb) {
    case 'UPLOAD':
    case 'REPLICA':
      return `${request.verb} ${request.clientId} ${request.name} ${request.size}`;
    case 'DOWNLOAD':
    case 'DELETE':
    case 'REPLICA_DELETE':
      return `${request.verb} ${request.clientId} ${request.name}`;
    case 'LIST':
    case 'FILES':
      return `${request.verb} ${request.clientId}`;
    case 'CLIENTS':
    case 'STATUS':
    case 'INVENTORY':
    case 'SCRUB':
      return request.verb;
  }
}

function splitClientId(rest: string, verb: string): { clientId: string; remainder: string } {
  const space = rest.indexOf(' ');
  if (rest.length === 0 || space <= 0) {
    throw new DfsError('BAD_HEADER', `${verb} needs <client_id> <filename>${verb === 'UPLOAD' || verb === 'REPLICA' ? ' <filesize>' : ''}`);
  }
  return { clientId: validateClientId(rest.slice(0, space)), remainder: rest.slice(space + 1) };
}

export function parseSize(text: string, maxFileSize: number): number {
  if (!/^\d{1,16}$/.test(text)) {
    throw new DfsError('BAD_SIZE', `file size ${JSON.stringify(text.slice(0, 40))} is not a whole number of bytes`);
  }
  const size = Number(text);
  if (!Number.isSafeInteger(size)) {
    throw new DfsError('BAD_SIZE', `file size ${text} is too large`);
  }
  if (size > maxFileSize) {
    throw new DfsError('TOO_LARGE', `file size ${size} is over this server's limit of ${maxFileSize} bytes`);
  }
  return size;
}

/** A reply line from one of our servers, as our own clients read it. */
export interface ReplyLine {
  token: string;
  /** Set on failures: the code and the human-readable reason. */
  code?: ErrorCode;
  message?: string;
  /** The text after the token on successes (JSON for the richer replies). */
  payload?: string;
}

export function formatFailure(token: string, error: DfsError): string {
  return `${token} ${error.code} ${error.message.replace(/[\r\n]+/g, ' ')}`;
}

export function formatSuccess(token: string, payload?: unknown): string {
  return payload === undefined ? token : `${token} ${typeof payload === 'string' ? payload : JSON.stringify(payload)}`;
}

export function parseReply(line: string): ReplyLine {
  const token = verbOf(line);
  const rest = line.slice(token.length + 1);
  if (isFailureToken(token)) {
    const code = verbOf(rest);
    if (isErrorCode(code)) {
      return { token, code, message: rest.slice(code.length + 1) };
    }
    return { token, code: 'INTERNAL', message: rest || 'the server gave no reason' };
  }
  return rest.length > 0 ? { token, payload: rest } : { token };
}

export function isFailureToken(token: string): boolean {
  return token.endsWith('_FAILURE') || token === Reply.ERROR;
}

export function replyError(reply: ReplyLine): DfsError {
  return new DfsError(reply.code ?? 'INTERNAL', reply.message ?? reply.token);
}
