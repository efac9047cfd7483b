/**
 * The per-operation context: who calls, the services resolvers use, and DataLoaders
 * that batch and cache store reads for the length of one request.
 */
import DataLoader from 'dataloader';
import type { Authenticator } from '../auth/auth.js';
import type { Batch, Job, Principal } from '../domain/types.js';
import type { HandlerRegistry } from '../handlers/registry.js';
import type { Ingest } from '../ingest/ingest.js';
import type { Submitter } from '../jobs/submit.js';
import type { Logger } from '../log.js';
import type { ResultStore } from '../results/port.js';
import type { UrlSigner } from '../results/urls.js';
import type { JobStore } from '../store/port.js';
import type { UploadStore } from '../uploads/uploads.js';
import type { WebhookTester } from '../webhooks/tester.js';
import type { SubscriptionFeed } from './feed.js';
import type { ResponseBudget } from './response-budget.js';

export interface GraphQLServices {
  store: JobStore;
  submitter: Submitter;
  registry: HandlerRegistry;
  authenticator: Authenticator;
  feed: SubscriptionFeed;
  logger: Logger;
  /** Signs file and archive URLs. */
  signer: UrlSigner;
  results: ResultStore;
  /** The last retention sweep of this process, if any. */
  retention?: { last: RetentionSweepRecord | null };
  /** Inbound webhook sources and their counters. */
  ingest?: Ingest;
  /** With `uploads.deleteAfterUse`: deleting a job deletes the upload it read (when its owner's). */
  uploadsDeletedWithJobs?: Pick<UploadStore, 'deleteOwned'>;
  /** `testWebhook`: one signed test event to a receiver. */
  webhookTester?: WebhookTester;
}

export interface RetentionSweepRecord {
  at: Date;
  jobs: number;
  changes: number;
  uploads: number;
}

export interface Loaders {
  jobs: DataLoader<string, Job | null>;
  batches: DataLoader<string, Batch | null>;
}

export interface GraphQLContext {
  principal: Principal;
  /** Echoed in masked errors and logs, so a report can be matched to its log line. */
  requestId: string;
  services: GraphQLServices;
  loaders: Loaders;
  /** The answer's bytes so far, against graphql.maxResponseBytes: one per execution. */
  budget: ResponseBudget;
}

/**
 * Loaders for one request (cached: a query sees one consistent read of each id), or
 * with `cache: false` for long-lived subscriptions, where each event must see fresh data
 * but concurrent reads still share one store call.
 */
export function createLoaders(store: JobStore, options: { cache: boolean } = { cache: true }): Loaders {
  const settings = { cache: options.cache, maxBatchSize: 500 };
  return {
    jobs: new DataLoader((ids) => store.getJobs(ids), settings),
    batches: new DataLoader((ids) => store.getBatches(ids), settings),
  };
}
