import { DfsError, ErrorCode, isErrorCode } from './errors';
import { validateClientId, validateFileName } from './names';
import { ChainHop, formatChainHops, parseChainHops } from './chain';
import { Precondition, formatPrecondition, parsePrecondition } from './preconditions';
import { DestinationRule, SourceRule, formatDestinationRule, formatSourceRule, parseDestinationRule, parseSourceRule } from './rename-rules';

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
  RESTORE_SUCCESS: 'RESTORE_SUCCESS',
  RESTORE_FAILURE: 'RESTORE_FAILURE',
  RENAME_SUCCESS: 'RENAME_SUCCESS',
  RENAME_FAILURE: 'RENAME_FAILURE',
  DOWNLOAD_FAILURE: 'DOWNLOAD_FAILURE',
  FILE: 'FILE',
  OK: 'OK',
  END: 'END',
  ERROR: 'ERROR',
} as const;

/** The two-phase REPLICA exchange's steps after the bytes, from our primary. */
/**
 * The line a primary elected through etcd sends before its request to a replica,
 * naming its leadership epoch: `FENCE <epoch>`. Replicas refuse changes under an
 * epoch older than the newest they have seen.
 */
export const FENCE_VERB = 'FENCE';

/** The FENCE line for an epoch. */
export function formatFence(epoch: number): string {
  return `${FENCE_VERB} ${epoch}`;
}

export const ReplicaStep = {
  CHECKSUM: 'CHECKSUM',
  COMMIT: 'COMMIT',
  ABORT: 'ABORT',
} as const;

/**
 * What a replica needs to commit the bytes it staged: their checksum and the version
 * the primary gives them. `keep` is how many older versions of the name to keep.
 */
export interface ReplicaChecksum {
  sha256: string;
  generation: number;
  mtimeMs: number;
  keep: number;
}

export function formatReplicaChecksum(step: ReplicaChecksum): string {
  return `${ReplicaStep.CHECKSUM} ${step.sha256} ${step.generation} ${step.mtimeMs} ${step.keep}`;
}

export function parseReplicaChecksum(line: string): ReplicaChecksum {
  const match = /^CHECKSUM ([0-9a-f]{64}) (\d{1,16}) (\d{1,16}) (\d{1,4})$/.exec(line);
  if (!match) {
    throw new DfsError('PROTOCOL', `expected CHECKSUM <sha256> <generation> <time_ms> <keep> after the bytes, got ${JSON.stringify(line.slice(0, 100))}`);
  }
  return { sha256: match[1], generation: Number(match[2]), mtimeMs: Number(match[3]), keep: Number(match[4]) };
}

/**
 * Requests. UPLOAD, LIST and REPLICA are the report's; the rest are ours and only
 * ever sent line-terminated. Tokens before a file name never contain spaces, so a
 * name (which may) is whatever lies between them and a trailing size.
 */
export type Request =
  | { verb: 'UPLOAD'; clientId: string; name: string; size: number }
  | { verb: 'UPLOAD_IF'; clientId: string; precondition: Precondition; name: string; size: number }
  | { verb: 'LIST'; clientId: string }
  | { verb: 'REPLICA'; clientId: string; name: string; size: number }
  | { verb: 'REPLICA_CHAIN'; clientId: string; next: ChainHop[]; name: string; size: number }
  | { verb: 'DOWNLOAD'; clientId: string; name: string }
  | { verb: 'DOWNLOAD_VERSION'; clientId: string; generation: number; name: string }
  | { verb: 'DELETE'; clientId: string; name: string }
  | { verb: 'DELETE_IF'; clientId: string; generation: number; name: string }
  | { verb: 'VERSIONS'; clientId: string; name: string }
  | { verb: 'RESTORE'; clientId: string; generation: number; name: string }
  | { verb: 'FILES'; clientId: string }
  /** What changed of a client's files above a generation: versions and tombstones (see changes.ts). */
  | { verb: 'CHANGES'; clientId: string; generation: number }
  | { verb: 'CLIENTS' }
  | { verb: 'STATUS' }
  | { verb: 'REPLICA_DELETE'; clientId: string; generation: number; mtimeMs: number; name: string }
  | { verb: 'DROP_VERSION'; clientId: string; generation: number; name: string }
  | { verb: 'INVENTORY' }
  | { verb: 'RESERVE'; generation: number }
  | { verb: 'SYNCED'; generation: number; session: string }
  | { verb: 'SCRUB' }
  | { verb: 'REVOKE'; keyId: string }
  | { verb: 'RENAME'; clientId: string; from: string; to: string }
  | { verb: 'RENAME_IF'; clientId: string; source: SourceRule; destination: DestinationRule; from: string; to: string }
  | { verb: 'REPLICA_RENAME'; clientId: string; sourceGeneration: number; generation: number; mtimeMs: number; keep: number; from: string; to: string };

export type Verb = Request['verb'];

export const Verbs: readonly Verb[] = [
  'UPLOAD',
  'UPLOAD_IF',
  'LIST',
  'REPLICA',
  'REPLICA_CHAIN',
  'DOWNLOAD',
  'DOWNLOAD_VERSION',
  'DELETE',
  'DELETE_IF',
  'VERSIONS',
  'RESTORE',
  'FILES',
  'CHANGES',
  'CLIENTS',
  'STATUS',
  'REPLICA_DELETE',
  'DROP_VERSION',
  'INVENTORY',
  'RESERVE',
  'SYNCED',
  'SCRUB',
  'REVOKE',
  'RENAME',
  'RENAME_IF',
  'REPLICA_RENAME',
];

/** The primary-to-replica verbs: with a cluster secret, replicas serve them only to the primary. */
export const MemberVerbs: readonly Verb[] = ['REPLICA', 'REPLICA_CHAIN', 'REPLICA_DELETE', 'REPLICA_RENAME', 'DROP_VERSION', 'INVENTORY', 'RESERVE', 'SYNCED', 'SCRUB'];

/** The failure token a verb answers with, so even a malformed request gets a reply its client understands. */
export function failureTokenFor(verb: string | undefined): string {
  switch (verb) {
    case 'UPLOAD':
    case 'UPLOAD_IF':
      return Reply.UPLOAD_FAILURE;
    case 'REPLICA':
    case 'REPLICA_CHAIN':
    case 'REPLICA_DELETE':
    case 'REPLICA_RENAME':
    case 'DROP_VERSION':
      return Reply.REPLICA_FAILURE;
    case 'RENAME':
    case 'RENAME_IF':
      return Reply.RENAME_FAILURE;
    case 'DELETE':
    case 'DELETE_IF':
      return Reply.DELETE_FAILURE;
    case 'RESTORE':
      return Reply.RESTORE_FAILURE;
    case 'DOWNLOAD':
    case 'DOWNLOAD_VERSION':
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

/** What each verb takes after its name, for the "needs ..." message. */
const USAGE: Record<Verb, string> = {
  UPLOAD: '<client_id> <filename> <filesize>',
  UPLOAD_IF: '<client_id> <generation|absent> <filename> <filesize>',
  LIST: '<client_id>',
  REPLICA: '<client_id> <filename> <filesize>',
  REPLICA_CHAIN: '<client_id> <next_hops|-> <filename> <filesize>',
  DOWNLOAD: '<client_id> <filename>',
  DOWNLOAD_VERSION: '<client_id> <generation> <filename>',
  DELETE: '<client_id> <filename>',
  DELETE_IF: '<client_id> <generation> <filename>',
  VERSIONS: '<client_id> <filename>',
  RESTORE: '<client_id> <generation> <filename>',
  FILES: '<client_id>',
  CHANGES: '<client_id> <generation>',
  CLIENTS: '',
  STATUS: '',
  REPLICA_DELETE: '<client_id> <generation> <time_ms> <filename>',
  DROP_VERSION: '<client_id> <generation> <filename>',
  INVENTORY: '',
  RESERVE: '<generation>',
  SYNCED: '<generation> <session>',
  SCRUB: '',
  REVOKE: '<key_id>',
  RENAME: '<client_id> <from> TAB <to>',
  RENAME_IF: '<client_id> <from_generation|any> <absent|any|to_generation> <from> TAB <to>',
  REPLICA_RENAME: '<client_id> <from_generation> <generation> <time_ms> <keep> <from> TAB <to>',
};

/**
 * The character between a rename's two names: names may hold spaces but never a
 * control character, so a tab cannot be part of either.
 */
export const NAME_SEPARATOR = '\t';

/**
 * Parses one header. Names may contain spaces: the tokens before a name (client id,
 * generation, precondition) and the size after it never do.
 */
export function parseRequest(line: string, maxFileSize = Number.MAX_SAFE_INTEGER): Request {
  const verb = verbOf(line);
  if (!(Verbs as readonly string[]).includes(verb)) {
    throw new DfsError('UNKNOWN_VERB', `unknown verb ${JSON.stringify(verb.slice(0, 40))}; expected one of ${Verbs.join(', ')}`);
  }
  const known = verb as Verb;
  const rest = line.length > verb.length ? line.slice(verb.length + 1) : '';
  const usage = (): DfsError => new DfsError('BAD_HEADER', `${known} needs ${USAGE[known] || 'no arguments'}`);
  /** Splits `count` space-free tokens off the front; the rest is what follows them. */
  const leading = (count: number): { tokens: string[]; remainder: string } => {
    const tokens: string[] = [];
    let remainder = rest;
    for (let index = 0; index < count; index++) {
      const space = remainder.indexOf(' ');
      if (space <= 0) {
        throw usage();
      }
      tokens.push(remainder.slice(0, space));
      remainder = remainder.slice(space + 1);
    }
    return { tokens, remainder };
  };
  const nameAndSize = (remainder: string): { name: string; size: number } => {
    const lastSpace = remainder.lastIndexOf(' ');
    if (lastSpace === -1) {
      throw usage();
    }
    return { name: validateFileName(remainder.slice(0, lastSpace)), size: parseSize(remainder.slice(lastSpace + 1), maxFileSize) };
  };
  const twoNames = (remainder: string): { from: string; to: string } => {
    const parts = remainder.split(NAME_SEPARATOR);
    if (parts.length !== 2) {
      throw new DfsError('BAD_HEADER', `${known} needs ${USAGE[known]}: the two names separated by one tab`);
    }
    return { from: validateFileName(parts[0]), to: validateFileName(parts[1]) };
  };
  switch (known) {
    case 'UPLOAD':
    case 'REPLICA': {
      const { tokens, remainder } = leading(1);
      return { verb: known, clientId: validateClientId(tokens[0]), ...nameAndSize(remainder) };
    }
    case 'REPLICA_CHAIN': {
      const { tokens, remainder } = leading(2);
      return { verb: known, clientId: validateClientId(tokens[0]), next: parseChainHops(tokens[1]), ...nameAndSize(remainder) };
    }
    case 'UPLOAD_IF': {
      const { tokens, remainder } = leading(2);
      return { verb: known, clientId: validateClientId(tokens[0]), precondition: parsePrecondition(tokens[1]), ...nameAndSize(remainder) };
    }
    case 'DOWNLOAD':
    case 'DELETE':
    case 'VERSIONS': {
      const { tokens, remainder } = leading(1);
      return { verb: known, clientId: validateClientId(tokens[0]), name: validateFileName(remainder) };
    }
    case 'DOWNLOAD_VERSION':
    case 'DELETE_IF':
    case 'RESTORE':
    case 'DROP_VERSION': {
      const { tokens, remainder } = leading(2);
      return { verb: known, clientId: validateClientId(tokens[0]), generation: parseGeneration(tokens[1]), name: validateFileName(remainder) };
    }
    case 'REPLICA_DELETE': {
      const { tokens, remainder } = leading(3);
      return {
        verb: known,
        clientId: validateClientId(tokens[0]),
        generation: parseGeneration(tokens[1]),
        mtimeMs: parseGeneration(tokens[2]),
        name: validateFileName(remainder),
      };
    }
    case 'CHANGES': {
      const { tokens, remainder } = leading(1);
      if (remainder.length === 0 || remainder.includes(' ')) {
        throw usage();
      }
      return { verb: known, clientId: validateClientId(tokens[0]), generation: parseGeneration(remainder) };
    }
    case 'RENAME': {
      const { tokens, remainder } = leading(1);
      return { verb: known, clientId: validateClientId(tokens[0]), ...twoNames(remainder) };
    }
    case 'RENAME_IF': {
      const { tokens, remainder } = leading(3);
      return {
        verb: known,
        clientId: validateClientId(tokens[0]),
        source: parseSourceRule(tokens[1]),
        destination: parseDestinationRule(tokens[2]),
        ...twoNames(remainder),
      };
    }
    case 'REPLICA_RENAME': {
      const { tokens, remainder } = leading(5);
      return {
        verb: known,
        clientId: validateClientId(tokens[0]),
        sourceGeneration: parseGeneration(tokens[1]),
        generation: parseGeneration(tokens[2]),
        mtimeMs: parseGeneration(tokens[3]),
        keep: parseGeneration(tokens[4]),
        ...twoNames(remainder),
      };
    }
    case 'LIST':
    case 'FILES': {
      if (rest.length === 0 || rest.includes(' ')) {
        throw new DfsError('BAD_HEADER', `${known} needs exactly <client_id>`);
      }
      return { verb: known, clientId: validateClientId(rest) };
    }
    case 'RESERVE': {
      if (rest.length === 0 || rest.includes(' ')) {
        throw usage();
      }
      return { verb: known, generation: parseGeneration(rest) };
    }
    case 'SYNCED': {
      const match = /^(\d{1,16}) ([0-9a-f]{16})$/.exec(rest);
      if (!match) {
        throw usage();
      }
      return { verb: known, generation: parseGeneration(match[1]), session: match[2] };
    }
    case 'REVOKE': {
      if (!/^[0-9a-f]{16}$/.test(rest)) {
        throw new DfsError('BAD_HEADER', 'REVOKE needs <key_id>: 16 hex digits, as in the key after its kind and client id');
      }
      return { verb: known, keyId: rest };
    }
    case 'CLIENTS':
    case 'STATUS':
    case 'INVENTORY':
    case 'SCRUB': {
      if (line !== verb) {
        throw new DfsError('BAD_HEADER', `${known} takes no arguments`);
      }
      return { verb: known };
    }
  }
}

export function formatRequest(request: Request): string {
  switch (request.verb) {
    case 'UPLOAD':
    case 'REPLICA':
      return `${request.verb} ${request.clientId} ${request.name} ${request.size}`;
    case 'REPLICA_CHAIN':
      return `${request.verb} ${request.clientId} ${formatChainHops(request.next)} ${request.name} ${request.size}`;
    case 'UPLOAD_IF':
      return `${request.verb} ${request.clientId} ${formatPrecondition(request.precondition)} ${request.name} ${request.size}`;
    case 'DOWNLOAD':
    case 'DELETE':
    case 'VERSIONS':
      return `${request.verb} ${request.clientId} ${request.name}`;
    case 'DOWNLOAD_VERSION':
    case 'DELETE_IF':
    case 'RESTORE':
    case 'DROP_VERSION':
      return `${request.verb} ${request.clientId} ${request.generation} ${request.name}`;
    case 'REPLICA_DELETE':
      return `${request.verb} ${request.clientId} ${request.generation} ${request.mtimeMs} ${request.name}`;
    case 'LIST':
    case 'FILES':
      return `${request.verb} ${request.clientId}`;
    case 'CHANGES':
      return `${request.verb} ${request.clientId} ${request.generation}`;
    case 'RESERVE':
      return `${request.verb} ${request.generation}`;
    case 'SYNCED':
      return `${request.verb} ${request.generation} ${request.session}`;
    case 'REVOKE':
      return `${request.verb} ${request.keyId}`;
    case 'RENAME':
      return `${request.verb} ${request.clientId} ${request.from}${NAME_SEPARATOR}${request.to}`;
    case 'RENAME_IF':
      return `${request.verb} ${request.clientId} ${formatSourceRule(request.source)} ${formatDestinationRule(request.destination)} ${request.from}${NAME_SEPARATOR}${request.to}`;
    case 'REPLICA_RENAME':
      return `${request.verb} ${request.clientId} ${request.sourceGeneration} ${request.generation} ${request.mtimeMs} ${request.keep} ${request.from}${NAME_SEPARATOR}${request.to}`;
    case 'CLIENTS':
    case 'STATUS':
    case 'INVENTORY':
    case 'SCRUB':
      return request.verb;
  }
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

export function parseGeneration(text: string): number {
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new DfsError('BAD_HEADER', `${JSON.stringify(text.slice(0, 40))} is not a generation (a whole number)`);
  }
  return Number(text);
}

/** `FILE <size> <sha256> <generation>`: what precedes a download's bytes. */
export interface FileHeader {
  size: number;
  sha256: string;
  generation: number;
}

export function formatFileHeader(header: FileHeader): string {
  return `${Reply.FILE} ${header.size} ${header.sha256} ${header.generation}`;
}

export function parseFileHeader(payload: string): FileHeader {
  const match = /^(\d{1,16}) ([0-9a-f]{64}) (\d{1,16})$/.exec(payload);
  if (!match) {
    throw new DfsError('PROTOCOL', `expected FILE <size> <sha256> <generation>, got FILE ${JSON.stringify(payload.slice(0, 100))}`);
  }
  return { size: Number(match[1]), sha256: match[2], generation: Number(match[3]) };
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
