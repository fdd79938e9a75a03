import { createHash } from 'crypto';
import type { Handler } from '../net/session';
import { DfsError, Reply, UploadReceipt } from '../protocol';
import { fileKey } from '../storage/key-lock';
import type { StagedWrite } from '../storage/store';
import type { PrimaryContext } from './primary-context';
import { ReplicaUpload } from './replica-link';

/**
 * UPLOAD. The bytes stream once: into a staged file here and, in parallel, to every
 * reachable replica. Nothing becomes visible anywhere until enough replicas hold the
 * bytes on stable storage; then the replicas commit and the primary commits last (the
 * commit point). Any failure before that point leaves no trace on any node.
 */
export function uploadHandler(primary: PrimaryContext): Handler {
  return async (session) => {
    if (session.request.verb !== 'UPLOAD') {
      return;
    }
    const { clientId, name, size } = session.request;
    const started = Date.now();
    const required = primary.replicasRequired();
    await primary.store.assertCanStore(clientId, name);
    if (primary.quotaBytes !== undefined) {
      const used = primary.store.list(clientId).reduce((sum, file) => sum + (file.name === name ? 0 : file.size), 0);
      if (used + size > primary.quotaBytes) {
        throw new DfsError('LIMIT', `client ${clientId} would use ${used + size} bytes, over its quota of ${primary.quotaBytes}; delete files first`);
      }
    }
    const opened = await Promise.allSettled(primary.links.map((link) => link.openUpload(clientId, name, size)));
    const replicas: ReplicaUpload[] = [];
    const unreachable: string[] = [];
    opened.forEach((result, index) => {
      if (result.status === 'fulfilled') {
        replicas.push(result.value);
      } else {
        unreachable.push(`${primary.links[index].label}: ${(result.reason as Error).message}`);
      }
    });
    const failBelowQuorum = (stage: string): DfsError => {
      const failures = [...unreachable, ...replicas.filter((r) => !r.ok).map((r) => `${r.link.label}: ${r.failure?.message}`)];
      return new DfsError(
        'QUORUM',
        `${stage}: ${replicas.filter((r) => r.ok).length} of ${primary.links.length} replicas available, ${required} required (${failures.join('; ')}). Nothing was stored. Start the missing replicas (dfs status shows which) or lower the write quorum.`,
      );
    };
    const abortAll = (): Promise<unknown> => Promise.all(replicas.map((replica) => replica.abort()));

    if (replicas.length < required) {
      await abortAll();
      throw failBelowQuorum('replication impossible');
    }
    let staged: StagedWrite;
    try {
      staged = await primary.store.stage();
    } catch (error) {
      await abortAll();
      throw error;
    }
    try {
      await session.reply(Reply.SEND_FILE);
      const hash = createHash('sha256');
      for await (const chunk of session.conn.readBody(size)) {
        hash.update(chunk);
        await Promise.all([staged.write(chunk), ...replicas.map((replica) => replica.send(chunk))]);
        if (replicas.filter((replica) => replica.ok).length < required) {
          throw failBelowQuorum('replication failed mid-transfer');
        }
      }
      if (session.conn.hasUnreadBytes()) {
        throw new DfsError('EXTRA_BYTES', `more than the declared ${size} bytes arrived`);
      }
      const sha256 = hash.digest('hex');
      await Promise.all([staged.seal(), ...replicas.map((replica) => replica.prepare(sha256))]);
      const prepared = replicas.filter((replica) => replica.ok);
      if (prepared.length < required) {
        throw failBelowQuorum('replicas could not store the file');
      }
      // Replicas commit first: should the primary die before its own rename, catch-up
      // removes their copies again, so an upload that was never acknowledged leaves nothing.
      await primary.locks.run(fileKey(clientId, name), async () => {
        await Promise.all(prepared.map((replica) => replica.commit()));
        if (prepared.filter((replica) => replica.ok).length < required) {
          // Too few replicas hold the file after all: the primary does not commit, and
          // catch-up takes the new version back off the replicas that did.
          primary.removedKeys.add(fileKey(clientId, name));
          primary.afterWrite(true);
          throw failBelowQuorum('replicas could not commit the file');
        }
        try {
          await primary.store.commit(staged, clientId, name, sha256);
        } catch (error) {
          // The replicas' copies now disagree with the primary; catch-up brings them back
          // to whatever the primary holds (the old version, nothing, or the new one if
          // only its folder sync failed).
          if (primary.store.get(clientId, name)?.sha256 !== sha256) {
            primary.removedKeys.add(fileKey(clientId, name));
          }
          primary.afterWrite(true);
          throw error;
        }
        for (const link of primary.links) {
          if (replicas.find((r) => r.link === link)?.ok) {
            link.caughtUp(clientId, name);
            link.lastError = undefined;
          } else {
            link.markBehind(clientId, name);
          }
        }
      });
      const inStep = prepared.filter((replica) => replica.ok).length;
      const receipt: UploadReceipt = {
        sha256,
        size,
        copies: 1 + inStep,
        replicasBehind: primary.links.filter((link) => !replicas.find((r) => r.link === link)?.ok).map((link) => link.address.id),
      };
      primary.log(`UPLOAD ${clientId}/${name} ${size} bytes stored, ${inStep}/${primary.links.length} replicas, ${Date.now() - started} ms`);
      primary.afterWrite(receipt.replicasBehind.length > 0);
      await session.reply(Reply.UPLOAD_SUCCESS, receipt);
    } catch (error) {
      await Promise.all([staged.abort(), abortAll()]);
      throw error;
    }
  };
}
