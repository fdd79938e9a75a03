import * as path from 'path';

/**
 * Reads the output of `strace -f -yy -s N` into calls: an "<unfinished ...>" line is
 * joined with its "<... resumed>" line, fds carry the path or socket strace decorated
 * them with, strings are decoded, and paths that reach a file through a folder
 * handle (`/proc/self/fd/<n>/<name>`, how ContainedFs works) are resolved to the
 * folder's real path as it was when the call started. Pure: no file or process.
 */

export interface Call {
  /** Line (0-based) where the call started and where it returned (the same unless another thread's line came between). */
  start: number;
  end: number;
  tid: string;
  name: string;
  /** The arguments as strace printed them, split at top-level commas. */
  args: string[];
  /** What strace printed after "= ": "0", "-1 ENOENT (No such file ...)", "27</a/b>", "?". */
  result: string;
  ok: boolean;
  /** The fd argument's decoration (a path, or "TCP:[a:p->b:q]"), for calls whose first argument is an fd. */
  target?: string;
  /** The decoration of the fd a call returned (openat). */
  opened?: string;
  /** Path arguments, absolute, with /proc/self/fd/<n> and dirfds resolved. */
  paths: string[];
  /** Bytes a read or write carried (latin1), decoded from strace's escapes. */
  data?: string;
  /** strace cut the string at -s: `data` is only its beginning. */
  truncated: boolean;
}

export interface Trace {
  lines: string[];
  calls: Call[];
}

const PATH_ARGS: Record<string, number[]> = {
  open: [0],
  openat: [1],
  rename: [0, 1],
  renameat: [1, 3],
  renameat2: [1, 3],
  link: [0, 1],
  linkat: [1, 3],
  unlink: [0],
  unlinkat: [1],
  mkdir: [0],
  mkdirat: [1],
  rmdir: [0],
};
/** For the *at calls: which argument is the folder each path argument is relative to. */
const DIRFD_OF: Record<string, Record<number, number>> = {
  openat: { 1: 0 },
  renameat: { 1: 0, 3: 2 },
  renameat2: { 1: 0, 3: 2 },
  linkat: { 1: 0, 3: 2 },
  unlinkat: { 1: 0 },
  mkdirat: { 1: 0 },
};
const DATA_CALLS = new Set(['read', 'pread64', 'readv', 'recvfrom', 'write', 'pwrite64', 'writev', 'pwritev', 'pwritev2', 'sendto', 'sendmsg']);

export function parseStrace(text: string): Trace {
  const lines = text.split('\n');
  const calls: Call[] = [];
  const unfinished = new Map<string, { start: number; text: string }>();
  /** fd -> decoration, as of the line being read (one process: threads share fds). */
  const fds = new Map<string, string>();
  const resolveAt = new Map<string, string[]>();
  lines.forEach((line, index) => {
    const match = /^(\d+)\s+(.*)$/.exec(line);
    if (!match) {
      return;
    }
    const [, tid, rest] = match;
    const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(rest);
    let start = index;
    let body: string;
    if (resumed) {
      const begun = unfinished.get(tid);
      if (!begun) {
        return;
      }
      unfinished.delete(tid);
      start = begun.start;
      body = begun.text + resumed[2];
    } else {
      if (!/^\w+\(/.test(rest)) {
        return; // signals, exits
      }
      const cut = rest.endsWith(' <unfinished ...>') ? rest.slice(0, -' <unfinished ...>'.length) : undefined;
      if (cut !== undefined) {
        unfinished.set(tid, { start: index, text: cut });
        // Paths are resolved with the fds as they were when the call began.
        const name = /^(\w+)\(/.exec(cut)![1];
        if (PATH_ARGS[name]) {
          resolveAt.set(`${tid}:${index}`, resolvePaths(name, splitArgs(cut.slice(name.length + 1)).args, fds));
        }
        return;
      }
      body = rest;
    }
    const name = /^(\w+)\(/.exec(body)![1];
    const { args, after } = splitArgs(body.slice(name.length + 1));
    const result = /^\s*=\s*(.*)$/.exec(after)?.[1] ?? '?';
    const call: Call = {
      start,
      end: index,
      tid,
      name,
      args,
      result,
      ok: !result.startsWith('-1') && !result.startsWith('?'),
      paths: resolveAt.get(`${tid}:${start}`) ?? (PATH_ARGS[name] ? resolvePaths(name, args, fds) : []),
      truncated: false,
    };
    resolveAt.delete(`${tid}:${start}`);
    const fd = /^(\d+)<(.*)>$/.exec(args[0] ?? '');
    if (fd && !PATH_ARGS[name]) {
      call.target = fd[2];
    }
    const returned = /^(\d+)<(.*)>$/.exec(result);
    if (returned) {
      call.opened = returned[2];
      fds.set(returned[1], returned[2]);
    }
    if (DATA_CALLS.has(name) && args[1] !== undefined) {
      const strings = decodeStrings(args[1]);
      call.data = strings.text;
      call.truncated = strings.truncated;
    }
    calls.push(call);
  });
  return { lines, calls };
}

/** Splits `a, "b, c", [{x=1}, {y=2}], 3) = 0` at its top-level commas; `after` is what follows the closing parenthesis. */
export function splitArgs(text: string): { args: string[]; after: string } {
  const args: string[] = [];
  let depth = 0;
  let inString = false;
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      current += ch;
      if (ch === '\\') {
        current += text[++i] ?? '';
      } else if (ch === '"') {
        inString = false;
      }
      continue;
    }
    if (ch === '"') {
      inString = true;
      current += ch;
    } else if (ch === '(' || ch === '[' || ch === '{') {
      depth++;
      current += ch;
    } else if ((ch === ')' || ch === ']' || ch === '}') && depth > 0) {
      depth--;
      current += ch;
    } else if (ch === ')') {
      if (current.trim() !== '') {
        args.push(current.trim());
      }
      return { args, after: text.slice(i + 1) };
    } else if (ch === ',' && depth === 0) {
      args.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  if (current.trim() !== '') {
    args.push(current.trim());
  }
  return { args, after: '' };
}

/** Every quoted string in an argument (one for write, several for writev's iovecs), decoded and joined. */
export function decodeStrings(arg: string): { text: string; truncated: boolean } {
  let text = '';
  let truncated = false;
  for (const match of arg.matchAll(/"((?:[^"\\]|\\.)*)"(\.\.\.)?/g)) {
    text += unescapeC(match[1]);
    truncated ||= match[2] !== undefined;
  }
  return { text, truncated };
}

function unescapeC(escaped: string): string {
  return escaped.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, code: string) => {
    if (code[0] === 'x') {
      return String.fromCharCode(parseInt(code.slice(1), 16));
    }
    if (/^[0-7]/.test(code)) {
      return String.fromCharCode(parseInt(code, 8));
    }
    return { n: '\n', t: '\t', r: '\r', v: '\v', f: '\f' }[code] ?? code;
  });
}

function resolvePaths(name: string, args: string[], fds: Map<string, string>): string[] {
  return (PATH_ARGS[name] ?? []).map((position) => {
    const raw = decodeStrings(args[position] ?? '').text;
    const viaHandle = /^\/proc\/self\/fd\/(\d+)(\/.*)?$/.exec(raw);
    if (viaHandle && fds.has(viaHandle[1])) {
      return path.posix.normalize(fds.get(viaHandle[1])! + (viaHandle[2] ?? ''));
    }
    if (raw.startsWith('/')) {
      return path.posix.normalize(raw);
    }
    const dirfd = DIRFD_OF[name]?.[position];
    const folder = dirfd === undefined ? undefined : /<(.*)>$/.exec(args[dirfd] ?? '')?.[1];
    return folder ? path.posix.join(folder, raw) : raw;
  });
}
