/**
 * The programmatic entry point: `createConveyor({ config, handlers })` wires store,
 * handler registry (built-ins, `handlers.modules` from config, and `handlers` given
 * here), result and upload stores, worker and HTTP server. `main.ts` uses it for the
 * command line; another Node service can embed Conveyor the same way.
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createAuthenticator } from './auth/auth.js';
import { createTicketIssuer } from './auth/ticket.js';
import { type LoadConfigOptions, loadConfig, type ResolvedConfig } from './config.js';
import { ANONYMOUS } from './domain/access.js';
import type { Batch, Job, Principal } from './domain/types.js';
import { ConfigError, coerceError } from './errors.js';
import type { RetentionSweepRecord } from './graphql/context.js';
import { createSubscriptionFeed, type SubscriptionFeed } from './graphql/feed.js';
import { createGraphQLService, type GraphQLService } from './graphql/service.js';
import { builtInHandlers } from './handlers/index.js';
import {
  createRegistry,
  definitionsFromModule,
  type HandlerDefinition,
  type HandlerRegistry,
  type HandlerServices,
} from './handlers/registry.js';
import { createOpenAiTransformer } from './handlers/transformer.js';
import { createDashboardRoute } from './http/dashboard.js';
import { createFileRoutes } from './http/files.js';
import { createIngestRoute } from './http/ingest.js';
import { createMetricsRoute } from './http/metrics.js';
import { createHttpServer, type HttpServer } from './http/server.js';
import { createUploadRoute } from './http/uploads.js';
import { createWsTicketRoute } from './http/ws-ticket.js';
import { checkIngestSources, createIngest } from './ingest/ingest.js';
import { sweepRetention } from './jobs/retention.js';
import { type BatchInput, createSubmitter, type JobInput } from './jobs/submit.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { createNetGuard } from './net/guard.js';
import { packageVersion } from './package-root.js';
import { openResultStore } from './results/index.js';
import type { ResultStore } from './results/port.js';
import { createUrlSigner, publicBaseUrl, urlSecret } from './results/urls.js';
import { openStoreWithFiles } from './store/index.js';
import type { Created, JobStore } from './store/port.js';
import { createUploadStore, type UploadStore } from './uploads/uploads.js';
import { createDispatcher, type Dispatcher } from './webhooks/dispatcher.js';
import { createWebhookTester } from './webhooks/tester.js';
import { createWorker, type Worker } from './worker/worker.js';

export type Role = ResolvedConfig['role'];

export interface ConveyorOptions {
  /** A resolved config, or options for `loadConfig` (default: config.yaml and the environment). */
  config?: ResolvedConfig | LoadConfigOptions;
  /** Extra job types, registered next to the built-in ones. */
  handlers?: HandlerDefinition[];
  logger?: Logger;
  /** Open this store instead of the one the config names (embedding, tests). */
  store?: JobStore;
  /** The result store to use with `store` (default: files under `results.dir`). */
  results?: ResultStore;
}

/** The store-backed client: submit and control jobs without going through HTTP. */
export interface ConveyorClient {
  submitJob(input: JobInput, as: Principal): Promise<Created<Job>>;
  submitBatch(input: BatchInput, as: Principal): Promise<Created<{ batch: Batch; jobs: Job[] }>>;
  getJob(id: string): Promise<Job | null>;
  getBatch(id: string): Promise<Batch | null>;
  cancelJob(id: string): Promise<Job>;
  restartJob(id: string): Promise<Job>;
}

export interface Conveyor {
  readonly config: ResolvedConfig;
  readonly store: JobStore;
  readonly registry: HandlerRegistry;
  readonly results: ResultStore;
  readonly uploads: UploadStore;
  readonly metrics: Metrics;
  readonly client: ConveyorClient;
  /** Starts what the role says (default: `config.role`). Resolves once listening / claiming. */
  start(role?: Role): Promise<{ url: string; worker: Worker | null }>;
  /** Graceful stop: HTTP drained, worker finished or released, store closed. */
  stop(): Promise<void>;
}

function isResolved(config: ConveyorOptions['config']): config is ResolvedConfig {
  return typeof config === 'object' && config !== null && 'worker' in config && 'store' in config;
}

/** Loads `handlers.modules`: file paths (relative to the working directory) or package names. */
export async function loadHandlerModules(modules: readonly string[]): Promise<HandlerDefinition[]> {
  const definitions: HandlerDefinition[] = [];
  for (const specifier of modules) {
    // A file path when it looks like one or names an existing file; a package name otherwise.
    const isPath = specifier.startsWith('.') || isAbsolute(specifier) || existsSync(resolve(specifier));
    const target = isPath ? pathToFileURL(resolve(specifier)).href : specifier;
    let module: Record<string, unknown>;
    try {
      module = (await import(target)) as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError(`handlers.modules: cannot load ${specifier}: ${coerceError(error).message}`, { module: specifier });
    }
    definitions.push(...definitionsFromModule(specifier, module));
  }
  return definitions;
}

export async function createConveyor(options: ConveyorOptions = {}): Promise<Conveyor> {
  const config = isResolved(options.config) ? options.config : loadConfig(options.config ?? {});
  const logger = options.logger ?? createLogger(config.log.level, {}, { format: config.log.format });
  const modules = await loadHandlerModules(config.handlers.modules);
  const registry = createRegistry([...builtInHandlers, ...modules, ...(options.handlers ?? [])]);
  // Every inbound webhook route names a known job type, or start-up stops here.
  checkIngestSources(config.ingest, registry);
  // A data folder that is a file would otherwise fail deep inside the store with a system error.
  if (existsSync(config.dataDir) && !statSync(config.dataDir).isDirectory()) {
    throw new ConfigError(
      `dataDir ${resolve(config.dataDir)} is a file, not a folder: point dataDir at a folder (it is created when missing)`,
      { key: 'dataDir' },
    );
  }
  let feed: SubscriptionFeed | null = null;
  const metrics = createMetrics({ store: () => store, activeSubscriptions: () => feed?.activeSubscriptions() ?? 0 });
  const opened = options.store === undefined ? await openStoreWithFiles(config) : { store: options.store, gridfs: null };
  const rawStore = opened.store;
  // Every store call's latency goes to conveyor_store_operation_duration_seconds.
  const store = metrics.instrument(rawStore);
  const results = options.results ?? (await openResultStore(config, opened.gridfs));
  const uploads = createUploadStore(results);
  const guard = createNetGuard(config.net.allow);
  const services: HandlerServices = {
    net: guard,
    uploads,
    limits: { maxDownloadBytes: config.limits.maxDownloadBytes, downloadTimeoutMs: config.limits.downloadTimeoutMs },
    transformer: createOpenAiTransformer(config.transformer, config.limits.maxDownloadBytes),
    languages: {
      source: config.transformer.defaultSourceLanguage || null,
      target: config.transformer.defaultTargetLanguage || null,
    },
  };
  const submitter = createSubmitter(store, registry, config, guard, uploads);
  const ingest = createIngest({
    config: config.ingest,
    store,
    submitter,
    registry,
    logger: logger.child({ component: 'ingest' }),
    onCount: (source, outcome) => metrics.ingest(source, outcome),
  });
  // File URLs name the address this process listens on once it does (port 0 in tests).
  let baseUrl = publicBaseUrl(config);
  const retentionState: { last: RetentionSweepRecord | null } = { last: null };
  const secret = urlSecret(config);
  const signer = createUrlSigner({ secret, ttl: config.results.urlTtl, baseUrl: () => baseUrl });
  let http: HttpServer | null = null;
  let worker: Worker | null = null;
  let dispatcher: Dispatcher | null = null;
  let retention: NodeJS.Timeout | null = null;
  let stopping: Promise<void> | null = null;

  const first = async <T>(items: Promise<(T | null)[]>) => (await items)[0] ?? null;

  return {
    config,
    store,
    registry,
    results,
    uploads,
    metrics,
    client: {
      submitJob: (input, as) => submitter.submitJob(input, as ?? ANONYMOUS),
      submitBatch: (input, as) => submitter.submitBatch(input, as ?? ANONYMOUS),
      getJob: (id) => first(store.getJobs([id])),
      getBatch: (id) => first(store.getBatches([id])),
      cancelJob: (id) => store.cancelJob(id),
      restartJob: (id) => store.restartJob(id),
    },
    async start(role = config.role) {
      const routes: NonNullable<Parameters<typeof createHttpServer>[0]['routes']> = [];
      if (config.metrics.enabled) routes.push(createMetricsRoute(metrics, config.metrics.token));
      let graphql: GraphQLService | undefined;
      if (role === 'all' || role === 'api') {
        const tickets = createTicketIssuer({ secret });
        const authenticator = createAuthenticator(config.auth, { tickets });
        feed = createSubscriptionFeed(store);
        graphql = await createGraphQLService({
          config: config.graphql,
          services: {
            store,
            submitter,
            registry,
            signer,
            results,
            ...(config.uploads.deleteAfterUse ? { uploadsDeletedWithJobs: uploads } : {}),
            retention: retentionState,
            ingest,
            authenticator,
            feed,
            logger,
            webhookTester: createWebhookTester({ guard, config: config.webhooks, version: packageVersion() }),
          },
        });
        routes.push(
          createWsTicketRoute({ authenticator, tickets }),
          createIngestRoute(ingest, (source, ms) => metrics.ingestAnswer(source, ms)),
          createDashboardRoute(),
          createFileRoutes({ store, results, signer, authenticator, logger }),
          createUploadRoute({ uploads, authenticator, maxBytes: config.limits.maxUploadBytes, ttlHours: config.uploads.ttlHours }),
        );
        if (config.retention.intervalMs > 0) {
          retention = setInterval(() => {
            sweepRetention(store, config, { results, uploads }).then(
              ({ jobIds: _ids, ...result }) => {
                retentionState.last = { at: new Date(), jobs: result.jobs, changes: result.changes, uploads: result.uploads };
                if (result.jobs + result.changes + result.uploads + result.orphanedResults > 0)
                  logger.info('retention sweep', { ...result });
              },
              (error: unknown) => logger.error('retention sweep failed', { error: coerceError(error) }),
            );
          }, config.retention.intervalMs);
          retention.unref();
        }
      }
      // Every role listens: worker-only processes serve /healthz, /readyz and /metrics.
      http = createHttpServer({
        store,
        logger,
        shutdownGraceMs: config.server.shutdownGraceMs,
        settings: config.server,
        routes,
        ...(graphql === undefined ? {} : { graphql }),
      });
      const address = await http.listen(config.server.port, config.server.host);
      if (config.server.publicUrl === '') baseUrl = publicBaseUrl(config, { host: address.address, port: address.port });
      const host = address.address.includes(':') ? `[${address.address}]` : address.address;
      const url = `http://${host}:${address.port}`;
      logger.info('conveyor listening', {
        url,
        store: store.driver,
        role,
        ...(graphql === undefined ? {} : { graphql: `${url}/graphql`, dashboard: `${url}/` }),
        ...(config.metrics.enabled ? { metrics: `${url}/metrics` } : {}),
      });
      if (role === 'all' || role === 'worker') {
        worker = createWorker({
          store,
          registry,
          results,
          services,
          config: config.worker,
          logger,
          observer: metrics,
        });
        worker.start();
        dispatcher = createDispatcher({
          store,
          results,
          signer,
          guard,
          config: config.webhooks,
          logger: logger.child({ component: 'webhooks' }),
          workerId: worker.id,
          version: packageVersion(),
          onAttempt: (outcome, ms) => metrics.webhookAttempt(outcome, ms),
        });
        dispatcher.start();
      }
      return { url, worker };
    },
    stop() {
      stopping ??= (async () => {
        if (retention !== null) clearInterval(retention);
        await Promise.all([http?.close(), worker?.stop(), dispatcher?.stop()]);
        await ingest.stop();
        await store.close();
      })();
      return stopping;
    },
  };
}
