import { createHash } from 'crypto';
import type { Readable } from 'stream';
import { AbandonedAnswer } from '../../net/abandoned-answer';
import type { Handler } from '../../net/session';
import { VersionRecord, formatFileHeader } from '../../protocol';
import type { Store } from '../../storage/store';

export interface DownloadSource {
  record: VersionRecord;
  body: Readable;
}

export interface DownloadHooks {
  /** Picks the bytes to serve, so the primary can repair a copy known to be damaged first. */
  resolve?: (clientId: string, name: string, generation?: number) => Promise<DownloadSource>;
  /** A copy failed its checksum while being sent (already marked damaged): the primary repairs it. */
  onDamaged?: (record: VersionRecord) => void;
}

/**
 * DOWNLOAD and DOWNLOAD_VERSION: `FILE <size> <sha256> <generation>` then exactly that
 * many bytes, streamed as they are read, so the first byte leaves before the file is
 * hashed. The hash is checked as the bytes go out and the last chunk is held back until
 * it matches: a copy found damaged at the end loses its connection one chunk short, so
 * no client (ours, or one written against the report that checks nothing) ever
 * receives a whole file that differs from what was stored. Ours then asks again, and
 * by then the copy is known damaged and is repaired (or another copy served) first.
 */
export function downloadHandler(store: Store, hooks: DownloadHooks = {}): Handler {
  const resolve = hooks.resolve ?? ((clientId, name, version) => store.openRead(clientId, name, version));
  return async (session) => {
    const request = session.request;
    if (request.verb !== 'DOWNLOAD' && request.verb !== 'DOWNLOAD_VERSION') {
      return;
    }
    const generation = request.verb === 'DOWNLOAD_VERSION' ? request.generation : undefined;
    const { record, body } = await resolve(request.clientId, request.name, generation);
    try {
      await session.conn.write(formatFileHeader(record) + '\n');
      const damage = await sendVerified(body, record, (chunk) => session.conn.write(chunk));
      if (damage) {
        store.markDamaged(record.clientId, record.name, record.generation, damage);
        hooks.onDamaged?.(record);
        throw new AbandonedAnswer(`DOWNLOAD ${record.clientId}/${record.name}: cut one chunk short, ${damage}`);
      }
    } catch (error) {
      // After the header, a failure line would be read as file bytes: cut the connection instead.
      throw error instanceof AbandonedAnswer ? error : new AbandonedAnswer(`DOWNLOAD ${record.clientId}/${record.name}: cut mid-transfer, ${(error as Error).message}`);
    } finally {
      body.destroy();
    }
  };
}

/** Sends the body, hashing it, holding the last chunk back; returns why the bytes are not the recorded ones, or undefined after sending them all. */
async function sendVerified(body: Readable, record: VersionRecord, send: (chunk: Buffer) => Promise<void>): Promise<string | undefined> {
  const hash = createHash('sha256');
  let read = 0;
  let held: Buffer | undefined;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    read += chunk.length;
    if (read > record.size) {
      return `its file holds more than the ${record.size} bytes recorded`;
    }
    hash.update(chunk);
    if (held) {
      await send(held);
    }
    held = chunk;
  }
  if (read !== record.size) {
    return `its file holds ${read} of the ${record.size} bytes recorded`;
  }
  if (hash.digest('hex') !== record.sha256) {
    return 'its bytes no longer match their checksum';
  }
  if (held) {
    await send(held);
  }
  return undefined;
}
