import type { Readable } from 'stream';
import type { Handler } from '../../net/session';
import { DfsError, FileRecord, Reply } from '../../protocol';
import type { Store } from '../../storage/store';

export interface DownloadSource {
  record: FileRecord;
  body: Readable;
}

/**
 * DOWNLOAD: `FILE <size> <sha256>` then exactly that many bytes. `resolve` picks the
 * bytes to serve, so the primary can verify its copy and fall back to a replica's.
 */
export function downloadHandler(store: Store, resolve?: (clientId: string, name: string) => Promise<DownloadSource>): Handler {
  const fromStore = async (clientId: string, name: string): Promise<DownloadSource> => {
    const record = store.get(clientId, name);
    if (!record) {
      throw new DfsError('NOT_FOUND', `${name} is not stored for client ${clientId}`);
    }
    return { record, body: await store.openRead(clientId, name) };
  };
  return async (session) => {
    if (session.request.verb !== 'DOWNLOAD') {
      return;
    }
    const { record, body } = await (resolve ?? fromStore)(session.request.clientId, session.request.name);
    try {
      await session.conn.write(`${Reply.FILE} ${record.size} ${record.sha256}\n`);
      for await (const chunk of body) {
        await session.conn.write(chunk as Buffer);
      }
    } finally {
      body.destroy();
    }
  };
}
