/**
 * The next state of a job or batch for each store operation, as pure functions.
 * Adapters load the current record inside their transaction, call one of these,
 * and persist the result together with `effectsOf()` (batch counts, change events,
 * outbox deliveries). Keeping the rules here means SQLite and MongoDB cannot drift.
 */
import { assertTransition, batchFinished, batchStatus, countKey, isTerminal } from '../domain/status.js';
import type { Batch, Job, JobError, JobStatus, JsonObject, Progress, WebhookEvent } from '../domain/types.js';
import { ConflictError, IllegalTransitionError, LeaseLostError } from '../errors.js';
import type { ClaimToken, FailRequest } from './port.js';
import { jobEventFor, wantsEvent } from './prepare.js';

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
    startedAt: now,
    finishedAt: null,
  });
}

export function renewed(job: Job, leaseMs: number, now: Date): Job {
  return next(job, now, { leaseUntil: new Date(now.getTime() + leaseMs) });
}

export function withProgress(job: Job, progress: Omit<Progress, 'updatedAt'>, now: Date): Job {
  const percent = Math.max(0, Math.min(100, Number.isFinite(progress.percent) ? progress.percent : 0));
  return next(job, now, { progress: { percent, step: progress.step, message: progress.message, updatedAt: now } });
}

export function completed(job: Job, results: JsonObject | null, now: Date): Job {
  return next(job, now, {
    status: 'COMPLETED',
    results,
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
  };
  const errors = [...job.errors, error];
  const retry = failure.retriable && failure.retryAt !== null && job.attempts < job.maxAttempts && !job.cancelRequested;
  if (retry) {
    return next(job, now, { status: 'PENDING', runAt: failure.retryAt as Date, error, errors, ...leaseCleared });
  }
  return next(job, now, { status: 'FAILED', error, errors, finishedAt: now, cancelRequested: false, ...leaseCleared });
}

export function cancelledNow(job: Job, now: Date): Job {
  return next(job, now, { status: 'CANCELLED', cancelRequested: false, finishedAt: now, ...leaseCleared });
}

/** Graceful release: back to PENDING now, the interrupted attempt refunded. */
export function released(job: Job, now: Date): Job {
  return next(job, now, { status: 'PENDING', runAt: now, attempts: Math.max(0, job.attempts - 1), ...leaseCleared });
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

export function assertDeletable(job: Job): void {
  if (job.status === 'PROCESSING') {
    throw new ConflictError(`job ${job.id} is running: cancel it before deleting it`, { jobId: job.id });
  }
}

/** What persisting `before → after` implies besides the job row itself. */
export interface Effects {
  /** Move one job between batch counts (from, to), when the status changed inside a batch. */
  batchMove: { batchId: string; from: JobStatus; to: JobStatus } | null;
  /** The webhook event to enqueue for the job, when it reached a terminal state it subscribes to. */
  jobEvent: WebhookEvent | null;
}

export function effectsOf(before: Job, after: Job): Effects {
  const moved = before.status !== after.status;
  const event = moved ? jobEventFor(after.status) : null;
  return {
    batchMove: moved && after.batchId !== null ? { batchId: after.batchId, from: before.status, to: after.status } : null,
    jobEvent: event !== null && wantsEvent(after.webhook, event) ? event : null,
  };
}

/** Applies count moves to a batch; `finished` is true when this write made it finish. */
export function batchMoved(
  batch: Batch,
  moves: readonly { from: JobStatus | null; to: JobStatus | null }[],
  now: Date,
): { batch: Batch; finished: boolean } {
  const counts = { ...batch.counts };
  for (const { from, to } of moves) {
    if (from !== null) counts[countKey(from)] -= 1;
    else counts.total += 1;
    if (to !== null) counts[countKey(to)] += 1;
    else counts.total -= 1;
  }
  const wasFinished = batch.finishedAt !== null;
  const isFinished = counts.total > 0 && batchFinished(counts);
  return {
    batch: {
      ...batch,
      counts,
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
