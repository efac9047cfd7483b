/**
 * The next state of a job or batch for each store operation, as pure functions.
 * Adapters load the current record inside their transaction, call one of these,
 * and persist the result together with `effectsOf()` (batch counts, change events,
 * outbox deliveries). Keeping the rules here means SQLite and MongoDB cannot drift.
 */
import { assertTransition, batchFinished, batchStatus, countKey, isTerminal } from '../domain/status.js';
import type { Batch, Job, JobError, JobStatus, JsonObject, Progress, Usage, WebhookEvent } from '../domain/types.js';
import { ConflictError, IllegalTransitionError, LeaseLostError, ValidationError } from '../errors.js';
import type { ClaimToken, FailRequest, JobPatch, NewLogEntry } from './port.js';
import { jobEventFor, trackOf, wantsEvent } from './prepare.js';

function next(job: Job, now: Date, patch: Partial<Job>): Job {
  if (patch.status !== undefined && patch.status !== job.status) assertTransition(job.id, job.status, patch.status);
  return { ...job, ...patch, version: job.version + 1, updatedAt: now };
}

const leaseCleared = { leaseOwner: null, leaseUntil: null } as const;

/** Refuses writes from a worker that no longer holds the job's lease. */
export function checkFence(job: Job | null, token: ClaimToken, now: Date): Job {
  if (
    job === null ||
    job.status !== 'PROCESSING' ||
    job.leaseToken !== token.leaseToken ||
    job.leaseOwner !== token.workerId ||
    job.leaseUntil === null ||
    job.leaseUntil.getTime() < now.getTime()
  ) {
    throw new LeaseLostError(token.jobId, token.leaseToken);
  }
  return job;
}

export function claimed(job: Job, workerId: string, leaseMs: number, now: Date): Job {
  return next(job, now, {
    status: 'PROCESSING',
    attempts: job.attempts + 1,
    leaseToken: job.leaseToken + 1,
    leaseOwner: workerId,
    leaseUntil: new Date(now.getTime() + leaseMs),
    workerId,
    startedAt: now,
    finishedAt: null,
  });
}

/** Two usage records added up (null when neither has any). */
export function addUsage(a: Usage | null, b: Usage | null | undefined): Usage | null {
  if (b === null || b === undefined) return a;
  if (a === null) return { ...b, models: [...b.models] };
  return {
    tokens: a.tokens + b.tokens,
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    costUsd: a.costUsd + b.costUsd,
    models: [...new Set([...a.models, ...b.models])],
  };
}

export function renewed(job: Job, leaseMs: number, now: Date): Job {
  return next(job, now, { leaseUntil: new Date(now.getTime() + leaseMs) });
}

export function withProgress(job: Job, progress: Omit<Progress, 'updatedAt'>, now: Date): Job {
  const percent = Math.max(0, Math.min(100, Number.isFinite(progress.percent) ? progress.percent : 0));
  return next(job, now, { progress: { percent, step: progress.step, message: progress.message, updatedAt: now } });
}

export function completed(job: Job, results: JsonObject | null, now: Date, usage?: Usage | null): Job {
  return next(job, now, {
    status: 'COMPLETED',
    results,
    usage: addUsage(job.usage, usage),
    error: null,
    cancelRequested: false,
    finishedAt: now,
    ...leaseCleared,
  });
}

/** Records the attempt's error and either schedules a retry or fails for good. */
export function failed(job: Job, failure: FailRequest, now: Date): Job {
  const error: JobError = {
    code: failure.code,
    message: failure.message,
    retriable: failure.retriable,
    attempt: job.attempts,
    at: now,
    workerId: job.leaseOwner ?? job.workerId,
    details: failure.details ?? null,
  };
  const errors = [...job.errors, error];
  const usage = addUsage(job.usage, failure.usage);
  if (willRetry(job, failure)) {
    return next(job, now, { status: 'PENDING', runAt: failure.retryAt as Date, error, errors, usage, ...leaseCleared });
  }
  return next(job, now, { status: 'FAILED', error, errors, usage, finishedAt: now, cancelRequested: false, ...leaseCleared });
}

/** Whether a failure of the job's current attempt leads to another attempt. */
export function willRetry(job: Job, failure: Pick<FailRequest, 'retriable' | 'retryAt'>): boolean {
  return failure.retriable && failure.retryAt !== null && job.attempts < job.maxAttempts && !job.cancelRequested;
}

export function cancelledNow(job: Job, now: Date, usage?: Usage | null): Job {
  return next(job, now, {
    status: 'CANCELLED',
    usage: addUsage(job.usage, usage),
    cancelRequested: false,
    finishedAt: now,
    ...leaseCleared,
  });
}

/** Graceful release: back to PENDING now, the interrupted attempt refunded. */
export function released(job: Job, now: Date): Job {
  return next(job, now, { status: 'PENDING', runAt: now, attempts: Math.max(0, job.attempts - 1), ...leaseCleared });
}

/** The line a job's log gets when the store takes a job back from a worker whose lease ran out. */
export function expiredLogLine(before: Job, after: Job): NewLogEntry {
  const who = `worker ${before.leaseOwner ?? 'unknown'}`;
  const attempt = `attempt ${before.attempts} of ${before.maxAttempts}`;
  if (after.status === 'CANCELLED') return { level: 'warn', message: `lease lost: ${who} stopped renewing (${attempt}); cancelled` };
  if (after.status === 'PENDING') {
    return { level: 'warn', message: `lease lost: ${who} stopped renewing (${attempt}); next attempt at ${after.runAt.toISOString()}` };
  }
  return { level: 'error', message: `lease lost: ${who} stopped renewing (${attempt}); no attempts left, failed` };
}

/** A lease ran out (the worker crashed or hung): the attempt counts. */
export function expired(job: Job, now: Date): Job {
  if (job.cancelRequested) return cancelledNow(job, now);
  return failed(
    job,
    {
      code: 'LEASE_EXPIRED',
      message: `worker ${job.leaseOwner ?? 'unknown'} stopped renewing its lease`,
      retriable: true,
      retryAt: now,
    },
    now,
  );
}

/** PENDING jobs are cancelled at once; running ones get `cancelRequested` for their worker. */
export function cancelRequestedFor(job: Job, now: Date): Job {
  if (job.status === 'PENDING') return cancelledNow(job, now);
  if (job.status === 'PROCESSING') return job.cancelRequested ? job : next(job, now, { cancelRequested: true });
  throw new IllegalTransitionError('job', job.id, job.status, 'CANCELLED');
}

export function restarted(job: Job, now: Date): Job {
  if (!isTerminal(job.status)) throw new IllegalTransitionError('job', job.id, job.status, 'PENDING');
  return next(job, now, {
    status: 'PENDING',
    runAt: now,
    attempts: 0,
    progress: null,
    results: null,
    error: null,
    cancelRequested: false,
    startedAt: null,
    finishedAt: null,
    ...leaseCleared,
  });
}

/** A waiting job changed by its owner (`updateJob`); only PENDING jobs can change. */
export function edited(job: Job, patch: JobPatch, now: Date): Job {
  if (job.status !== 'PENDING') {
    throw new ConflictError(`job ${job.id} is ${job.status}: only PENDING jobs can be changed`, { jobId: job.id, status: job.status });
  }
  const changes: Partial<Job> = {};
  if (patch.priority !== undefined) {
    if (!Number.isInteger(patch.priority) || Math.abs(patch.priority) > 1_000_000) {
      throw new ValidationError('priority: must be an integer between -1000000 and 1000000', { field: 'priority' });
    }
    changes.priority = patch.priority;
  }
  if (patch.runAt !== undefined) {
    if (!(patch.runAt instanceof Date) || Number.isNaN(patch.runAt.getTime())) {
      throw new ValidationError('runAt: must be a valid date', { field: 'runAt' });
    }
    changes.runAt = patch.runAt;
  }
  if (patch.maxAttempts !== undefined) {
    if (!Number.isInteger(patch.maxAttempts) || patch.maxAttempts > 1000 || patch.maxAttempts <= job.attempts) {
      throw new ValidationError(
        `maxAttempts: must be an integer from ${job.attempts + 1} to 1000 (the job used ${job.attempts} attempts)`,
        { field: 'maxAttempts' },
      );
    }
    changes.maxAttempts = patch.maxAttempts;
  }
  if (patch.parameters !== undefined) {
    changes.parameters = patch.parameters;
    changes.track = trackOf(patch.parameters);
    changes.cacheKey = patch.cacheKey ?? null;
    // Results cached for the old parameters do not fit the new ones.
    changes.cachedFrom = null;
  }
  return next(job, now, changes);
}

export function assertDeletable(job: Job): void {
  if (job.status === 'PROCESSING') {
    throw new ConflictError(`job ${job.id} is running: cancel it before deleting it`, { jobId: job.id });
  }
}

/** What persisting `before → after` implies besides the job row itself. */
export interface Effects {
  /** Move one job between batch counts (from, to), when the status changed inside a batch. */
  batchMove: ({ batchId: string } & BatchMove) | null;
  /** The webhook event to enqueue for the job, when it reached a terminal state it subscribes to. */
  jobEvent: WebhookEvent | null;
}

export function effectsOf(before: Job, after: Job): Effects {
  const moved = before.status !== after.status;
  const event = moved ? jobEventFor(after.status) : null;
  const tokens = (after.usage?.tokens ?? 0) - (before.usage?.tokens ?? 0);
  const costUsd = (after.usage?.costUsd ?? 0) - (before.usage?.costUsd ?? 0);
  const used = tokens === 0 && costUsd === 0 ? {} : { tokens, costUsd };
  return {
    batchMove: moved && after.batchId !== null ? { batchId: after.batchId, from: before.status, to: after.status, ...used } : null,
    jobEvent: event !== null && wantsEvent(after.webhook, event) ? event : null,
  };
}

/** One job moving between a batch's counts (null: added or removed), with the usage its write reported. */
export interface BatchMove {
  from: JobStatus | null;
  to: JobStatus | null;
  tokens?: number;
  costUsd?: number;
}

/** Applies count moves to a batch, and its summary; `finished` is true when this write made it finish. */
export function batchMoved(batch: Batch, moves: readonly BatchMove[], now: Date): { batch: Batch; finished: boolean } {
  const counts = { ...batch.counts };
  const summary = { ...batch.summary };
  for (const { from, to, tokens, costUsd } of moves) {
    if (from !== null) counts[countKey(from)] -= 1;
    else counts.total += 1;
    if (to !== null) counts[countKey(to)] += 1;
    else counts.total -= 1;
    if (to === 'PROCESSING' && summary.firstStartedAt === null) summary.firstStartedAt = now;
    if (to !== null && isTerminal(to)) summary.lastFinishedAt = now;
    summary.tokens += tokens ?? 0;
    summary.costUsd += costUsd ?? 0;
  }
  const wasFinished = batch.finishedAt !== null;
  const isFinished = counts.total > 0 && batchFinished(counts);
  return {
    batch: {
      ...batch,
      counts,
      summary,
      status: batchStatus(counts),
      finishedAt: isFinished ? (wasFinished ? batch.finishedAt : now) : null,
      version: batch.version + 1,
      updatedAt: now,
    },
    finished: isFinished && !wasFinished,
  };
}

export function batchPatched(batch: Batch, patch: Partial<Pick<Batch, 'active' | 'archived'>>, now: Date): Batch {
  return { ...batch, ...patch, version: batch.version + 1, updatedAt: now };
}
