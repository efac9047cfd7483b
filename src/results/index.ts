/** Opens the result store that goes with the job store: GridFS with MongoDB, files otherwise. */
import { type ResolvedConfig, resultsDir } from '../config.js';
import type { JobStore } from '../store/port.js';
import { createFsResultStore } from './fs/fs-result-store.js';
import type { ResultStore } from './port.js';

export type { ResultFile, ResultStore } from './port.js';

export async function openResultStore(config: ResolvedConfig, store: JobStore): Promise<ResultStore> {
  if (store.driver === 'mongodb' && 'database' in store) {
    const { createGridFsResultStore } = await import('./gridfs/gridfs-result-store.js');
    const { MongoStore } = await import('../store/mongodb/mongodb-store.js');
    if (store instanceof MongoStore) return createGridFsResultStore(store.database());
  }
  return createFsResultStore(resultsDir(config));
}
