import { createHash } from 'crypto';
import { DfsError, ErrorCode, Precondition, UploadReceipt, VersionRecord } from '../protocol';
import { PlacementError } from '../storage/disk-store';
import { fileKey } from '../storage/key-lock';
import type { StagedWrite } from '../storage/store';
import type { PrimaryContext } from './primary-context';
import { ReplicaTransfer, openTransfers } from './replica-transfer';

/** Where a write's bytes come from: a client's upload, or a kept version being restored. */
export interface ByteSource {
  /** Called once the replicas are ready for the bytes: an upload answers SEND_FILE here. */
  begin(): Promise<void>;
  chunks(): AsyncIterable<Buffer>;
  /** After the last chunk: throws when more than the announced bytes came. */
  finish(): void;
}

export interface PutRequest {
  clientId: string;
  name: string;
  size: number;
  precondition?: Precondition;
  /** The bytes must hash to this (a restore re-reads a kept version). */
  expectedSha256?: string;
  source: ByteSource;
}

/**
 * Stores a new version of a file on the primary and its replicas. The bytes stream
 * once: into a staged file here and, in parallel, to every reachable replica. Then,
 * holding the name, the primary gives the version a generation and the replicas sync
 * the bytes (PREPARED). The commit point is the primary's catalog record, written with
 * the precondition, quota and folder checks made in the same step; only after it do
 * the replicas record and place the version (COMMIT). Anything that fails before the
 * commit point leaves no trace on any node. After it nothing is taken back: the answer
 * is success once the write quorum holds the version, INCOMPLETE otherwise.
 */
export async function replicatedPut(primary: PrimaryContext, request: PutRequest): Promise<UploadReceipt> {
  const { clientId, name, size } = request;
  const started = Date.now();
  await primary.readiness.whenReady();
  primary.gate.check({ clientId, name, size, precondition: request.precondition });
  await primary.store.assertCanPlace(clientId, name);
  await primary.store.assertRoomFor(size);
  const required = primary.replicasRequired();
  let staged: StagedWrite | undefined;
  const { replicas, refused } = await openTransfers(primary, clientId, name, size, () => staged);
  const belowQuorum = (stage: string): DfsError => {
    const failures = [...refused, ...replicas.filter((replica) => !replica.ok).map((replica) => ({ label: replica.link.label, error: replica.failure! }))];
    return shortOfQuorum(
      `${stage}: ${replicas.filter((replica) => replica.ok).length} of ${primary.links.length} replicas available, ${required} required`,
      failures,
    );
  };
  const abortReplicas = (): Promise<unknown> => Promise.all(replicas.map((replica) => replica.abort()));
  if (replicas.length < required) {
    await abortReplicas();
    throw belowQuorum('replication impossible');
  }
  try {
    staged = await primary.store.stage(size);
  } catch (error) {
    await abortReplicas();
    throw error;
  }
  let decided = false;
  try {
    await request.source.begin();
    const hash = createHash('sha256');
    let received = 0;
    const dropped = new Set<ReplicaTransfer>();
    for await (const chunk of request.source.chunks()) {
      hash.update(chunk);
      received += chunk.length;
      await Promise.all([staged.write(chunk), ...replicas.map((replica) => replica.send(chunk))]);
      // Said when it happens, not only in the answer: a replica given up on mid-transfer
      // is what an operator looks for when an upload went on with fewer copies.
      for (const replica of replicas) {
        if (!replica.ok && !dropped.has(replica)) {
          dropped.add(replica);
          primary.log(
            `UPLOAD ${clientId}/${name}: ${replica.link.label} dropped after ${received} of ${size} bytes (${replica.failure!.message}); ${replicas.filter((other) => other.ok).length} of ${primary.links.length} replicas go on, ${required} required`,
          );
        }
      }
      if (replicas.filter((replica) => replica.ok).length < required) {
        throw belowQuorum('replication failed mid-transfer');
      }
    }
    request.source.finish();
    const sha256 = hash.digest('hex');
    if (request.expectedSha256 && request.expectedSha256 !== sha256) {
      throw new DfsError('CHECKSUM', `the bytes read for ${name} hash to ${sha256}, not to the ${request.expectedSha256} they were stored with; nothing was changed`);
    }
    return await primary.locks.run(fileKey(clientId, name), async () => {
      const generation = await primary.issuer.issue();
      let release: (() => void) | undefined;
      try {
        const mtimeMs = Date.now();
        // A small file's record carries its bytes, so the record need not wait for the
        // staged file's sync (only its rename does): the sync starts here and the
        // commit waits for it alongside the record.
        const sealing = staged.seal();
        sealing.catch(() => undefined);
        await Promise.all([staged.inline ? undefined : sealing, ...replicas.map((replica) => replica.prepare({ sha256, generation, mtimeMs, keep: primary.keepVersions }))]);
        const prepared = replicas.filter((replica) => replica.ok);
        if (prepared.length < required) {
          throw belowQuorum('replicas could not store the file');
        }
        release = primary.gate.admit({ clientId, name, size, precondition: request.precondition, generation });
        const record: VersionRecord = { clientId, name, generation, size, sha256, mtimeMs };
        let storedHere = true;
        // With etcd the write commits there, while this primary still leads; then its
        // own catalog and the replicas take it, as without etcd.
        await primary.commitPoint?.record([record]);
        try {
          // Once the record is on disk the write is decided: the replicas commit while
          // the primary puts its own copy in place.
          await primary.store.commitVersion(staged, record, primary.keepVersions, async () => {
            decided = true;
            await Promise.all(prepared.map((replica) => replica.commit()));
          });
        } catch (error) {
          if (!(error instanceof PlacementError)) {
            throw error;
          }
          // Recorded, so decided; the primary's own copy is repaired from the replicas.
          storedHere = false;
        }
        if (!decided) {
          throw new DfsError('INTERNAL', `the primary's catalog did not take generation ${generation} of ${name}; nothing was stored, try again`);
        }
        const inStep = prepared.filter((replica) => replica.ok);
        const key = fileKey(clientId, name);
        for (const link of primary.links) {
          if (inStep.some((replica) => replica.link === link)) {
            link.caughtUp(key);
            link.lastError = undefined;
          } else {
            link.markBehind(key);
            // Noted again now it is decided: a catch-up pass that planned from the catalog
            // before this version was in it may have cleared the failure meanwhile.
            const failure = replicas.find((replica) => replica.link === link)?.failure ?? refused.find((entry) => entry.label === link.label)?.error;
            if (failure) {
              link.noteFailure(failure);
            }
          }
        }
        const behind = primary.links.filter((link) => !inStep.some((replica) => replica.link === link)).map((link) => link.address.id);
        primary.afterWrite(behind.length > 0 || !storedHere);
        primary.commitPoint?.assertLeading();
        if (inStep.length < required) {
          throw new DfsError(
            'INCOMPLETE',
            `${name} is stored as generation ${generation}, but only ${inStep.length} of the ${required} replicas the write quorum requires confirmed it (${replicas
              .filter((replica) => !replica.ok)
              .map((replica) => `${replica.link.label}: ${replica.failure?.message}`)
              .join('; ')}). It stays stored and the missing replicas get it when they answer; until then it may not survive the loss of the primary's disk.`,
          );
        }
        primary.log(`UPLOAD ${clientId}/${name} generation ${generation}, ${size} bytes, ${inStep.length}/${primary.links.length} replicas, ${Date.now() - started} ms`);
        return { sha256, size, generation, copies: (storedHere ? 1 : 0) + inStep.length, replicasBehind: behind };
      } finally {
        release?.();
        primary.issuer.settle(generation);
      }
    });
  } catch (error) {
    if (!decided) {
      await Promise.all([staged.abort(), abortReplicas()]);
    }
    throw error;
  }
}

/**
 * Too few replicas for the write quorum. A replica whose disk is full or which is at
 * its connection limit answered: that, not the quorum, is what the user must act on,
 * so it gives the code, and the advice covers each kind of failure named.
 */
function shortOfQuorum(summary: string, failures: { label: string; error: DfsError }[]): DfsError {
  const codes = new Set(failures.map((failure) => failure.error.code));
  const code: ErrorCode = codes.has('NO_SPACE') ? 'NO_SPACE' : codes.has('LIMIT') ? 'LIMIT' : 'QUORUM';
  const advice: string[] = [];
  if (codes.has('NO_SPACE')) {
    advice.push('Free space on the full disk named above and try again.');
  }
  if (codes.has('LIMIT')) {
    advice.push('A replica is serving its connection limit: try again shortly.');
  }
  if ([...codes].some((other) => other !== 'NO_SPACE' && other !== 'LIMIT')) {
    advice.push('Start the missing replicas (dfs status shows which) or lower the write quorum.');
  }
  const reasons = failures.map((failure) => `${failure.label}: ${failure.error.message}`).join('; ');
  return new DfsError(code, `${summary} (${reasons}). Nothing was stored. ${advice.join(' ')}`.trim());
}
