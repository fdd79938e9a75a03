import { randomBytes } from 'crypto';
import type { BenchCluster } from './launcher';
import { elapsedMs, median } from './stats';

export interface ListingRun {
  files: number;
  populateSeconds: number;
  /** LIST, the report's verb (DfsClient.list): names only. */
  listMs: number;
  /** FILES (DfsClient.files): one JSON record per file. */
  filesMs: number;
  listRunsMs: number[];
  filesRunsMs: number[];
  listBytes: number;
}

/** Stores `count` small files for one client, 32 uploads at a time. */
async function populate(cluster: BenchCluster, clientId: string, count: number): Promise<number> {
  const client = cluster.client(clientId);
  const body = randomBytes(64);
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      for (let file = next++; file < count; file = next++) {
        await client.upload(`docs/file-${String(file).padStart(6, '0')}.txt`, [body], body.length);
      }
    }),
  );
  return elapsedMs(started) / 1000;
}

/**
 * LIST and FILES of one client holding `count` files, timed at the client from
 * connect to the last record parsed; one untimed warm-up each, then `runs` timed
 * runs, alternating, and the median of each.
 */
export async function measureListing(cluster: BenchCluster, count: number, runs: number): Promise<ListingRun> {
  const clientId = 'lister';
  const populateSeconds = await populate(cluster, clientId, count);
  const client = cluster.client(clientId);
  const names = await client.list();
  const records = await client.files();
  if (names.length !== count || records.length !== count) {
    throw new Error(`listing returned ${names.length} names and ${records.length} records, expected ${count}`);
  }
  const listRunsMs: number[] = [];
  const filesRunsMs: number[] = [];
  for (let run = 0; run < runs; run++) {
    let started = process.hrtime.bigint();
    await client.list();
    listRunsMs.push(elapsedMs(started));
    started = process.hrtime.bigint();
    await client.files();
    filesRunsMs.push(elapsedMs(started));
  }
  return {
    files: count,
    populateSeconds,
    listMs: median(listRunsMs),
    filesMs: median(filesRunsMs),
    listRunsMs,
    filesRunsMs,
    listBytes: Buffer.byteLength(names.join('\n')),
  };
}
