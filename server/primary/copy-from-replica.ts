import { createHash } from 'crypto';
import { DfsError, VersionRecord } from '../protocol';
import type { PrimaryContext } from './primary-context';
import type { ReplicaLink } from './replica-link';

/**
 * Stores a replica's copy of a version on the primary, only if its bytes hash to the
 * checksum the version was recorded with. Takes no lock while the bytes stream: the
 * store applies the version by its generation when it arrives.
 */
export async function copyVersionFrom(primary: PrimaryContext, link: ReplicaLink, record: VersionRecord): Promise<void> {
  const download = await link.download(record.clientId, record.name, record.generation);
  const staged = await primary.store.stage();
  try {
    if (download.sha256 !== record.sha256 || download.generation !== record.generation) {
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
    await primary.store.commitVersion(staged, record, primary.keepVersions);
  } finally {
    download.close();
    await staged.abort();
  }
}

/** Rewrites the primary's copy of a version from the first replica with an intact one; false when none has. */
export async function repairVersion(primary: PrimaryContext, record: VersionRecord): Promise<boolean> {
  for (const link of primary.links) {
    try {
      await copyVersionFrom(primary, link, record);
      if (primary.store.hasBytes(record.clientId, record.name, record.generation)) {
        link.repairs++;
        primary.log(`repair: primary copy of ${record.clientId}/${record.name} generation ${record.generation} copied from ${link.label}`);
        return true;
      }
      // No longer held here (replaced meanwhile): nothing left to repair.
      if (!primary.store.state(record.clientId, record.name)?.versions.some((version) => version.generation === record.generation)) {
        return true;
      }
    } catch (error) {
      primary.log(`repair: ${link.label} cannot supply ${record.clientId}/${record.name} generation ${record.generation}: ${(error as Error).message}`);
    }
  }
  return false;
}
