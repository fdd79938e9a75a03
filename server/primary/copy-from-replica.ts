import { createHash } from 'crypto';
import { DfsError, FileRecord } from '../protocol';
import type { PrimaryContext } from './primary-context';
import type { ReplicaLink } from './replica-link';

/**
 * Stores a replica's copy of `record` on the primary, only if its bytes hash to the
 * checksum the record promises. The caller holds the file's lock.
 */
export async function copyFromReplica(primary: PrimaryContext, link: ReplicaLink, record: FileRecord): Promise<void> {
  const download = await link.download(record.clientId, record.name);
  const staged = await primary.store.stage();
  try {
    if (download.sha256 !== record.sha256) {
      throw new DfsError('CHECKSUM', `${link.label} holds another version`);
    }
    const hash = createHash('sha256');
    for await (const chunk of download.body) {
      hash.update(chunk);
      await staged.write(chunk);
    }
    if (hash.digest('hex') !== record.sha256) {
      throw new DfsError('CHECKSUM', `${link.label}'s copy does not match its checksum`);
    }
    await primary.store.commit(staged, record.clientId, record.name, record.sha256);
  } finally {
    download.close();
    await staged.abort();
  }
}
