/** A real worker on a real SQLite file in a temp folder, with the handlers a test gives. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULTS, type ResolvedConfig } from '../../src/config.js';
import type { Job, JobStatus } from '../../src/domain/types.js';
import { createRegistry, type HandlerDefinition } from '../../src/handlers/registry.js';
import { createLogger } from '../../src/log.js';
import { createNetGuard } from '../../src/net/guard.js';
import { createFsResultStore } from '../../src/results/fs/fs-result-store.js';
import type { ResultStore } from '../../src/results/port.js';
import type { JobStore } from '../../src/store/port.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { createUploadStore, type UploadStore } from '../../src/uploads/uploads.js';
import { createWorker, type Worker, type WorkerConfig } from '../../src/worker/worker.js';

export interface Harness {
  dir: string;
  path: string;
  store: SqliteStore;
  results: ResultStore;
  uploads: UploadStore;
  worker(
    handlers: HandlerDefinition[],
    config?: Partial<WorkerConfig>,
    options?: { allow?: string[]; random?: () => number; workerId?: string; store?: JobStore },
  ): Worker;
  /** Resolves when every job matches `done`, checked on each change (fails after `ms`). */
  waitFor(ids: string[], done: (jobs: Job[]) => boolean, ms?: number): Promise<Job[]>;
  waitForStatus(ids: string[], statuses: JobStatus[], ms?: number): Promise<Job[]>;
  close(): Promise<void>;
}

/**
 * The harness store with `hook` told of every `claimNext` and `claim` result (null: the
 * claim found nothing; the real store does the work; tests use this to know when a worker
 * found nothing to claim).
 */
export function observeClaims(store: JobStore, hook: (job: Job | null) => void): JobStore {
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (property === 'claimNext') {
        return async (...args: Parameters<JobStore['claimNext']>) => {
          const job = await target.claimNext(...args);
          hook(job);
          return job;
        };
      }
      if (property === 'claim') {
        return async (...args: Parameters<JobStore['claim']>) => {
          const jobs = await target.claim(...args);
          if (jobs.length === 0) hook(null);
          for (const job of jobs) hook(job);
          return jobs;
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * The harness store with `hook` told of every call of the named methods, with the
 * arguments and the result (the real store does the work).
 */
export function observeCalls<K extends keyof JobStore>(
  store: JobStore,
  methods: readonly K[],
  hook: (method: K, args: unknown[], result: unknown) => void,
): JobStore {
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function') return value;
      if (!(methods as readonly PropertyKey[]).includes(property)) return value.bind(target);
      return async (...args: unknown[]) => {
        const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        hook(property as K, args, result);
        return result;
      };
    },
  });
}

/** A promise with its resolve function, for hooks that tests await. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export function testWorkerConfig(overrides: Partial<WorkerConfig> = {}): WorkerConfig {
  return { ...DEFAULTS.worker, leaseMs: 5000, heartbeatMs: 1000, pollMs: 200, progressIntervalMs: 20, abandonGraceMs: 200, ...overrides };
}

export function createHarness(options: { path?: string } = {}): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-worker-'));
  const path = options.path ?? join(dir, 'conveyor.db');
  const store = createSqliteStore({ path, changePollMs: 10, leaseCheckMs: 100 });
  const results = createFsResultStore(join(dir, 'results'));
  const uploads = createUploadStore(results);
  const workers: Worker[] = [];
  const logger = createLogger('error');

  const harness: Harness = {
    dir,
    path,
    store,
    results,
    uploads,
    worker(handlers, config = {}, extra = {}) {
      const limits: ResolvedConfig['limits'] = { ...DEFAULTS.limits, maxDownloadBytes: 200_000, downloadTimeoutMs: 5000 };
      const worker = createWorker({
        store: extra.store ?? store,
        registry: createRegistry(handlers),
        results,
        services: { net: createNetGuard(extra.allow ?? []), uploads, limits },
        config: testWorkerConfig(config),
        logger,
        ...(extra.random === undefined ? {} : { random: extra.random }),
        ...(extra.workerId === undefined ? {} : { workerId: extra.workerId }),
      });
      workers.push(worker);
      return worker;
    },
    async waitFor(ids, done, ms = 15_000) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), ms);
      try {
        // Cursor first, then read: a change between the two is replayed, never missed.
        const after = await store.headCursor();
        let jobs = (await store.getJobs(ids)) as Job[];
        if (done(jobs)) return jobs;
        for await (const _ of store.watch({ after, signal: controller.signal })) {
          jobs = (await store.getJobs(ids)) as Job[];
          if (done(jobs)) return jobs;
        }
      } finally {
        clearTimeout(timer);
      }
      const jobs = (await store.getJobs(ids)) as Job[];
      if (done(jobs)) return jobs;
      throw new Error(`timed out waiting; statuses: ${jobs.map((j) => j?.status).join(', ')}`);
    },
    waitForStatus(ids, statuses, ms) {
      return harness.waitFor(ids, (jobs) => jobs.every((j) => j !== null && statuses.includes(j.status)), ms);
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}
