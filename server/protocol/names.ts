import { DfsError } from './errors';

export const MAX_NAME_BYTES = 4096;
const MAX_SEGMENT_BYTES = 255;

/**
 * A client id names one directory directly under a node's root, so it may hold no
 * separator at all; a leading dot is refused because `.dfs` holds the node's own state.
 */
export function validateClientId(clientId: string): string {
  if (clientId.length === 0) {
    throw new DfsError('BAD_CLIENT_ID', 'client id is empty');
  }
  if (Buffer.byteLength(clientId) > MAX_SEGMENT_BYTES) {
    throw new DfsError('BAD_CLIENT_ID', `client id is longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  if (/[/\\\0\s]/.test(clientId) || hasControlCharacter(clientId)) {
    throw new DfsError('BAD_CLIENT_ID', `client id ${JSON.stringify(clientId)} may not contain separators, spaces or control characters`);
  }
  if (clientId.startsWith('.')) {
    throw new DfsError('BAD_CLIENT_ID', `client id ${JSON.stringify(clientId)} may not start with "."`);
  }
  return clientId;
}

/**
 * A file name may name folders with `/`, as folder uploads keep relative paths, but it
 * can never climb out of the client's directory or reach the node's own state.
 */
export function validateFileName(name: string): string {
  if (name.length === 0) {
    throw new DfsError('BAD_FILE_NAME', 'file name is empty');
  }
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new DfsError('BAD_FILE_NAME', `file name is longer than ${MAX_NAME_BYTES} bytes`);
  }
  if (name.includes('\0')) {
    throw new DfsError('BAD_FILE_NAME', 'file name contains a NUL byte');
  }
  if (name.includes('\\')) {
    throw new DfsError('BAD_FILE_NAME', `file name ${JSON.stringify(name)} contains a backslash; use "/" between folders`);
  }
  if (hasControlCharacter(name)) {
    throw new DfsError('BAD_FILE_NAME', `file name ${JSON.stringify(name)} contains a control character`);
  }
  if (name.startsWith('/')) {
    throw new DfsError('BAD_FILE_NAME', `file name ${JSON.stringify(name)} starts with "/"; names are relative to the client's folder`);
  }
  for (const segment of name.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw new DfsError('BAD_FILE_NAME', `file name ${JSON.stringify(name)} has an empty, "." or ".." folder`);
    }
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) {
      throw new DfsError('BAD_FILE_NAME', `a part of file name ${JSON.stringify(name)} is longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
  }
  return name;
}

function hasControlCharacter(text: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(text);
}
