import { promises as fs } from 'fs';
import * as path from 'path';
import { validateClientId, validateFileName } from '../protocol';
import type { Fingerprint } from './catalog';
import { hashFile } from './file-hash';

/**
 * Reading a data folder written by release 0.1, which had no catalog: the stored files
 * themselves, their checksums cached in `.dfs/checksums.log` (trusted only while inode,
 * size and mtime still match), and on the primary `.dfs/joined`, which meant its files
 * were the cluster's and the replicas followed them.
 */
export const LEGACY_CHECKSUM_LOG = 'checksums.log';
export const LEGACY_JOINED_MARKER = 'joined';

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
export async function hasClientFolders(root: string): Promise<boolean> {
  for (const entry of await fs.readdir(root, { withFileTypes: true })) {
    if (entry.isDirectory() && !entry.name.startsWith('.')) {
      return true;
    }
  }
  return false;
}

export async function readLegacyFiles(root: string, stateDir: string, log: (line: string) => void): Promise<LegacyFile[]> {
  const remembered = await readChecksumLog(path.join(stateDir, LEGACY_CHECKSUM_LOG));
  const files: LegacyFile[] = [];
  const walk = async (dir: string, clientId: string, prefix: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const name = prefix + entry.name;
      const full = path.join(dir, entry.name);
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
      const stat = await fs.stat(full);
      const known = remembered.get(`${clientId}\u0000${name}`);
      const trusted = known && known.ino === stat.ino && known.size === stat.size && known.mtimeMs === stat.mtimeMs;
      const sha256 = trusted ? known.sha256 : (await hashFile(full)).sha256;
      files.push({ clientId, name, size: stat.size, mtimeMs: Math.round(stat.mtimeMs), sha256, fingerprint: { ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs } });
    }
  };
  for (const entry of await fs.readdir(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) {
      continue;
    }
    try {
      validateClientId(entry.name);
    } catch {
      log(`upgrade: ignoring folder ${JSON.stringify(entry.name)}: not a valid client id`);
      continue;
    }
    await walk(path.join(root, entry.name), entry.name, '');
  }
  return files;
}

async function readChecksumLog(file: string): Promise<Map<string, { sha256: string; size: number; mtimeMs: number; ino: number }>> {
  const entries = new Map<string, { sha256: string; size: number; mtimeMs: number; ino: number }>();
  let text = '';
  try {
    text = await fs.readFile(file, 'utf8');
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
