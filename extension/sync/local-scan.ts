import { createHash } from 'crypto';
import { createReadStream, promises as fs } from 'fs';
import { pipeline } from 'stream/promises';
import { SkippedPath, planUploads } from '../../server/client/upload-plan';
import type { LocalEntry } from './sync-plan';

/** downloadAtomically's temporary file beside its destination: `.NAME.dfs-XXXXXXXX`. */
const DOWNLOAD_TEMPORARY = /(^|\/)\.[^/]+\.dfs-[0-9a-f]{8}$/;

/** A download's temporary file, never a file of the folder: not synced, and its events are not changes. */
export function isDownloadInProgress(name: string): boolean {
  return DOWNLOAD_TEMPORARY.test(name);
}

/** A file's size and SHA-256, streamed (a large file is never read into memory). */
export async function hashFile(localPath: string): Promise<LocalEntry> {
  const stat = await fs.stat(localPath);
  if (!stat.isFile()) {
    throw Object.assign(new Error(`${localPath} is not a regular file`), { code: 'EISDIR' });
  }
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(createReadStream(localPath), async function* (chunks: AsyncIterable<Buffer>) {
    for await (const chunk of chunks) {
      hash.update(chunk);
      size += chunk.length;
    }
  });
  return { size, sha256: hash.digest('hex') };
}

/**
 * Every file under `folder` by its path inside it ("src/a.ts"), hashed. The walk is the
 * upload planner's (symbolic links to folders are not followed, unstorable names are
 * reported); download temporaries are left out.
 */
export async function scanFolder(folder: string): Promise<{ files: Map<string, LocalEntry>; skipped: SkippedPath[] }> {
  const plan = await planUploads([folder]);
  const files = new Map<string, LocalEntry>();
  const skipped = [...plan.skipped];
  for (const upload of plan.uploads) {
    // planUploads names a folder's files "FOLDER/inner/path".
    const name = upload.name.slice(upload.name.indexOf('/') + 1);
    if (isDownloadInProgress(name)) {
      continue;
    }
    try {
      files.set(name, await hashFile(upload.localPath));
    } catch (error) {
      skipped.push({ localPath: upload.localPath, reason: `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
    }
  }
  return { files, skipped };
}
