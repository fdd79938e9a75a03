import * as path from 'path';
import type { Call, Trace } from './strace-parse';
import { demultiplex } from './strace-streams';

/**
 * The ordering rules a node's durability rests on, checked over one node's strace
 * (see strace-parse.ts). A kill -9 keeps the page cache, so no crash test can show a
 * sync that is missing or late; these rules can, call by call:
 *
 *   a. Bytes before what publishes them: a file renamed (into place, or the catalog
 *      snapshot) was fsynced after its last write and before the rename, unless it is
 *      an inline placement (rule e); staged bytes
 *      a journal record names were fsynced, and their entry in the staging folder
 *      synced, before that record was written; the same before REPLICA_PREPARED; and
 *      the primary writes the record committing an upload only after reading
 *      REPLICA_PREPARED from the replica it then sends COMMIT.
 *   b. Folders after their entries change: every rename, link, removal or new folder
 *      that puts a name's bytes in place (or takes them away) had its folder fsynced
 *      after it and before the reply that says the change is done; the rename of an
 *      inline placement excepted (rule e).
 *   c. Records before what announces them: every journal record of a name (or the
 *      marks a RESERVE or SYNCED raised) was fsynced, and a journal file created
 *      meanwhile had its folder synced, before any message announcing it went to a
 *      socket: UPLOAD_SUCCESS, DELETE_SUCCESS, RENAME_SUCCESS, RESTORE_SUCCESS,
 *      REPLICA_SUCCESS, OK, and the primary's COMMIT, REPLICA_DELETE and
 *      REPLICA_RENAME to its replicas. A rename's link of its source into the staging
 *      folder was followed by an fsync of that folder before the record naming it.
 *   d. Compaction: an old journal file is removed only once the snapshot that
 *      replaces it is renamed into place and the catalog folder synced after that.
 *   e. Inline placements: a staged file renamed into place whose name's latest
 *      journal record carries its bytes (a small file). The record is the durable copy
 *      until the placed file is, so the rename needs no sync before the reply (rule c
 *      still requires the record, bytes and all, synced before any message announcing
 *      it); instead the fingerprint note that confirms the placement (and lets the
 *      catalog forget the bytes) is written only after the placed file was fsynced
 *      (through the handle that wrote it, after its last write, or by its new name
 *      after the rename) and the folder it was renamed into was fsynced after the
 *      rename. An older version linked into history before such a rename replaces
 *      the live file had that link synced in its folder before the rename: its bytes
 *      are in no record any more.
 */

export type Rule = 'a' | 'b' | 'c' | 'd' | 'e' | 'unreadable';

export interface Violation {
  rule: Rule;
  /** What went wrong, in words. */
  message: string;
  /** The file or folder concerned. */
  file: string;
  /** Trace lines (0-based) to show: the change and what depends on it. */
  lines: number[];
}

/** What the check looked at, so a test can tell "nothing wrong" from "nothing seen". */
export interface Coverage {
  /** Messages checked, by what they answer: "UPLOAD -> UPLOAD_SUCCESS", "(out) REPLICA -> COMMIT", ... */
  messages: Map<string, number>;
  /** Of those, how many had a journal record of their own (written after their request). */
  recorded: Map<string, number>;
  renames: number;
  /** Journal records naming staged bytes. */
  stagedRecords: number;
  /** Of those, renames' records naming a link to their source. */
  linkedRecords: number;
  /** Folder entries (renames, links, removals, new folders) checked against a reply. */
  entries: number;
  /** Old journal files removed after a snapshot (rule d). */
  compactions: number;
  /** Journal records carrying their version's bytes inline. */
  inlineRecords: number;
  /** Renames of inline bytes into place (rule e), and of those how many a fingerprint note confirmed later. */
  inlinePlacements: number;
  confirmedInline: number;
}

export interface SyncReport {
  violations: Violation[];
  coverage: Coverage;
}

const WRITES = new Set(['write', 'pwrite64', 'writev', 'pwritev', 'pwritev2', 'sendto', 'sendmsg']);
const READS = new Set(['read', 'readv', 'recvfrom']);
const SYNCS = new Set(['fsync', 'fdatasync']);
const RENAMES = new Set(['rename', 'renameat', 'renameat2']);
const JOURNAL = /^(.*)\/\.dfs\/catalog\/journal-\d+\.log$/;

interface JournalLine {
  write: Call;
  journal: string;
  root: string;
  /** `client\0name` of a version, tombstone or drop. */
  key?: string;
  generation?: number;
  marks?: Record<string, unknown>;
  staged?: string;
  /** The record carries the version's bytes. */
  inline?: boolean;
}

interface Request {
  call: Call;
  /** Read from the socket (a request to this node), or written to it (this node's request to a replica). */
  incoming: boolean;
  verb: string;
  /** For a REPLICA this node sent: when the replica's REPLICA_PREPARED was read. */
  prepared?: Call;
  /** For a REPLICA this node sent: the generation its CHECKSUM step named. */
  generation?: number;
  key?: string;
  /** A rename's two names (`key` is unset then). */
  keys?: string[];
  argument?: number;
}

const nameKey = (clientId: string, name: string): string => `${clientId}\0${name}`;

/** The request line a socket read or write starts with, if it is one the rules follow. */
function parseRequest(data: string): Omit<Request, 'call' | 'incoming'> | undefined {
  const line = data.slice(0, data.indexOf('\n') === -1 ? data.length : data.indexOf('\n'));
  const tokens = line.split(' ');
  const [verb, clientId] = tokens;
  const name = (from: number, to?: number): string => tokens.slice(from, to).join(' ');
  switch (verb) {
    case 'UPLOAD':
    case 'REPLICA':
      return tokens.length >= 4 ? { verb, key: nameKey(clientId, name(2, -1)) } : undefined;
    case 'UPLOAD_IF':
      return tokens.length >= 5 ? { verb, key: nameKey(clientId, name(3, -1)) } : undefined;
    case 'DELETE':
      return tokens.length >= 3 ? { verb, key: nameKey(clientId, name(2)) } : undefined;
    case 'DELETE_IF':
    case 'RESTORE':
    case 'DROP_VERSION':
      return tokens.length >= 4 ? { verb, key: nameKey(clientId, name(3)) } : undefined;
    case 'REPLICA_DELETE':
      return tokens.length >= 5 ? { verb, key: nameKey(clientId, name(4)) } : undefined;
    case 'RENAME':
    case 'RENAME_IF':
    case 'REPLICA_RENAME': {
      const names = name(verb === 'RENAME' ? 2 : verb === 'RENAME_IF' ? 4 : 6).split('\t');
      return names.length === 2 ? { verb, keys: names.map((each) => nameKey(clientId, each)) } : undefined;
    }
    case 'RESERVE':
    case 'SYNCED':
      return tokens.length >= 2 ? { verb, argument: Number(tokens[1]) } : undefined;
    default:
      return undefined;
  }
}

/** Which replies to a request announce a durable change. */
const ANNOUNCING: Record<string, string[]> = {
  UPLOAD: ['UPLOAD_SUCCESS'],
  UPLOAD_IF: ['UPLOAD_SUCCESS'],
  DELETE: ['DELETE_SUCCESS'],
  DELETE_IF: ['DELETE_SUCCESS'],
  RENAME: ['RENAME_SUCCESS'],
  RENAME_IF: ['RENAME_SUCCESS'],
  REPLICA_RENAME: ['REPLICA_SUCCESS'],
  RESTORE: ['RESTORE_SUCCESS'],
  REPLICA: ['REPLICA_PREPARED', 'REPLICA_SUCCESS'],
  REPLICA_DELETE: ['REPLICA_SUCCESS'],
  DROP_VERSION: ['REPLICA_SUCCESS'],
  RESERVE: ['OK'],
  SYNCED: ['OK'],
};

const isSocket = (target: string | undefined): boolean => target !== undefined && /^(TCP|TCPv6|UNIX):/.test(target);
const startsWithToken = (data: string, token: string): boolean => data === token || data.startsWith(token + ' ') || data.startsWith(token + '\n');

export function checkSyncOrder(trace: Trace): SyncReport {
  const { calls } = trace;
  const violations: Violation[] = [];
  const coverage: Coverage = { messages: new Map(), recorded: new Map(), renames: 0, stagedRecords: 0, linkedRecords: 0, entries: 0, compactions: 0, inlineRecords: 0, inlinePlacements: 0, confirmedInline: 0 };
  const count = (map: Map<string, number>, label: string): void => {
    map.set(label, (map.get(label) ?? 0) + 1);
  };

  const syncs = calls.filter((call) => SYNCS.has(call.name) && call.ok);
  const syncedBetween = (file: string, after: number, before: number): boolean => syncs.some((sync) => sync.target === file && sync.start > after && sync.end < before);
  const writesTo = new Map<string, Call[]>();
  for (const call of calls) {
    if (WRITES.has(call.name) && call.ok && call.target?.startsWith('/')) {
      writesTo.set(call.target, [...(writesTo.get(call.target) ?? []), call]);
    }
  }
  /** Undefined when every byte written to `file` before line `before` was fsynced before it; else the last unsynced write. */
  const unsyncedWrite = (file: string, before: number): Call | undefined => {
    const last = (writesTo.get(file) ?? []).filter((write) => write.end < before).at(-1);
    return last && !syncedBetween(file, last.end, before) ? last : undefined;
  };
  const createdBefore = (file: string, before: number): Call | undefined =>
    calls.filter((call) => (call.name === 'openat' || call.name === 'open') && call.ok && call.opened === file && /O_CREAT/.test(call.args.join(',')) && call.end < before).at(-1);

  // The journal records, parsed back from what was written.
  const records: JournalLine[] = [];
  /** Fingerprint notes: not durable themselves, but rule e orders them. */
  const notes: { write: Call; root: string; clientId: string; name: string; generation: number }[] = [];
  for (const [file, writes] of writesTo) {
    const journal = JOURNAL.exec(file);
    if (!journal) {
      continue;
    }
    for (const write of writes) {
      if (write.truncated) {
        violations.push({ rule: 'unreadable', message: 'a journal write was cut short by strace (raise -s): its records cannot be checked', file, lines: [write.start] });
        continue;
      }
      for (const text of (write.data ?? '').split('\n').filter((line) => line.length > 0)) {
        type Line = { r?: { clientId: string; name: string; generation: number }; d?: [string, string, number]; m?: Record<string, unknown>; s?: string; b?: string; f?: [string, string, number]; a?: Line[] };
        let parsed: Line;
        try {
          parsed = JSON.parse(Buffer.from(text, 'latin1').toString('utf8')) as Line;
        } catch {
          violations.push({ rule: 'unreadable', message: `a journal line does not parse: ${text.slice(0, 80)}`, file, lines: [write.start] });
          continue;
        }
        const base = { write, journal: file, root: journal[1] };
        // A rename's records share one line: each is a record of that write.
        for (const line of parsed.a ?? [parsed]) {
          if (line.r) {
            records.push({ ...base, key: nameKey(line.r.clientId, line.r.name), generation: line.r.generation, staged: line.s, inline: line.b !== undefined });
          } else if (line.d) {
            records.push({ ...base, key: nameKey(line.d[0], line.d[1]), generation: line.d[2] });
          } else if (line.m) {
            records.push({ ...base, marks: line.m });
          }
        }
        // Fingerprint notes ("f") are not durable on purpose: a lost one costs a rehash.
        if (parsed.f) {
          notes.push({ write, root: journal[1], clientId: parsed.f[0], name: parsed.f[1], generation: parsed.f[2] });
        }
      }
    }
  }
  const root = records[0]?.root;
  for (const call of calls.filter((candidate) => candidate.paths.some((file) => file.startsWith('/proc/self/fd/')))) {
    violations.push({ rule: 'unreadable', message: `${call.name} goes through a folder handle the trace never saw opened (${call.paths.join(', ')}): start strace before the server`, file: call.paths[0], lines: [call.start] });
  }

  // Inline placements: staged bytes renamed into place whose record carries them (rule e, not a or b).
  const inlinePlacements = new Map<Call, { clientId: string; name: string; generation: number }>();
  for (const rename of calls.filter((call) => RENAMES.has(call.name) && call.ok)) {
    const [from, to] = rename.paths;
    if (!root || !from?.startsWith(`${root}/.dfs/tmp/`) || !to?.startsWith(`${root}/`)) {
      continue;
    }
    const relative = to.slice(root.length + 1);
    const history = /^\.dfs\/versions\/([^/]+)\/(\d+)$/.exec(relative);
    const earlier = records.filter((line) => line.write.end < rename.start);
    let record: JournalLine | undefined;
    if (history) {
      record = earlier.filter((line) => line.key?.startsWith(`${history[1]}\0`) && line.generation === Number(history[2])).at(-1);
    } else if (!relative.startsWith('.dfs/')) {
      const slash = relative.indexOf('/');
      record = earlier.filter((line) => line.key === nameKey(relative.slice(0, slash), relative.slice(slash + 1)) && line.generation !== undefined && !line.marks).at(-1);
    }
    if (record?.inline) {
      const [clientId, name] = record.key!.split('\0');
      inlinePlacements.set(rename, { clientId, name, generation: record.generation! });
    }
  }

  // Rule a: bytes before the rename or the record that publishes them.
  for (const rename of calls.filter((call) => RENAMES.has(call.name) && call.ok)) {
    coverage.renames++;
    if (inlinePlacements.has(rename)) {
      continue;
    }
    const [from, to] = rename.paths;
    const write = unsyncedWrite(from, rename.start);
    if (write) {
      violations.push({ rule: 'a', message: `${from} was renamed to ${to} but the bytes written to it were not fsynced in between`, file: from, lines: [write.start, rename.start] });
    }
  }
  const stagedSafe = (staged: string, jRoot: string, before: number, what: string, at: Call): void => {
    const file = `${jRoot}/.dfs/tmp/${staged}`;
    const write = unsyncedWrite(file, before);
    if (write) {
      violations.push({ rule: 'a', message: `the staged bytes ${file} were not fsynced after their last write and before ${what}`, file, lines: [write.start, at.start] });
    }
    const created = createdBefore(file, before);
    if (created && !syncedBetween(path.posix.dirname(file), created.end, before)) {
      violations.push({ rule: 'a', message: `the staging folder was not fsynced after ${file} was created and before ${what}, so a crash may lose its name`, file: path.posix.dirname(file), lines: [created.start, at.start] });
    }
    // A rename's staged bytes are a link to its source's file.
    const linked = calls.filter((call) => (call.name === 'link' || call.name === 'linkat') && call.ok && call.paths[1] === file && call.end < before).at(-1);
    if (linked) {
      coverage.linkedRecords++;
      if (!syncedBetween(path.posix.dirname(file), linked.end, before)) {
        violations.push({ rule: 'a', message: `the staging folder was not fsynced after ${file} was linked to a rename's source and before ${what}, so a crash may lose the bytes`, file: path.posix.dirname(file), lines: [linked.start, at.start] });
      }
    }
  };
  for (const record of records.filter((line) => line.staged)) {
    coverage.stagedRecords++;
    stagedSafe(record.staged!, record.root, record.write.start, 'the journal record naming them', record.write);
  }

  // Conversations: requests read or written on each socket (each stream of a multiplexed one), and what followed on it.
  const bySocket = new Map<string, Call[]>();
  for (const call of calls) {
    if ((WRITES.has(call.name) || READS.has(call.name)) && call.ok && isSocket(call.target) && call.data) {
      bySocket.set(call.target!, [...(bySocket.get(call.target!) ?? []), call]);
    }
  }

  const checkRecords = (label: string, message: Call, matches: (line: JournalLine) => boolean, since?: number): void => {
    count(coverage.messages, label);
    const before = records.filter((line) => matches(line) && line.write.end < message.start);
    if (since !== undefined && before.some((line) => line.write.start > since)) {
      count(coverage.recorded, label);
    }
    const seen = new Set<Call>();
    for (const { write, journal } of before) {
      if (seen.has(write)) {
        continue;
      }
      seen.add(write);
      if (!syncedBetween(journal, write.end, message.start)) {
        violations.push({ rule: 'c', message: `${label}: a journal record it announces was not fsynced before it was written to the socket`, file: journal, lines: [write.start, message.start] });
      }
      const created = createdBefore(journal, message.start);
      if (created && !syncedBetween(path.posix.dirname(journal), created.end, message.start)) {
        violations.push({ rule: 'c', message: `${label}: the journal file holding its record was created but its folder not fsynced before the message`, file: journal, lines: [created.start, message.start] });
      }
    }
  };

  const checkEntries = (label: string, request: Call, message: Call, key: string): void => {
    if (!root) {
      return;
    }
    const [clientId, name] = key.split('\0');
    const live = `${root}/${clientId}/${name}`;
    const versions = `${root}/.dfs/versions/${clientId}`;
    const generations = new Set(records.filter((line) => line.key === key).map((line) => line.generation));
    const isVersionOf = (file: string): boolean => path.posix.dirname(file) === versions && generations.has(Number(path.posix.basename(file)));
    const isFolderOf = (folder: string): boolean => folder === versions || (folder.startsWith(`${root}/${clientId}`) && live.startsWith(folder + '/'));
    const window = calls.filter((call) => call.ok && call.start > request.start && call.end < message.start);
    const removedFolder = (folder: string, after: number): boolean =>
      window.some((call) => (call.name === 'rmdir' || (call.name === 'unlinkat' && /AT_REMOVEDIR/.test(call.args.join(',')))) && call.paths[0] === folder && call.start > after);
    for (const change of window) {
      if (inlinePlacements.has(change)) {
        continue;
      }
      let entry: string | undefined;
      if (RENAMES.has(change.name) || change.name === 'link' || change.name === 'linkat') {
        const [from, to] = change.paths;
        entry = to === live || from === live || isVersionOf(to) ? to : undefined;
      } else if (change.name === 'unlink' || change.name === 'unlinkat') {
        const folderRemoval = /AT_REMOVEDIR/.test(change.args.join(','));
        entry = (!folderRemoval && (change.paths[0] === live || isVersionOf(change.paths[0]))) || (folderRemoval && isFolderOf(change.paths[0])) ? change.paths[0] : undefined;
      } else if (change.name === 'mkdir' || change.name === 'mkdirat' || change.name === 'rmdir') {
        entry = isFolderOf(change.paths[0]) ? change.paths[0] : undefined;
      }
      if (!entry) {
        continue;
      }
      const folder = path.posix.dirname(entry);
      if (removedFolder(folder, change.end)) {
        continue; // Its folder went too: that removal is the entry that must be synced.
      }
      coverage.entries++;
      if (!syncedBetween(folder, change.end, message.start)) {
        violations.push({ rule: 'b', message: `${label}: ${change.name} of ${entry} was not followed by an fsync of ${folder} before the reply`, file: folder, lines: [change.start, message.start] });
      }
    }
  };

  const { conversations, unreadable } = demultiplex(bySocket, (call) => WRITES.has(call.name));
  for (const call of unreadable) {
    violations.push({ rule: 'unreadable', message: 'a read or write of a multiplexed connection was cut short by strace (raise -s): its frames cannot be followed', file: call.target ?? '', lines: [call.start] });
  }
  for (const conversation of conversations.values()) {
    let request: Request | undefined;
    for (const call of conversation) {
      const incoming = READS.has(call.name);
      const parsed = parseRequest(call.data!);
      if (parsed && incoming) {
        request = { call, incoming, ...parsed };
        continue;
      }
      if (parsed?.verb === 'REPLICA_DELETE') {
        // The primary tells a replica of a delete only once its own tombstone is on disk.
        checkRecords('(out) REPLICA_DELETE', call, (line) => line.key === parsed.key);
        request = undefined;
        continue;
      }
      if (parsed?.verb === 'REPLICA_RENAME' && !incoming) {
        // ... and of a rename only once its own record of both names is on disk.
        checkRecords('(out) REPLICA_RENAME', call, (line) => parsed.keys!.includes(line.key!));
        request = undefined;
        continue;
      }
      if (parsed?.verb === 'REPLICA') {
        request = { call, incoming, ...parsed };
        continue;
      }
      if (request && !request.incoming && incoming && startsWithToken(call.data!, 'REPLICA_PREPARED')) {
        request.prepared = call;
        continue;
      }
      if (request && !request.incoming && !incoming && startsWithToken(call.data!, 'CHECKSUM')) {
        request.generation = Number(call.data!.split(' ')[2]);
        continue;
      }
      if (!request || incoming) {
        continue;
      }
      const current = request;
      if (!current.incoming) {
        // The primary's COMMIT lets the replica make the version visible: its own record comes first.
        if (startsWithToken(call.data!, 'COMMIT')) {
          checkRecords('(out) REPLICA -> COMMIT', call, (line) => line.key === current.key, current.call.start);
          // ... and that record, the commit point, only once the replica said its bytes were on
          // disk. Only this version's record: a catch-up transfer of an older version may cross
          // a newer change of the same name (a rename over it), recorded whenever it comes.
          const thisVersion = (candidate: JournalLine): boolean => current.generation === undefined || candidate.generation === current.generation;
          for (const line of records.filter((candidate) => candidate.key === current.key && thisVersion(candidate) && candidate.write.start > current.call.start && candidate.write.end < call.start)) {
            if (!current.prepared || line.write.start < current.prepared.end) {
              violations.push({ rule: 'a', message: 'the primary wrote the record committing a version before its replica answered REPLICA_PREPARED (bytes on disk)', file: line.journal, lines: [line.write.start, ...(current.prepared ? [current.prepared.end] : [])] });
            }
          }
          request = undefined;
        }
        continue;
      }
      const reply = ANNOUNCING[current.verb].find((token) => startsWithToken(call.data!, token));
      if (!reply) {
        continue;
      }
      const label = `${current.verb} -> ${reply}`;
      if (reply === 'REPLICA_PREPARED') {
        count(coverage.messages, label);
        const record = records.find((line) => line.key === current.key && line.staged && line.write.start > call.end);
        if (record) {
          stagedSafe(record.staged!, record.root, call.start, 'REPLICA_PREPARED', call);
        }
        continue;
      }
      if (current.key !== undefined) {
        checkRecords(label, call, (line) => line.key === current.key, current.call.start);
        checkEntries(label, current.call, call, current.key);
      } else if (current.keys) {
        checkRecords(label, call, (line) => current.keys!.includes(line.key!), current.call.start);
        current.keys.forEach((key) => checkEntries(label, current.call, call, key));
      } else {
        const mark = current.verb === 'RESERVE' ? 'reserved' : 'synced';
        checkRecords(label, call, (line) => line.marks?.[mark] === current.argument, current.call.start);
      }
      request = undefined;
    }
  }

  // Rule e: inline bytes are forgotten only once the file holding them is durably in place.
  coverage.inlineRecords = records.filter((line) => line.inline).length;
  const fdOf = (text: string | undefined): string | undefined => /^(\d+)</.exec(text ?? '')?.[1];
  const opens = calls.filter((call) => (call.name === 'openat' || call.name === 'open') && call.ok && call.opened !== undefined);
  const renamesInto = (file: string): Call[] => calls.filter((call) => RENAMES.has(call.name) && call.ok && call.paths[1] === file);
  /** The file renamed was fsynced after its last write and before `before`: through the fd that wrote it, or by its new name after the rename. */
  const placedFileSynced = (rename: Call, before: number): boolean => {
    const [from, to] = rename.paths;
    const opened = opens.filter((call) => call.opened === from && call.end < rename.start).at(-1);
    if (opened) {
      const fd = fdOf(opened.result)!;
      // The fd is that file's until an open returns the same number again.
      const reused = opens.find((call) => call.start > opened.end && fdOf(call.result) === fd)?.start ?? Infinity;
      const own = (call: Call): boolean => fdOf(call.args[0]) === fd && call.start > opened.end && call.end < reused;
      const lastWrite = calls.filter((call) => WRITES.has(call.name) && call.ok && own(call)).at(-1);
      const after = lastWrite?.end ?? opened.end;
      if (syncs.some((sync) => own(sync) && sync.start > after && sync.end < before)) {
        return true;
      }
    }
    const replacedAt = renamesInto(to).find((call) => call.start > rename.end)?.start ?? Infinity;
    return syncs.some((sync) => sync.target === to && sync.start > rename.end && sync.end < Math.min(before, replacedAt));
  };
  for (const [rename, placed] of inlinePlacements) {
    coverage.inlinePlacements++;
    const [, to] = rename.paths;
    const folder = path.posix.dirname(to);
    // An older version moved into history on the way: its link durable before the live name changes hands.
    if (root && to === `${root}/${placed.clientId}/${placed.name}`) {
      const previous = renamesInto(to).filter((call) => call.end < rename.start).at(-1)?.end ?? -1;
      const linked = calls.filter((call) => (call.name === 'link' || call.name === 'linkat') && call.ok && call.paths[0] === to && call.start > previous && call.end < rename.start).at(-1);
      if (linked && !syncedBetween(path.posix.dirname(linked.paths[1]), linked.end, rename.start)) {
        violations.push({ rule: 'e', message: `${linked.paths[1]} (the version ${to} held) was linked into history but its folder not fsynced before the inline placement renamed over ${to}`, file: path.posix.dirname(linked.paths[1]), lines: [linked.start, rename.start] });
      }
    }
    const note = notes.find((candidate) => candidate.clientId === placed.clientId && candidate.name === placed.name && candidate.generation === placed.generation && candidate.write.start > rename.end);
    if (!note) {
      continue; // Never confirmed (the trace ended first): the record keeps the bytes.
    }
    coverage.confirmedInline++;
    if (!placedFileSynced(rename, note.write.start)) {
      violations.push({ rule: 'e', message: `the placement of ${to} (bytes carried inline) was confirmed before the placed file was fsynced after its last write`, file: to, lines: [rename.start, note.write.start] });
    }
    if (!syncedBetween(folder, rename.end, note.write.start)) {
      violations.push({ rule: 'e', message: `the placement of ${to} (bytes carried inline) was confirmed before ${folder} was fsynced after the rename`, file: folder, lines: [rename.start, note.write.start] });
    }
  }

  // Rule d: an old journal goes only once the snapshot replacing it is durably in place.
  for (const removal of calls.filter((call) => (call.name === 'unlink' || call.name === 'unlinkat') && call.ok && JOURNAL.test(call.paths[0] ?? ''))) {
    const folder = path.posix.dirname(removal.paths[0]);
    const snapshot = calls.filter((call) => RENAMES.has(call.name) && call.ok && call.paths[1] === `${folder}/snapshot.jsonl` && call.end < removal.start).at(-1);
    coverage.compactions++;
    if (!snapshot) {
      violations.push({ rule: 'd', message: `${removal.paths[0]} was removed with no snapshot renamed into place before it`, file: removal.paths[0], lines: [removal.start] });
    } else if (!syncedBetween(folder, snapshot.end, removal.start)) {
      violations.push({ rule: 'd', message: `${removal.paths[0]} was removed before ${folder} was fsynced after the new snapshot was renamed into place`, file: folder, lines: [snapshot.start, removal.start] });
    }
  }
  return { violations, coverage };
}

/** Lines that only wake the event loop (eventfd, pipes): left out of the context shown. */
const NOISE = /<(anon_inode:|pipe:)/;

/** A violation with the trace lines around each line it names (marked ">"), for a failure message. */
export function describeViolation(violation: Violation, trace: Trace, around = 3): string {
  const shown = violation.lines
    .map((line) => {
      const before: number[] = [];
      for (let index = line - 1; index >= 0 && before.length < around; index--) {
        if (!NOISE.test(trace.lines[index])) {
          before.unshift(index);
        }
      }
      const after: number[] = [];
      for (let index = line + 1; index < trace.lines.length && after.length < around; index++) {
        if (!NOISE.test(trace.lines[index])) {
          after.push(index);
        }
      }
      return [...before, line, ...after]
        .map((index) => {
          const text = trace.lines[index];
          return `${index === line ? '>' : ' '} ${String(index + 1).padStart(6)}  ${text.length > 220 ? text.slice(0, 220) + '…' : text}`;
        })
        .join('\n');
    })
    .join('\n        ...\n');
  return `rule ${violation.rule}: ${violation.message}\n  file: ${violation.file}\n${shown}`;
}
