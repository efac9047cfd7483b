/**
 * The worker's side of the queue: claim, lease renewal, progress, logs and outcomes,
 * each fenced by the claim token (`transitions.checkFence`), and the recovery of
 * expired leases. The claim is the engine's (`Tx.claim`); so may the completion be
 * (`Tx.completeFenced`): both return what the general transition makes, and the
 * effects are written here either way.
 */
import type { Job, JsonObject, Progress } from '../../domain/types.js';
import { LeaseLostError } from '../../errors.js';
import type { Op, Tx } from '../engine.js';
import type { AttemptReport, ClaimRequest, ClaimToken, FailRequest, Lease, NewLogEntry } from '../port.js';
import * as T from '../transitions.js';
import { byBatch, commitJob, jobWritten, moveInBatch, writeLogs } from './commit.js';

/** Claims up to `limit` jobs: the engine marks them, their changes and batch counts follow. */
export function* claim(tx: Tx, request: ClaimRequest, limit: number): Op<Job[]> {
  const now = request.now ?? tx.now;
  const jobs = yield* tx.claim(request, now, limit);
  const moves: ({ batchId: string } & T.BatchMove)[] = [];
  for (const after of jobs) {
    const effects = yield* jobWritten(tx, { ...after, status: 'PENDING' }, after, false);
    if (effects.batchMove !== null) moves.push(effects.batchMove);
  }
  for (const [batchId, batchMoves] of byBatch(moves)) yield* moveInBatch(tx, batchId, batchMoves, { hot: true });
  return jobs;
}

/** The job of a claim, refusing a stale token with `LEASE_LOST`. */
export function* fenced(tx: Tx, token: ClaimToken, now: Date = tx.now): Op<Job> {
  return T.checkFence(yield* tx.getJob(token.jobId), token, now);
}

export function* renewLease(tx: Tx, token: ClaimToken, leaseMs: number): Op<Lease> {
  const before = yield* fenced(tx, token);
  const after = T.renewed(before, leaseMs, tx.now);
  // A renewal is not news to subscribers: no change event.
  yield* tx.saveJob(before, after);
  return { leaseUntil: after.leaseUntil as Date, cancelRequested: after.cancelRequested };
}

export function* updateProgress(tx: Tx, token: ClaimToken, progress: Omit<Progress, 'updatedAt'>): Op<void> {
  const before = yield* fenced(tx, token);
  yield* commitJob(tx, before, T.withProgress(before, progress, tx.now));
}

export function* appendLogs(tx: Tx, token: ClaimToken, entries: readonly NewLogEntry[]): Op<void> {
  yield* writeLogs(tx, yield* fenced(tx, token), entries);
}

/** A fenced transition: the attempt's log lines, then the new state with its effects. */
export function* fencedTransition(
  tx: Tx,
  token: ClaimToken,
  step: (job: Job, now: Date) => Job,
  logs?: readonly NewLogEntry[],
  now: Date = tx.now,
): Op<Job> {
  const before = yield* fenced(tx, token, now);
  yield* writeLogs(tx, before, logs);
  const after = step(before, now);
  yield* commitJob(tx, before, after);
  return after;
}

/**
 * Completes a claimed job. Without usage to add, an engine's one-statement completion
 * is used when it has one (`fast`); the result is the same as the general path's.
 */
export function* complete(
  tx: Tx,
  token: ClaimToken,
  results: JsonObject | null,
  report: AttemptReport | undefined,
  fast: boolean,
  now: Date = tx.now,
): Op<Job> {
  if (fast && report?.usage == null && tx.completeFenced !== undefined) {
    const after = yield* tx.completeFenced(token, results, now);
    if (after === null) throw new LeaseLostError(token.jobId, token.leaseToken);
    const before: Job = { ...after, status: 'PROCESSING', version: after.version - 1 };
    // The lines belong before the completion in the feed, as the general path writes them.
    yield* writeLogs(tx, before, report?.logs);
    yield* jobWritten(tx, before, after);
    return after;
  }
  return yield* fencedTransition(tx, token, (job, at) => T.completed(job, results, at, report?.usage), report?.logs, now);
}

/** Completes a job and claims the worker's next one in the same unit of work. */
export function* completeAndClaim(
  tx: Tx,
  token: ClaimToken,
  results: JsonObject | null,
  request: ClaimRequest,
  report: AttemptReport | undefined,
  fast: boolean,
): Op<{ completed: Job; next: Job | null }> {
  const now = request.now ?? tx.now;
  const completed = yield* complete(tx, token, results, report, fast, now);
  const [next] = yield* claim(tx, { ...request, now }, 1);
  return { completed, next: next ?? null };
}

export function* fail(tx: Tx, token: ClaimToken, failure: FailRequest): Op<Job> {
  return yield* fencedTransition(tx, token, (job, now) => T.failed(job, failure, now), failure.logs);
}

export function* markCancelled(tx: Tx, token: ClaimToken, report?: AttemptReport): Op<Job> {
  return yield* fencedTransition(tx, token, (job, now) => T.cancelledNow(job, now, report?.usage), report?.logs);
}

export function* release(tx: Tx, token: ClaimToken): Op<Job> {
  return yield* fencedTransition(tx, token, (job, now) => T.released(job, now));
}

/** Takes back up to `limit` jobs whose lease ended before `now`; returns how many. */
export function* recoverExpiredLeases(tx: Tx, now: Date, limit: number): Op<number> {
  const expired = yield* tx.expiredLeases(now, limit);
  for (const before of expired) {
    const after = T.expired(before, now);
    yield* writeLogs(tx, before, [T.expiredLogLine(before, after)]);
    yield* commitJob(tx, before, after);
  }
  return expired.length;
}
