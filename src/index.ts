/** Public entry point for embedding Conveyor in another Node service. */
export { type Authenticator, createAuthenticator, hashApiKey } from './auth/auth.js';
export { ALIASES, DEFAULTS, envName, type LoadConfigOptions, loadConfig, type ResolvedConfig } from './config.js';
export { type Conveyor, type ConveyorClient, type ConveyorOptions, createConveyor, type Role } from './conveyor.js';
export * from './domain/index.js';
export * from './errors.js';
export { pdfHandler } from './handlers/pdf.js';
export {
  createRegistry,
  defineHandler,
  type HandlerContext,
  type HandlerDefaults,
  type HandlerDefinition,
  type HandlerRegistry,
  type ProgressUpdate,
} from './handlers/registry.js';
export { sweepRetention } from './jobs/retention.js';
export type { BatchInput, JobInput } from './jobs/submit.js';
export { createLogger, type Logger } from './log.js';
export type { ResultFile } from './results/port.js';
export { openStore } from './store/index.js';
export type { ChangeInterest, InterestClause } from './store/interest.js';
export { createMongoStore, type MongoStoreOptions } from './store/mongodb/mongodb-store.js';
export type * from './store/port.js';
export { createSqliteStore, type SqliteStoreOptions } from './store/sqlite/sqlite-store.js';
export { sign as signWebhook } from './webhooks/signing.js';
export { describeWebhook, validateWebhook, type WebhookSettings } from './webhooks/validate.js';
export { createWorker, type Worker } from './worker/worker.js';
