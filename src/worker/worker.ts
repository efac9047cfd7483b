/**
 * The worker: claims jobs from the store and runs their handlers with a global
 * concurrency limit and per-type limits. It wakes at once on the store's change feed
 * (a slow poll remains for delayed jobs and as a fallback), renews its running jobs'
 * leases, retries failures with backoff, aborts handlers on cancel, timeout or lease
 * loss, and on shutdown lets running jobs finish within a grace period before releasing
 * the rest to other workers.
 *
 * Store calls are batched: free slots are filled by one claim of as many jobs; outcomes,
 * progress and log lines of one event-loop turn are one group commit, which also claims
 * the jobs for the slots it frees (`group-commit.ts`); one timer renews every running
 * job's lease in one call (`lease-timer.ts`). Every write is fenced with its claim's
 * token, each on its own, so a worker that lost a job (lease expired, job cancelled) can
 * never overwrite what happened since.
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
import type { ChangeListener, Listening } from '../store/change-stream.js';
import type { ChangeInterest } from '../store/interest.js';
import type {
  AttemptReport,
  ChangeEvent,
  ChangeFeed,
  ClaimRequest,
  ClaimToken,
  JobsPort,
  NewLogEntry,
  QueuePort,
  QueueWrite,
} from '../store/port.js';
import { retryDelay } from './backoff.js';
import { GroupCommit } from './group-commit.js';
import { LeaseTimer } from './lease-timer.js';

export type WorkerConfig = ResolvedConfig['worker'];

/**
 * Writes per group commit at most. More in one turn (handlers that woke together) go in
 * consecutive transactions: the first group's freed slots start their next jobs while
 * the rest wait a turn, instead of every slot waiting for one long transaction (20 ms
 * handlers at concurrency 200: 0.80 → 0.84 of their ideal rate). A worker at
 * concurrency ≤ 64 commits each turn in one transaction as before.
 */
export const GROUP_WRITES = 64;

/**
 * What a worker reads of the change feed (the listener below acts on nothing else): new
 * or returned pending jobs, cancel requests, and batches switched back on. In a
 * worker-only process on SQLite the feed's poll reads only these rows.
 */
export const WORKER_INTEREST: ChangeInterest = [
  { entity: 'job', ops: ['created', 'updated'], statuses: ['PENDING'] },
  { entity: 'job', flag: 'cancelRequested' },
  { entity: 'batch', ops: ['updated'], flag: 'resumed' },
];

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
  /** Store calls so far: group commits and lease renewals (tests and benchmarks). */
  readonly calls: { groups: number; renewals: number };
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
  /** Made when the handler first reads its signal, or when the run is aborted (most runs need none). */
  controller: AbortController | null;
  /** The store holds this run's outcome already (set once; later writes are skipped). */
  decided: boolean;
  /** The slot is free again (handler settled, or abandoned after an abort). */
  freed: boolean;
  /** The handler has returned or thrown: its slot can pass to a job claimed with its outcome. */
  returned: boolean;
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
  /** The last fill started (see `fill`; it never rejects). */
  let filled: Promise<void> = Promise.resolve();
  let pollTimer: NodeJS.Timeout | null = null;
  let listening: Listening | null = null;
  let relisten: NodeJS.Timeout | null = null;
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

  /**
   * Runs a store write of this run; `settles` marks the writes that end an attempt. A lost
   * lease is expected (someone else decided), anything else is logged.
   */
  async function guarded(run: Run, what: string, write: () => Promise<Job | undefined>, settles = false): Promise<void> {
    try {
      const job = await write();
      // The job as last written: a completion can then skip reading it back (`expected`).
      if (job !== undefined && job.id === run.job.id && job.version > run.job.version) run.job = job;
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
      // Both queued for the next group commit, lines first (a group at its size limit may leave the second for the one after).
      const writes: Promise<void>[] = [];
      if (logs.length > 0) writes.push(guarded(run, 'writing logs', () => group.write({ kind: 'logs', token: run.token, entries: logs })));
      if (progress !== null) {
        run.lastProgressAt = Date.now();
        const value = { percent: progress.percent, step: progress.step ?? null, message: progress.message ?? null };
        writes.push(guarded(run, 'writing progress', () => group.write({ kind: 'progress', token: run.token, progress: value })));
      }
      await Promise.all(writes);
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

  function controllerOf(run: Run): AbortController {
    run.controller ??= new AbortController();
    return run.controller;
  }

  /** Aborts a run and records the outcome the abort implies, once. */
  function abort(run: Run, kind: AbortReason['kind']): Promise<void> {
    if (run.decided || run.controller?.signal.aborted === true) return Promise.resolve();
    controllerOf(run).abort(new AbortReason(kind));
    run.decided = true;
    // A handler that ignores its signal keeps the slot only this long.
    run.timers.push(setTimeout(() => freeSlot(run), config.abandonGraceMs));
    const job = run.job;
    switch (kind) {
      case 'cancelled': {
        log.info('job cancelled', { jobId: job.id });
        const done = report(run, 'warn', `cancelled (attempt ${job.attempts} of ${job.maxAttempts})`);
        return flush(run).then(() =>
          guarded(run, 'recording cancellation', () => group.write({ kind: 'cancelled', token: run.token, report: done }), true),
        );
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
          guarded(
            run,
            'recording timeout',
            () => group.write({ kind: 'fail', token: run.token, failure: { ...failure, retryAt, ...done } }),
            true,
          ),
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
      controller: null,
      decided: false,
      freed: false,
      returned: false,
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
    leases.start();
    run.pendingLogs.push({ level: 'info', message: `claimed by worker ${id} (attempt ${job.attempts} of ${job.maxAttempts})` });
    // The job's logger is made on first use: a job that logs nothing costs no child logger.
    let childLog: Logger | null = null;
    const jobLog = (): Logger =>
      (childLog ??= log.child({
        jobId: job.id,
        type: job.type,
        attempt: job.attempts,
        ...(job.batchId === null ? {} : { batchId: job.batchId }),
      }));
    try {
      if (definition === undefined) {
        // Claims only ask for registered types; this guards against a registry change mid-flight.
        const failure = { code: 'UNKNOWN_JOB_TYPE', message: `no handler for ${job.type}`, retriable: true };
        const retryAt = new Date(Date.now() + config.pollMs);
        const done = report(run, 'error', failureLine(job, failure, retryAt));
        await guarded(
          run,
          'failing unknown type',
          () => group.write({ kind: 'fail', token: run.token, failure: { ...failure, retryAt, ...done } }),
          true,
        );
        return;
      }
      // The claim line shows up within a progress interval, not only with the outcome.
      run.lastProgressAt = Date.now();
      scheduleFlush(run);
      const { timeoutMs } = settingsOf(job.type);
      if (timeoutMs > 0) run.timers.push(setTimeout(() => void abort(run, 'timeout'), timeoutMs));
      if (job.cancelRequested) void abort(run, 'cancelled');

      const context: HandlerContext = {
        job,
        attempt: job.attempts,
        get signal() {
          return controllerOf(run).signal;
        },
        get logger() {
          return jobLog();
        },
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
        // Only a job submitted with the result cache has anything to reuse (no await otherwise).
        const cached = job.cachedFrom === null ? null : await reuse(job, context);
        if (cached !== null) outcome = { ok: true, value: cached };
        else {
          run.files = [];
          const parameters = definition.parameters.parse(job.parameters);
          outcome = { ok: true, value: await definition.run(parameters, context) };
        }
      } catch (error) {
        outcome = { ok: false, error };
      }
      run.returned = true;
      if (run.decided) return;
      run.decided = true;
      if (outcome.ok) {
        const done = report(run, 'info', `completed in ${Math.round(performance.now() - run.began)} ms`);
        await flush(run);
        const value = outcome.value ?? {};
        const files = run.files.map((f) => ({ ...f }));
        const results = files.length > 0 ? { ...value, files } : value;
        await guarded(
          run,
          'completing',
          () => group.write({ kind: 'complete', token: run.token, results, report: done, expected: run.job }),
          true,
        );
        log.debug('job completed', { jobId: job.id });
      } else {
        const failure = failureOf(outcome.error);
        const retryAt = failure.retriable ? new Date(Date.now() + retryDelay(job.attempts, config.backoff, random)) : null;
        const done = report(run, 'error', failureLine(job, failure, retryAt));
        await flush(run);
        jobLog().info('job failed', { code: failure.code, error: failure.message, retryAt: retryAt?.toISOString() ?? null });
        await guarded(
          run,
          'recording failure',
          () => group.write({ kind: 'fail', token: run.token, failure: { ...failure, retryAt, ...done } }),
          true,
        );
      }
    } finally {
      for (const timer of run.timers) clearTimeout(timer);
      if (run.flushTimer !== null) clearTimeout(run.flushTimer);
      runs.delete(job.id);
      if (runs.size === 0) leases.stop();
      freeSlot(run);
    }
  }

  /**
   * What this worker may claim now: the types with a free slot under their limit, and each
   * limited type's free slots (`caps`). `leaving` are jobs about to give their slots back.
   */
  function claimRequest(leaving: readonly Job[] = []): ClaimRequest | null {
    const types: string[] = [];
    const caps: Record<string, number> = {};
    for (const type of registry.types) {
      const limit = settingsOf(type).concurrency;
      const active = (perTypeActive.get(type) ?? 0) - leaving.filter((job) => job.type === type).length;
      if (active >= limit) continue;
      types.push(type);
      if (Number.isFinite(limit)) caps[type] = limit - active;
    }
    return types.length === 0 ? null : { workerId: id, leaseMs: config.leaseMs, types, caps };
  }

  function begin(job: Job): void {
    options.observer?.claimed(job);
    slots++;
    perTypeActive.set(job.type, (perTypeActive.get(job.type) ?? 0) + 1);
    void execute(job).catch((error: unknown) => log.error('job run crashed', { jobId: job.id, error: coerceError(error) }));
  }

  /** Writes that end an attempt: their runs give their slots back once written. */
  const settles = (write: QueueWrite) => write.kind === 'complete' || write.kind === 'fail' || write.kind === 'cancelled';

  /**
   * The group commit. A group that ends attempts also claims, in the same transaction, jobs
   * for the slots those runs free (one commit per group instead of two per job on a busy
   * worker); one claim at a time per worker, so per-type limits hold exactly.
   */
  const group = new GroupCommit(
    store,
    {
      request(writes) {
        if (stopping) return null;
        const leaving = writes
          .filter(settles)
          .map((write) => runs.get(write.token.jobId))
          // Only runs whose handler has returned: an aborted handler may still hold its slot.
          .filter((run): run is Run => run?.returned === true && !run.freed)
          .map((run) => run.job);
        if (leaving.length === 0) return null;
        if (filling) {
          refill = true;
          return null;
        }
        const free = config.concurrency - slots + leaving.length;
        const request = free > 0 ? claimRequest(leaving) : null;
        if (request === null) return null;
        filling = true;
        return { request, limit: free };
      },
      claimed(jobs, requested) {
        // The finishing handlers have returned: their slots pass to these jobs as their runs end.
        for (const job of jobs) begin(job);
        if (!requested) return;
        filling = false;
        if (refill && !stopping) void fill();
      },
    },
    GROUP_WRITES,
  );

  const leases = new LeaseTimer(
    store,
    {
      tokens: () => [...runs.values()].filter((run) => !run.decided).map((run) => run.token),
      renewed(token, lease) {
        const run = runs.get(token.jobId);
        if (run !== undefined && run.token === token && lease.cancelRequested) void abort(run, 'cancelled');
      },
      lost(token) {
        const run = runs.get(token.jobId);
        if (run !== undefined && run.token === token) void abort(run, 'lease-lost');
      },
      failed(error) {
        log.warn('lease renewal failed', { error });
      },
    },
    { heartbeatMs: config.heartbeatMs, leaseMs: config.leaseMs },
  );

  /**
   * Starts filling free slots unless a fill is under way (then that one goes round again).
   * The last fill is kept so that `stop()` can wait for it: a claim it has started may
   * still commit, and its jobs are to be given back before the store closes.
   */
  function fill(): Promise<void> {
    if (filling) {
      refill = true;
      return Promise.resolve();
    }
    filled = fillSlots();
    return filled;
  }

  /** Fills free slots: one claim of as many jobs as there are free slots, again while that takes them all. */
  async function fillSlots(): Promise<void> {
    filling = true;
    try {
      do {
        refill = false;
        while (!stopping && slots < config.concurrency) {
          const request = claimRequest();
          if (request === null) break;
          const free = config.concurrency - slots;
          const jobs = await store.claim(request, free);
          if (stopping) {
            // Claimed while shutting down: give them straight back.
            await Promise.all(jobs.map((job) => store.release(tokenOf(job)).catch(() => {})));
            break;
          }
          for (const job of jobs) begin(job);
          if (jobs.length < free) break;
        }
      } while (refill && !stopping);
    } catch (error) {
      log.error('claiming failed', { error: coerceError(error) });
    } finally {
      filling = false;
    }
  }

  /** Follows the change feed: new pending work wakes the worker, cancellations reach running jobs. */
  const listener: ChangeListener = {
    interest: WORKER_INTEREST,
    event(event: ChangeEvent) {
      if (event.entity === 'job') {
        if (event.status === 'PENDING' && (event.op === 'created' || event.op === 'updated')) void fill();
        if (event.data?.cancelRequested === true) {
          const run = runs.get(event.id);
          if (run !== undefined) void abort(run, 'cancelled');
        }
      } else if (event.entity === 'batch' && event.data?.resumed === true && event.op === 'updated') {
        void fill();
      }
    },
    error(error: Error) {
      listening = null;
      if (stopping) return;
      // A failing feed must not stop the worker: the poll keeps it going until the feed is back.
      log.warn('change feed interrupted; resubscribing', { error: coerceError(error) });
      relisten = setTimeout(() => {
        relisten = null;
        if (!stopping) listening = store.listen(undefined, listener);
      }, config.pollMs);
      relisten.unref();
    },
  };

  return {
    id,
    get active() {
      return slots;
    },
    get calls() {
      return { groups: group.groups, renewals: leases.renewals };
    },
    start() {
      if (started) return;
      started = true;
      listening = store.listen(undefined, listener);
      // Not unref'd: a started worker keeps its process alive until stop(), even when idle.
      pollTimer = setInterval(() => void fill(), config.pollMs);
      log.info('worker started', { concurrency: config.concurrency, types: registry.types });
      void fill();
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      if (pollTimer !== null) clearInterval(pollTimer);
      if (relisten !== null) clearTimeout(relisten);
      listening?.stop();
      listening = null;
      // A claim under way may still commit: its jobs start or are given back before we go on.
      await filled;
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
      // Released or abandoned: nothing of this worker's runs is to be renewed any more.
      leases.stop();
      log.info('worker stopped');
    },
  };
}
