import type { Handler } from '../net/session';
import { DfsError, Reply } from '../protocol';
import { repairVersion } from './copy-from-replica';
import type { PrimaryContext } from './primary-context';
import { replicatedPut } from './replicated-write';

/** RESTORE: a kept older version becomes the current one again, as a new version (a new generation) with its bytes. */
export function restoreHandler(primary: PrimaryContext): Handler {
  return async (session) => {
    const request = session.request;
    if (request.verb !== 'RESTORE') {
      return;
    }
    const { clientId, name, generation } = request;
    await primary.readiness.whenReady();
    const version = primary.store.state(clientId, name)?.versions.find((kept) => kept.generation === generation);
    if (!version) {
      throw new DfsError('NOT_FOUND', `generation ${generation} of ${name} is not kept for client ${clientId}; dfs versions ${name} lists the kept ones`);
    }
    if (!primary.store.hasBytes(clientId, name, generation) && !(await repairVersion(primary, version))) {
      throw new DfsError('CHECKSUM', `no node holds an intact copy of generation ${generation} of ${name}; nothing was changed`);
    }
    const { body } = await primary.store.openRead(clientId, name, generation);
    try {
      const receipt = await replicatedPut(primary, {
        clientId,
        name,
        size: version.size,
        expectedSha256: version.sha256,
        source: {
          begin: async () => undefined,
          chunks: () => body as AsyncIterable<Buffer>,
          finish: () => undefined,
        },
      });
      primary.log(`RESTORE ${clientId}/${name}: generation ${generation} is current again as generation ${receipt.generation}`);
      await session.reply(Reply.RESTORE_SUCCESS, receipt);
    } finally {
      body.destroy();
    }
  };
}
