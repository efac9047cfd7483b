/** Public entry point for embedding Conveyor in another Node service. */
export { type RunningService, startService, sweepRetention } from './app.js';
export { ALIASES, DEFAULTS, envName, type LoadConfigOptions, loadConfig, type ResolvedConfig } from './config.js';
export * from './domain/index.js';
export * from './errors.js';
export { createLogger, type Logger } from './log.js';
export { openStore } from './store/index.js';
export { createMongoStore, type MongoStoreOptions } from './store/mongodb/mongodb-store.js';
export type * from './store/port.js';
export { createSqliteStore, type SqliteStoreOptions } from './store/sqlite/sqlite-store.js';
