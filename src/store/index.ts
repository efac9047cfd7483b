/** Opens the store the configuration names. The only place that picks an adapter. */
import { type ResolvedConfig, sqlitePath } from '../config.js';
import { ConfigError } from '../errors.js';
import type { JobStore } from './port.js';
import { createSqliteStore } from './sqlite/sqlite-store.js';

export type { JobStore } from './port.js';

export async function openStore(config: ResolvedConfig): Promise<JobStore> {
  if (config.store.driver === 'sqlite') {
    return createSqliteStore({
      path: sqlitePath(config),
      busyTimeoutMs: config.store.sqlite.busyTimeoutMs,
      changePollMs: config.store.sqlite.changePollMs,
    });
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
  });
}
