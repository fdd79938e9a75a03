import * as assert from 'assert';
import { createHash } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { NameState } from '../../server/storage/name-state';
import { JournalCatalog } from '../../server/storage/journal-catalog';
import type { CatalogMarks } from '../../server/storage/catalog';
import { storedFiles } from './cluster';

export interface CatalogContents {
  marks: CatalogMarks;
  /** `client/name` -> what the node's catalog holds of it. */
  names: Map<string, NameState>;
}

/**
 * What a node's catalog on disk says, read from a copy so that a running node's files
 * are never touched (opening a catalog cuts a torn tail off its journal).
 */
export async function catalogOnDisk(root: string): Promise<CatalogContents> {
  const copy = await fs.mkdtemp(path.join(os.tmpdir(), 'dfs-catalog-copy-'));
  try {
    await fs.cp(path.join(root, '.dfs', 'catalog'), copy, { recursive: true });
    const catalog = new JournalCatalog(copy, { durable: false });
    await catalog.open();
    const names = new Map<string, NameState>();
    for (const { clientId, name, state } of catalog.index.all()) {
      names.set(`${clientId}/${name}`, state);
    }
    const marks = { ...catalog.marks };
    await catalog.close();
    return { marks, names };
  } finally {
    await fs.rm(copy, { recursive: true, force: true });
  }
}

/** The current generation of a name on a node's disk: a number, 'deleted', or undefined when unknown there. */
export async function generationOnDisk(root: string, key: string): Promise<number | 'deleted' | undefined> {
  const state = (await catalogOnDisk(root)).names.get(key);
  if (!state) {
    return undefined;
  }
  return state.versions[0]?.generation ?? 'deleted';
}

/** A name's current version on one node, as its catalog records it. */
export interface Held {
  generation: number;
  sha256: string;
}

/**
 * What one node holds of a client, from its catalog on disk, checked against its disk:
 * every live name's file has the recorded bytes, and no other file of the client is
 * there. With `catalogOnly`, the files are not compared (a node still placing them).
 */
export async function heldOnDisk(root: string, clientId: string, catalogOnly = false): Promise<Map<string, Held>> {
  const held = new Map<string, Held>();
  for (const [key, state] of (await catalogOnDisk(root)).names) {
    const current = state.versions[0];
    if (key.startsWith(`${clientId}/`) && current) {
      held.set(key.slice(clientId.length + 1), { generation: current.generation, sha256: current.sha256 });
    }
  }
  if (!catalogOnly) {
    const onDisk = (await storedFiles(root)).filter((file) => file.startsWith(`${clientId}/`)).map((file) => file.slice(clientId.length + 1));
    assert.deepStrictEqual(onDisk, [...held.keys()].sort(), `${root}: the files on disk are not the catalog's`);
    for (const [name, { sha256: digest }] of held) {
      const bytes = await fs.readFile(path.join(root, clientId, name));
      assert.strictEqual(createHash('sha256').update(bytes).digest('hex'), digest, `${root}: ${name}'s bytes differ from its record`);
    }
  }
  return held;
}
