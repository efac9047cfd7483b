/**
 * Prometheus metrics (prom-client), served at `/metrics`: jobs by status and type
 * (read from the store when scraped), claimed/completed/failed/retried totals, job
 * duration and queue wait histograms by type, webhook attempts by outcome with their
 * latency, active subscriptions, store operation latency, and the default process
 * metrics. One registry per Conveyor instance (no global state).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Job } from '../domain/types.js';
import type { JobStore } from '../store/port.js';

export interface Metrics {
  readonly registry: Registry;
  /** A worker claimed `job`. */
  claimed(job: Job): void;
  /** An attempt of `job` ended: COMPLETED, FAILED, CANCELLED, or PENDING again (a retry). */
  settled(job: Job): void;
  /** A webhook attempt ended with `outcome` (DELIVERED, PENDING, FAILED, DISABLED) after `ms`. */
  webhookAttempt(outcome: string, ms: number): void;
  /** An inbound webhook to `source` reached `outcome` (received, verified, rejected, accepted, duplicate, ignored). */
  ingest(source: string, outcome: string): void;
  /** An inbound webhook to `source` was answered after `ms`. */
  ingestAnswer(source: string, ms: number): void;
  /** The store with every operation's latency recorded. */
  instrument(store: JobStore): JobStore;
  /** Text exposition of every metric. */
  render(): Promise<string>;
}

export interface MetricsOptions {
  /** Read at scrape time for the job gauges. */
  store: () => JobStore | null;
  /** Open subscriptions, at scrape time. */
  activeSubscriptions?: () => number;
}

const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'conveyor_' });
  const total = (name: string, help: string) => new Counter({ name, help, labelNames: ['type'], registers: [registry] });
  const claimed = total('conveyor_jobs_claimed_total', 'Jobs claimed by workers of this process.');
  const completed = total('conveyor_jobs_completed_total', 'Jobs completed by workers of this process.');
  const failed = total('conveyor_jobs_failed_total', 'Jobs failed for good (no attempt left or not retriable).');
  const retried = total('conveyor_jobs_retried_total', 'Failed attempts that will be retried.');
  const cancelled = total('conveyor_jobs_cancelled_total', 'Running jobs cancelled.');
  const duration = new Histogram({
    name: 'conveyor_job_duration_seconds',
    help: 'Run time of one attempt (claim to its end), by type and outcome.',
    labelNames: ['type', 'status'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const wait = new Histogram({
    name: 'conveyor_job_queue_wait_seconds',
    help: 'Time from when a job could run (created or runAt) to its claim.',
    labelNames: ['type'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const webhookAttempts = new Counter({
    name: 'conveyor_webhook_attempts_total',
    help: 'Webhook delivery attempts by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const webhookLatency = new Histogram({
    name: 'conveyor_webhook_attempt_duration_seconds',
    help: 'Duration of webhook delivery attempts by outcome.',
    labelNames: ['outcome'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const ingestCount = new Counter({
    name: 'conveyor_ingest_total',
    help: 'Inbound webhooks by source and outcome: received, verified, rejected, accepted, duplicate, ignored (as Stats.ingest).',
    labelNames: ['source', 'outcome'],
    registers: [registry],
  });
  const ingestLatency = new Histogram({
    name: 'conveyor_ingest_answer_seconds',
    help: 'Time from an inbound webhook request to its answer, by source.',
    labelNames: ['source'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [registry],
  });
  const storeLatency = new Histogram({
    name: 'conveyor_store_operation_duration_seconds',
    help: 'Latency of job store operations.',
    labelNames: ['operation'],
    buckets: STORE_BUCKETS,
    registers: [registry],
  });
  new Gauge({
    name: 'conveyor_subscriptions_active',
    help: 'GraphQL subscriptions open in this process.',
    registers: [registry],
    collect() {
      this.set(options.activeSubscriptions?.() ?? 0);
    },
  });
  new Gauge({
    name: 'conveyor_jobs',
    help: 'Jobs in the store by type and status (read when scraped).',
    labelNames: ['type', 'status'],
    registers: [registry],
    async collect() {
      const store = options.store();
      if (store === null) return;
      const stats = await store.stats({});
      this.reset();
      for (const row of stats.byType) this.set({ type: row.key, status: row.status }, row.count);
    },
  });
  new Gauge({
    name: 'conveyor_queue_depth',
    help: 'Pending jobs whose run time has come.',
    registers: [registry],
    async collect() {
      const store = options.store();
      if (store !== null) this.set((await store.stats({})).queueDepth);
    },
  });
  const started = new Map<string, number>();

  return {
    registry,
    claimed(job) {
      claimed.inc({ type: job.type });
      const ready = Math.max(job.runAt.getTime(), job.createdAt.getTime());
      const at = job.startedAt?.getTime() ?? Date.now();
      wait.observe({ type: job.type }, Math.max(0, at - ready) / 1000);
      started.set(job.id, at);
    },
    settled(job) {
      const from = started.get(job.id);
      started.delete(job.id);
      const labels = { type: job.type };
      if (job.status === 'COMPLETED') completed.inc(labels);
      else if (job.status === 'FAILED') failed.inc(labels);
      else if (job.status === 'CANCELLED') cancelled.inc(labels);
      else if (job.status === 'PENDING') retried.inc(labels);
      if (from !== undefined) duration.observe({ type: job.type, status: job.status }, (Date.now() - from) / 1000);
    },
    ingest(source, outcome) {
      ingestCount.inc({ source, outcome });
    },
    ingestAnswer(source, ms) {
      ingestLatency.observe({ source }, ms / 1000);
    },
    webhookAttempt(outcome, ms) {
      webhookAttempts.inc({ outcome });
      webhookLatency.observe({ outcome }, ms / 1000);
    },
    instrument(store) {
      return new Proxy(store, {
        get(target, property, receiver) {
          const value = Reflect.get(target, property, receiver);
          if (typeof value !== 'function' || property === 'watch' || property === 'listen' || typeof property !== 'string') return value;
          return (...args: unknown[]) => {
            const begin = performance.now();
            const result = (value as (...a: unknown[]) => unknown).apply(target, args);
            if (result instanceof Promise) {
              const done = () => storeLatency.observe({ operation: property }, (performance.now() - begin) / 1000);
              result.then(done, done);
            }
            return result;
          };
        },
      });
    },
    render: () => registry.metrics(),
  };
}
