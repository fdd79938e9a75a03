import * as assert from 'assert';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import { PassThrough } from 'stream';
import type { DfsClient } from '../../server/client/dfs-client';
import type { ClusterStatus } from '../../server/protocol';
import { TestCluster, stagedFiles, storedFiles } from './cluster';
import { waitFor } from './wait';

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The current version of a stored file, as a buffer (checked against its checksum by the client). */
export async function downloadBytes(client: DfsClient, name: string): Promise<Buffer> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  await client.download(name, sink);
  return Buffer.concat(chunks);
}

/** name -> sha256 of every stored file under a node's root. */
export async function treeDigest(root: string): Promise<Map<string, string>> {
  const digest = new Map<string, string>();
  for (const file of await storedFiles(root)) {
    digest.set(file, sha256(await fs.readFile(path.join(root, file))));
  }
  return digest;
}

/** Waits until the primary reports a completed catch-up pass with nothing behind, started after `since`. */
export async function waitForConvergence(cluster: TestCluster, since: number, timeoutMs = 30_000): Promise<ClusterStatus> {
  return waitFor(
    async () => {
      const status = (await cluster.client().status().catch(() => undefined)) as ClusterStatus | undefined;
      const done = status?.replicas.every((replica) => replica.reachable && replica.filesBehind === 0 && (replica.lastSyncMs ?? 0) > since);
      return done ? status : undefined;
    },
    'every replica to catch up',
    timeoutMs,
  );
}

/** Every replica holds exactly the primary's files, byte for byte, and nobody holds staged bytes. */
export async function assertIdenticalCopies(cluster: TestCluster): Promise<Map<string, string>> {
  const primary = await treeDigest(cluster.primaryRoot());
  for (let index = 0; index < cluster.replicaCount; index++) {
    const replica = await treeDigest(cluster.replicaRoot(index));
    assert.deepStrictEqual(Object.fromEntries([...replica].sort()), Object.fromEntries([...primary].sort()), `replica ${index + 1} differs from the primary`);
  }
  await waitForNoStagedBytes(cluster);
  return primary;
}

/** Waits until no node holds staged bytes: transfers that died are discarded as their connections close. */
export async function waitForNoStagedBytes(cluster: TestCluster): Promise<void> {
  await waitFor(async () => {
    for (const root of cluster.allRoots()) {
      if ((await stagedFiles(root)).length > 0) {
        return false;
      }
    }
    return true;
  }, 'staged bytes to be discarded everywhere');
}

/** Waits until `relative` under every one of `roots` holds exactly `data`: a replica places its copy after the upload is acknowledged. */
export async function waitForCopies(roots: readonly string[], relative: string, data: Buffer, timeoutMs = 30_000): Promise<void> {
  const held = async (root: string): Promise<boolean> => sha256(await fs.readFile(path.join(root, relative)).catch(() => Buffer.alloc(0))) === sha256(data);
  await waitFor(async () => (await Promise.all(roots.map(held))).every(Boolean), `${roots.length} nodes to hold ${relative}`, timeoutMs);
}
