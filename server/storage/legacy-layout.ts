import { constants } from 'fs';
import { validateClientId, validateFileName } from '../protocol';
import type { Fingerprint } from './catalog';
import type { ContainedFs } from './contained-fs';
import { STATE_DIR } from './disk-layout';
import { hashHandle } from './file-hash';

/**
 * Reading a data folder written by release 0.1, which had no catalog: the stored files
 * themselves, their checksums cached in `.dfs/checksums.log` (trusted only while inode,
 * size and mtime still match), and on the primary `.dfs/joined`, which meant its files
 * were the cluster's and the replicas followed them. Symbolic links are never followed.
 */
export const LEGACY_CHECKSUM_LOG = `${STATE_DIR}/checksums.log`;
export const LEGACY_JOINED_MARKER = `${STATE_DIR}/joined`;

export interface LegacyFile {
  clientId: string;
  name: string;
  size: number;
  mtimeMs: number;
  sha256: string;
  fingerprint: Fingerprint;
}

interface ChecksumLine {
  c: string;
  n: string;
  e?: { sha256: string; size: number; mtimeMs: number; ino: number };
}

/** True when the root holds client folders: files a catalog does not describe yet. */
export async function hasClientFolders(files: ContainedFs): Promise<boolean> {
  return (await files.readdir('')).some((entry) => entry.isDirectory() && !entry.name.startsWith('.'));
}

export async function readLegacyFiles(files: ContainedFs, log: (line: string) => void): Promise<LegacyFile[]> {
  const remembered = await readChecksumLog(files);
  const found: LegacyFile[] = [];
  const walk = async (folder: string, clientId: string, prefix: string): Promise<void> => {
    for (const entry of await files.readdir(folder)) {
      const name = prefix + entry.name;
      const full = `${folder}/${entry.name}`;
      if (entry.isSymbolicLink()) {
        log(`upgrade: ${full} is a symbolic link: left alone, never followed`);
        continue;
      }
      if (entry.isDirectory()) {
        await walk(full, clientId, name + '/');
        continue;
      }
      if (!entry.isFile()) {
        continue;
      }
      try {
        validateFileName(name);
      } catch {
        log(`upgrade: ignoring ${JSON.stringify(name)} of client ${clientId}: not a valid file name`);
        continue;
      }
      const handle = await files.openFile(full, constants.O_RDONLY);
      try {
        const stat = await handle.stat();
        const known = remembered.get(`${clientId}\u0000${name}`);
        const trusted = known && known.ino === stat.ino && known.size === stat.size && known.mtimeMs === stat.mtimeMs;
        const sha256 = trusted ? known.sha256 : (await hashHandle(handle)).sha256;
        found.push({ clientId, name, size: stat.size, mtimeMs: Math.round(stat.mtimeMs), sha256, fingerprint: { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs } });
      } finally {
        await handle.close();
      }
    }
  };
  for (const entry of await files.readdir('')) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) {
      if (entry.isSymbolicLink()) {
        log(`upgrade: ${entry.name} is a symbolic link: left alone, never followed`);
      }
      continue;
    }
    try {
      validateClientId(entry.name);
    } catch {
      log(`upgrade: ignoring folder ${JSON.stringify(entry.name)}: not a valid client id`);
      continue;
    }
    await walk(entry.name, entry.name, '');
  }
  return found;
}

async function readChecksumLog(files: ContainedFs): Promise<Map<string, { sha256: string; size: number; mtimeMs: number; ino: number }>> {
  const entries = new Map<string, { sha256: string; size: number; mtimeMs: number; ino: number }>();
  let text = '';
  try {
    const handle = await files.openFile(LEGACY_CHECKSUM_LOG, constants.O_RDONLY);
    try {
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return entries;
  }
  for (const line of text.split('\n')) {
    try {
      const parsed = JSON.parse(line) as ChecksumLine;
      if (parsed.e) {
        entries.set(`${parsed.c}\u0000${parsed.n}`, parsed.e);
      } else {
        entries.delete(`${parsed.c}\u0000${parsed.n}`);
      }
    } catch {
      // A torn line: the file it named is hashed again.
    }
  }
  return entries;
}
