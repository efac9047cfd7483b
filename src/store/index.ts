/** Opens the store the configuration names. The only place that picks an adapter. */
import { existsSync, rmSync } from 'node:fs';
import type { Db } from 'mongodb';
import { type ResolvedConfig, sqlitePath } from '../config.js';
import { ConfigError, coerceError, StoreUnavailableError } from '../errors.js';
import type { JobStore } from './port.js';
import { createSqliteStore } from './sqlite/sqlite-store.js';

export type { JobStore } from './port.js';

/** One line saying why SQLite could not open or set up its file, and what to check. */
function openFailure(thrown: unknown): string {
  const error = coerceError(thrown) as Error & { code?: string };
  const code = error.code ?? '';
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') return 'the disk is full';
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS')
    return 'the file or its folder is read-only (check dataDir and its permissions)';
  if (code.startsWith('SQLITE_CANTOPEN') || code === 'EACCES' || code === 'EPERM') {
    return 'the file cannot be created or opened (check that dataDir exists and is writable)';
  }
  return error.message.split('\n')[0] ?? error.message;
}

/** The store the configuration names, and the database its result files go to (MongoDB's, for GridFS; null for SQLite). */
export async function openStoreWithFiles(config: ResolvedConfig): Promise<{ store: JobStore; gridfs: Db | null }> {
  if (config.store.driver === 'sqlite') return { store: await openStore(config), gridfs: null };
  const store = (await openStore(config)) as import('./mongodb/mongodb-store.js').MongoStore;
  return { store, gridfs: store.database() };
}

export async function openStore(config: ResolvedConfig): Promise<JobStore> {
  if (config.store.driver === 'sqlite') {
    const path = sqlitePath(config);
    const existed = existsSync(path);
    try {
      return createSqliteStore({ path, busyTimeoutMs: config.store.sqlite.busyTimeoutMs, changePollMs: config.store.sqlite.changePollMs });
    } catch (error) {
      // A file this attempt created is empty or half-made: leave nothing behind for the next start to trip over.
      if (!existed) for (const suffix of ['', '-wal', '-shm', '-journal']) if (existsSync(`${path}${suffix}`)) rmSync(`${path}${suffix}`);
      throw new StoreUnavailableError(`cannot open the SQLite database ${path}: ${openFailure(error)}`, { cause: error });
    }
  }
  const mongo = config.store.mongodb;
  if (mongo.uri === '') {
    throw new ConfigError('store.mongodb.uri is empty: set MONGODB_URI to a replica set connection string, or use store.driver: sqlite', {
      key: 'store.mongodb.uri',
    });
  }
  // Loaded only when chosen, so SQLite users never load the MongoDB driver.
  const { createMongoStore } = await import('./mongodb/mongodb-store.js');
  return createMongoStore({
    uri: mongo.uri,
    database: mongo.database,
    maxPoolSize: mongo.maxPoolSize,
    serverSelectionTimeoutMS: mongo.serverSelectionTimeoutMs,
    socketTimeoutMS: mongo.socketTimeoutMs,
    changesRetentionHours: config.retention.changesHours,
  });
}
