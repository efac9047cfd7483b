/**
 * The worker: claims jobs from the store and runs their handlers with a global
 * concurrency limit and per-type limits. It wakes at once on the store's change feed
 * (a slow poll remains for delayed jobs and as a fallback), renews each job's lease
 * while it runs, retries failures with backoff, aborts handlers on cancel, timeout or
 * lease loss, and on shutdown lets running jobs finish within a grace period before
 * releasing the rest to other workers.
 *
 * Every outcome is written with the claim's fencing token, so a worker that lost a
 * job (lease expired, job cancelled) can never overwrite what happened since.
 */
import { hostname } from 'node:os';
import type { ResolvedConfig } from '../config.js';
import { newId } from '../domain/ids.js';
import { isTerminal } from '../domain/status.js';
import type { Job, JsonObject, LogLevel, Usage } from '../domain/types.js';
import { AppError, coerceError, JobFailure, LeaseLostError } from '../errors.js';
import type { HandlerContext, HandlerRegistry, HandlerServices, ProgressUpdate, UsageReport } from '../handlers/registry.js';
import type { Logger } from '../log.js';
import { resultFiles } from '../results/archive.js';
import type { ResultFile, ResultStore } from '../results/port.js';
import { watchChanges as follow } from '../store/change-stream.js';
import type { AttemptReport, ChangeFeed, ClaimToken, JobsPort, NewLogEntry, QueuePort } from '../store/port.js';
import { retryDelay } from './backoff.js';

export type WorkerConfig = ResolvedConfig['worker'];

export interface WorkerOptions {
  /** The queue, the change feed (wake-ups, cancellations) and job reads. */
  store: QueuePort & ChangeFeed & Pick<JobsPort, 'getJobs'>;
  registry: HandlerRegistry;
  results: ResultStore;
  services: HandlerServices;
  config: WorkerConfig;
  logger: Logger;
  /** Default: `<host>-<pid>-<random>`. */
  workerId?: string;
  /** Source of randomness for backoff jitter (tests pass a fixed one). */
  random?: () => number;
  /** Told of every claim and of every write that ends an attempt (metrics). */
  observer?: { claimed(job: Job): void; settled(job: Job): void };
  /** Called when a job this worker ran has ended for good (COMPLETED, FAILED or CANCELLED); errors are logged. */
  onFinished?: (job: Job) => Promise<void>;
}

export interface Worker {
  readonly id: string;
  /** Jobs whose handler currently holds a slot. */
  readonly active: number;
  start(): void;
  /** Stops claiming, lets running jobs finish within `shutdownGraceMs`, releases the rest. */
  stop(): Promise<void>;
}

/** Why a run was aborted: the AbortSignal's reason is an AbortReason. */
export class AbortReason extends Error {
  constructor(readonly kind: 'cancelled' | 'timeout' | 'lease-lost' | 'shutdown') {
    super(`job aborted: ${kind}`);
    this.name = 'AbortError';
  }
}

interface Run {
  job: Job;
  token: ClaimToken;
  controller: AbortController;
  /** The store holds this run's outcome already (set once; later writes are skipped). */
  decided: boolean;
  /** The slot is free again (handler settled, or abandoned after an abort). */
  freed: boolean;
  files: ResultFile[];
  pendingProgress: ProgressUpdate | null;
  lastProgressAt: number;
  pendingLogs: NewLogEntry[];
  flushTimer: NodeJS.Timeout | null;
  flushing: Promise<void>;
  timers: NodeJS.Timeout[];
  /** What this attempt reported using (`ctx.usage`). */
  usage: Usage | null;
  /** performance.now() at the start of the run. */
  began: number;
}

/** A handler's usage report, checked and added to the attempt's sum. */
export function addReport(sum: Usage | null, report: UsageReport): Usage | null {
  const figure = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0);
  const inputTokens = figure(report.inputTokens);
  const outputTokens = figure(report.outputTokens);
  const tokens = report.tokens === undefined ? inputTokens + outputTokens : figure(report.tokens);
  const model = typeof report.model === 'string' && report.model !== '' ? report.model.slice(0, 200) : null;
  const base = sum ?? { tokens: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, models: [] };
  return {
    tokens: base.tokens + tokens,
    inputTokens: base.inputTokens + inputTokens,
    outputTokens: base.outputTokens + outputTokens,
    costUsd: base.costUsd + figure(report.costUsd),
    models: model === null || base.models.includes(model) ? base.models : [...base.models, model],
  };
}

/** Facts a handler attached to its failure, as JSON (dropped when they cannot be encoded). */
function detailsOf(details: unknown): JsonObject | null {
  if (typeof details !== 'object' || details === null) return null;
  try {
    return JSON.parse(JSON.stringify(details)) as JsonObject;
  } catch {
    return null;
  }
}

export function createWorker(options: WorkerOptions): Worker {
  const { store, registry, results, services, config, logger } = options;
  const id = options.workerId ?? `${hostname()}-${process.pid}-${newId('w').slice(-6)}`;
  const random = options.random ?? Math.random;
  const log = logger.child({ workerId: id });
  const runs = new Map<string, Run>();
  const perTypeActive = new Map<string, number>();
  let slots = 0;
  let stopping = false;
  let started = false;
  let filling = false;
  let refill = false;
  let pollTimer: NodeJS.Timeout | null = null;
  const watchController = new AbortController();
  let watchDone: Promise<void> = Promise.resolve();
  const slotFreed = new Set<() => void>();

  const settingsOf = (type: string) => {
    const own = registry.get(type)?.defaults ?? {};
    const configured = config.perType[type] ?? {};
    return {
      concurrency: configured.concurrency ?? own.concurrency ?? Number.POSITIVE_INFINITY,
      timeoutMs: configured.timeoutMs ?? own.timeoutMs ?? config.timeoutMs,
    };
  };

  const tokenOf = (job: Job): ClaimToken => ({ jobId: job.id, workerId: id, leaseToken: job.leaseToken });

  /** Store writes of a run: a lost lease is expected (someone else decided), anything else is logged. */
  /** Runs a store write of this run; `settles` marks the writes that end an attempt. */
  async function guarded(run: Run, what: string, write: () => Promise<unknown>, settles = false): Promise<void> {
    try {
      const written = await write();
      const job = (written as { completed?: Job } | null)?.completed ?? (written as Job | null);
      if (settles && job?.id === run.job.id) {
        options.observer?.settled(job);
        if (isTerminal(job.status)) finished(job);
      }
    } catch (thrown) {
      const error = coerceError(thrown);
      if (error instanceof LeaseLostError) log.debug(`${what}: lease no longer held`, { jobId: run.job.id });
      else log.error(`${what} failed`, { jobId: run.job.id, error });
    }
  }

  function finished(job: Job): void {
    options.onFinished?.(job).catch((error: unknown) => log.warn('after-job hook failed', { jobId: job.id, error: coerceError(error) }));
  }

  /**
   * A job submitted with the result cache takes the results of the completed job it
   * names (copied through `writeResult`, so the copy is fenced like any result) instead
   * of running its handler. Null when that job is gone: then the handler runs.
   */
  async function reuse(job: Job, context: HandlerContext): Promise<JsonObject | null> {
    if (job.cachedFrom === null) return null;
    const [source] = await store.getJobs([job.cachedFrom]);
    if (source?.status !== 'COMPLETED' || source.results === null) {
      context.log('info', `cached results of ${job.cachedFrom} are gone; running the handler`);
      return null;
    }
    for (const file of resultFiles(source)) {
      const stream = await results.open(source.id, file.name);
      if (stream === null) {
        context.log('info', `cached result file ${file.name} of ${source.id} is gone; running the handler`);
        return null;
      }
      await context.writeResult(file.name, stream, file.contentType);
    }
    context.log('info', `reused the results of ${source.id} (result cache); the handler did not run`);
    const { files: _files, ...value } = source.results;
    return value;
  }

  function flush(run: Run): Promise<void> {
    run.flushing = run.flushing.then(async () => {
      if (run.flushTimer !== null) clearTimeout(run.flushTimer);
      run.flushTimer = null;
      const logs = run.pendingLogs.splice(0);
      const progress = run.pendingProgress;
      run.pendingProgress = null;
      if (logs.length > 0) await guarded(run, 'writing logs', () => store.appendLogs(run.token, logs));
      if (progress !== null) {
        run.lastProgressAt = Date.now();
        await guarded(run, 'writing progress', () =>
          store.updateProgress(run.token, { percent: progress.percent, step: progress.step ?? null, message: progress.message ?? null }),
        );
      }
    });
    return run.flushing;
  }

  /** Coalesces progress and log writes: at most one flush per progressIntervalMs. */
  function scheduleFlush(run: Run): void {
    if (run.decided || run.flushTimer !== null) return;
    const wait = Math.max(0, run.lastProgressAt + config.progressIntervalMs - Date.now());
    run.flushTimer = setTimeout(() => {
      run.flushTimer = null;
      void flush(run);
    }, wait);
  }

  function freeSlot(run: Run): void {
    if (run.freed) return;
    run.freed = true;
    slots--;
    perTypeActive.set(run.job.type, (perTypeActive.get(run.job.type) ?? 1) - 1);
    for (const notify of slotFreed) notify();
    if (!stopping) void fill();
  }

  /**
   * The log lines still buffered plus the outcome's own line, to be written with the
   * outcome in one transaction, and what the attempt used.
   */
  function report(run: Run, level: LogLevel, line: string): AttemptReport {
    const logs = run.pendingLogs.splice(0);
    logs.push({ level, message: line });
    return { logs, usage: run.usage };
  }

  /** The outcome line of a failed attempt: its code, whether it is retried, and when. */
  function failureLine(job: Job, failure: { code: string; message: string; retriable: boolean }, retryAt: Date | null): string {
    const retry = failure.retriable && retryAt !== null && job.attempts < job.maxAttempts;
    const next = retry
      ? `next attempt at ${(retryAt as Date).toISOString()}`
      : failure.retriable
        ? `no attempts left (${job.attempts} of ${job.maxAttempts})`
        : 'not retriable';
    return `failed: ${failure.code} ${failure.message} (attempt ${job.attempts} of ${job.maxAttempts}; ${next})`;
  }

  /** Aborts a run and records the outcome the abort implies, once. */
  function abort(run: Run, kind: AbortReason['kind']): Promise<void> {
    if (run.decided || run.controller.signal.aborted) return Promise.resolve();
    run.controller.abort(new AbortReason(kind));
    run.decided = true;
    // A handler that ignores its signal keeps the slot only this long.
    run.timers.push(setTimeout(() => freeSlot(run), config.abandonGraceMs));
    const job = run.job;
    switch (kind) {
      case 'cancelled': {
        log.info('job cancelled', { jobId: job.id });
        const done = report(run, 'warn', `cancelled (attempt ${job.attempts} of ${job.maxAttempts})`);
        return flush(run).then(() => guarded(run, 'recording cancellation', () => store.markCancelled(run.token, done), true));
      }
      case 'timeout': {
        log.warn('job timed out', { jobId: job.id });
        const failure = {
          code: 'TIMEOUT',
          message: `the handler ran longer than ${settingsOf(job.type).timeoutMs} ms`,
          retriable: true,
        };
        const retryAt = new Date(Date.now() + retryDelay(job.attempts, config.backoff, random));
        const done = report(run, 'error', failureLine(job, failure, retryAt));
        return flush(run).then(() =>
          guarded(run, 'recording timeout', () => store.fail(run.token, { ...failure, retryAt, ...done }), true),
        );
      }
      case 'shutdown':
        log.info('releasing job at shutdown', { jobId: job.id });
        return guarded(run, 'releasing', () => store.release(run.token));
      case 'lease-lost':
        log.warn('lease lost; abandoning job', { jobId: job.id });
        return Promise.resolve();
    }
  }

  function failureOf(thrown: unknown): { code: string; message: string; retriable: boolean; details?: JsonObject | null } {
    const error = coerceError(thrown);
    if (error instanceof JobFailure) {
      return { code: error.code, message: error.message, retriable: error.retriable, details: detailsOf(error.details) };
    }
    // Expected errors of our own (bad input, forbidden upload…) will not change on retry.
    if (error instanceof AppError) return { code: error.code, message: error.message, retriable: false };
    const retriable = (error as { retriable?: unknown }).retriable !== false;
    return { code: 'HANDLER_ERROR', message: error.message || error.name, retriable };
  }

  async function execute(job: Job): Promise<void> {
    const definition = registry.get(job.type);
    const run: Run = {
      job,
      token: tokenOf(job),
      controller: new AbortController(),
      decided: false,
      freed: false,
      files: [],
      pendingProgress: null,
      lastProgressAt: 0,
      pendingLogs: [],
      flushTimer: null,
      flushing: Promise.resolve(),
      timers: [],
      usage: null,
      began: performance.now(),
    };
    runs.set(job.id, run);
    run.pendingLogs.push({ level: 'info', message: `claimed by worker ${id} (attempt ${job.attempts} of ${job.maxAttempts})` });
    const jobLog = log.child({
      jobId: job.id,
      type: job.type,
      attempt: job.attempts,
      ...(job.batchId === null ? {} : { batchId: job.batchId }),
    });
    try {
      if (definition === undefined) {
        // Claims only ask for registered types; this guards against a registry change mid-flight.
        const failure = { code: 'UNKNOWN_JOB_TYPE', message: `no handler for ${job.type}`, retriable: true };
        const retryAt = new Date(Date.now() + config.pollMs);
        const done = report(run, 'error', failureLine(job, failure, retryAt));
        await guarded(run, 'failing unknown type', () => store.fail(run.token, { ...failure, retryAt, ...done }), true);
        return;
      }
      // The claim line shows up within a progress interval, not only with the outcome.
      run.lastProgressAt = Date.now();
      scheduleFlush(run);
      const heartbeat = setInterval(() => {
        store.renewLease(run.token, config.leaseMs).then(
          (lease) => {
            if (lease.cancelRequested) void abort(run, 'cancelled');
          },
          (error: unknown) => {
            if (error instanceof LeaseLostError) void abort(run, 'lease-lost');
            else jobLog.warn('lease renewal failed', { error: coerceError(error) });
          },
        );
      }, config.heartbeatMs);
      run.timers.push(heartbeat);
      const { timeoutMs } = settingsOf(job.type);
      if (timeoutMs > 0) run.timers.push(setTimeout(() => void abort(run, 'timeout'), timeoutMs));
      if (job.cancelRequested) void abort(run, 'cancelled');

      const context: HandlerContext = {
        job,
        attempt: job.attempts,
        signal: run.controller.signal,
        logger: jobLog,
        services,
        progress(update) {
          run.pendingProgress = update;
          scheduleFlush(run);
        },
        log(level: LogLevel, message: string) {
          run.pendingLogs.push({ level, message: String(message).slice(0, 10_000) });
          if (run.pendingLogs.length >= 100) void flush(run);
          else scheduleFlush(run);
        },
        usage(reported) {
          if (!run.decided) run.usage = addReport(run.usage, reported ?? {});
        },
        async writeResult(name, body, contentType) {
          // Fence the write: a run that lost the job must not touch its results.
          if (run.decided) throw new LeaseLostError(job.id, job.leaseToken);
          await store.renewLease(run.token, config.leaseMs);
          const file = await results.put(job.id, name, body, contentType);
          run.files = [...run.files.filter((f) => f.name !== file.name), file];
          return file;
        },
      };

      let outcome: { ok: true; value: JsonObject | undefined } | { ok: false; error: unknown };
      try {
        const cached = await reuse(job, context);
        if (cached !== null) outcome = { ok: true, value: cached };
        else {
          run.files = [];
          const parameters = definition.parameters.parse(job.parameters);
          outcome = { ok: true, value: await definition.run(parameters, context) };
        }
      } catch (error) {
        outcome = { ok: false, error };
      }
      if (run.decided) return;
      run.decided = true;
      if (outcome.ok) {
        const done = report(run, 'info', `completed in ${Math.round(performance.now() - run.began)} ms`);
        await flush(run);
        const value = outcome.value ?? {};
        const files = run.files.map((f) => ({ ...f }));
        await guarded(run, 'completing', () => completeAndContinue(run, files.length > 0 ? { ...value, files } : value, done), true);
        jobLog.debug('job completed');
      } else {
        const failure = failureOf(outcome.error);
        const retryAt = failure.retriable ? new Date(Date.now() + retryDelay(job.attempts, config.backoff, random)) : null;
        const done = report(run, 'error', failureLine(job, failure, retryAt));
        await flush(run);
        jobLog.info('job failed', { code: failure.code, error: failure.message, retryAt: retryAt?.toISOString() ?? null });
        await guarded(run, 'recording failure', () => store.fail(run.token, { ...failure, retryAt, ...done }), true);
      }
    } finally {
      for (const timer of run.timers) clearTimeout(timer);
      if (run.flushTimer !== null) clearTimeout(run.flushTimer);
      runs.delete(job.id);
      freeSlot(run);
    }
  }

  /** Types this worker may claim now; `leaving` is a job about to give its slot back. */
  function claimableTypes(leaving?: Job): string[] {
    return registry.types.filter((type) => {
      const active = (perTypeActive.get(type) ?? 0) - (leaving?.type === type ? 1 : 0);
      return active < settingsOf(type).concurrency;
    });
  }

  function begin(job: Job): void {
    options.observer?.claimed(job);
    slots++;
    perTypeActive.set(job.type, (perTypeActive.get(job.type) ?? 0) + 1);
    void execute(job).catch((error: unknown) => log.error('job run crashed', { jobId: job.id, error: coerceError(error) }));
  }

  /**
   * Completes a job and, in the same store transaction, claims the next one for the
   * slot it frees (one commit per job instead of two on a busy worker).
   */
  async function completeAndContinue(run: Run, value: JsonObject, done: AttemptReport): Promise<Job> {
    const types = stopping ? [] : claimableTypes(run.job);
    if (types.length === 0) return store.complete(run.token, value, done);
    const { completed, next } = await store.completeAndClaim(run.token, value, { workerId: id, leaseMs: config.leaseMs, types }, done);
    // The finishing handler has returned: its slot passes to the next job when this run frees it.
    if (next !== null) begin(next);
    return completed;
  }

  async function fill(): Promise<void> {
    if (filling) {
      refill = true;
      return;
    }
    filling = true;
    try {
      do {
        refill = false;
        while (!stopping && slots < config.concurrency) {
          const types = claimableTypes();
          if (types.length === 0) break;
          const job = await store.claimNext({ workerId: id, leaseMs: config.leaseMs, types });
          if (job === null) break;
          if (stopping) {
            // Claimed while shutting down: give it straight back.
            await store.release(tokenOf(job)).catch(() => {});
            break;
          }
          begin(job);
        }
      } while (refill && !stopping);
    } catch (error) {
      log.error('claiming failed', { error: coerceError(error) });
    } finally {
      filling = false;
    }
  }

  /** Follows the change feed: new pending work wakes the worker, cancellations reach running jobs. */
  async function watchChanges(): Promise<void> {
    while (!watchController.signal.aborted) {
      try {
        for await (const event of follow((after, listener) => store.listen(after, listener), { signal: watchController.signal })) {
          if (event.entity === 'job') {
            if (event.status === 'PENDING' && (event.op === 'created' || event.op === 'updated')) void fill();
            const run = runs.get(event.id);
            if (run !== undefined && event.data?.cancelRequested === true) void abort(run, 'cancelled');
          } else if (event.entity === 'batch' && event.data?.active === true && event.op === 'updated') {
            void fill();
          }
        }
      } catch (error) {
        if (watchController.signal.aborted) return;
        // A failing feed must not stop the worker: the poll keeps it going until the feed is back.
        log.warn('change feed interrupted; resubscribing', { error: coerceError(error) });
        await new Promise((resolve) => setTimeout(resolve, config.pollMs).unref());
      }
    }
  }

  return {
    id,
    get active() {
      return slots;
    },
    start() {
      if (started) return;
      started = true;
      watchDone = watchChanges();
      // Not unref'd: a started worker keeps its process alive until stop(), even when idle.
      pollTimer = setInterval(() => void fill(), config.pollMs);
      log.info('worker started', { concurrency: config.concurrency, types: registry.types });
      void fill();
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      if (pollTimer !== null) clearInterval(pollTimer);
      watchController.abort();
      await watchDone;
      if (slots > 0) {
        log.info('waiting for running jobs', { running: slots, graceMs: config.shutdownGraceMs });
        await new Promise<void>((resolve) => {
          const done = () => {
            if (slots > 0) return;
            clearTimeout(timer);
            slotFreed.delete(done);
            resolve();
          };
          const timer = setTimeout(() => {
            slotFreed.delete(done);
            resolve();
          }, config.shutdownGraceMs);
          slotFreed.add(done);
        });
      }
      await Promise.all([...runs.values()].map((run) => abort(run, 'shutdown')));
      log.info('worker stopped');
    },
  };
}
