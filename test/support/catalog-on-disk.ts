import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { NameState } from '../../server/storage/name-state';
import { JournalCatalog } from '../../server/storage/journal-catalog';
import type { CatalogMarks } from '../../server/storage/catalog';

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
