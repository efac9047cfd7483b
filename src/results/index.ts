/** Opens the result store that goes with the job store: GridFS in the MongoDB store's database, files otherwise. */
import type { Db } from 'mongodb';
import { type ResolvedConfig, resultsDir } from '../config.js';
import { createFsResultStore } from './fs/fs-result-store.js';
import type { ResultStore } from './port.js';

export type { ResultFile, ResultStore } from './port.js';

/** `gridfs`: the database to keep files in (the composition root passes the MongoDB store's), or null for files under `results.dir`. */
export async function openResultStore(config: ResolvedConfig, gridfs: Db | null): Promise<ResultStore> {
  if (gridfs !== null) {
    const { createGridFsResultStore } = await import('./gridfs/gridfs-result-store.js');
    return createGridFsResultStore(gridfs);
  }
  return createFsResultStore(resultsDir(config));
}
