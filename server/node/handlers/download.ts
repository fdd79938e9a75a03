import type { Readable } from 'stream';
import type { Handler } from '../../net/session';
import { VersionRecord, formatFileHeader } from '../../protocol';
import type { Store } from '../../storage/store';

export interface DownloadSource {
  record: VersionRecord;
  body: Readable;
}

/**
 * DOWNLOAD and DOWNLOAD_VERSION: `FILE <size> <sha256> <generation>` then exactly that
 * many bytes. `resolve` picks the bytes to serve, so the primary can verify its copy
 * and repair it from a replica first.
 */
export function downloadHandler(store: Store, resolve?: (clientId: string, name: string, generation?: number) => Promise<DownloadSource>): Handler {
  return async (session) => {
    const request = session.request;
    if (request.verb !== 'DOWNLOAD' && request.verb !== 'DOWNLOAD_VERSION') {
      return;
    }
    const generation = request.verb === 'DOWNLOAD_VERSION' ? request.generation : undefined;
    const { record, body } = await (resolve ?? ((clientId, name, version) => store.openRead(clientId, name, version)))(request.clientId, request.name, generation);
    try {
      await session.conn.write(formatFileHeader(record) + '\n');
      for await (const chunk of body) {
        await session.conn.write(chunk as Buffer);
      }
    } finally {
      body.destroy();
    }
  };
}
