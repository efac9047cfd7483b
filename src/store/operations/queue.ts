/**
 * The worker's side of the queue: claims, lease renewal, progress, logs and outcomes,
 * each fenced by the claim token (`transitions.checkFence`), and the recovery of
 * expired leases. The claim is the engine's (`Tx.claim`); so may the completion be
 * (`Tx.completeFenced`): both return what the general transition makes, and the
 * effects are written here either way.
 *
 * Writes about running jobs are written as a group (`commitWrites`): one unit of work
 * for any number of them, each fenced on its own; the single-write operations are groups
 * of one.
 */
import type { Job, JsonObject, Progress } from '../../domain/types.js';
import { LeaseLostError } from '../../errors.js';
import type { Op, Tx } from '../engine.js';
import type { AttemptReport, ClaimRequest, ClaimToken, FailRequest, Lease, NewLogEntry, QueueWrite, WritesCommitted } from '../port.js';
import * as T from '../transitions.js';
import { commitJob, commitJobs, type JobWrite } from './commit.js';

/** The claim filters of one statement: `request`'s, less the types whose cap is used up. */
function claimFilters(request: ClaimRequest, full: readonly string[]): Pick<ClaimRequest, 'types' | 'excludeTypes'> {
  const filters: Pick<ClaimRequest, 'types' | 'excludeTypes'> = {};
  if (request.types !== undefined) filters.types = request.types.filter((type) => !full.includes(type));
  const exclude = request.types === undefined ? [...(request.excludeTypes ?? []), ...full] : request.excludeTypes;
  if (exclude !== undefined && exclude.length > 0) filters.excludeTypes = exclude;
  return filters;
}

/**
 * Claims up to `limit` jobs in the claim order: the engine marks them (`Tx.claim`), their
 * change events and batch counts follow. With `caps`, a statement claims no more jobs than
 * the smallest cap left among the types it may take, and a type whose cap is used up is
 * left out of the next statement: the result is exactly what claiming one job at a time
 * would give, in one statement when no cap is near.
 */
export function* claim(tx: Tx, request: ClaimRequest, limit: number): Op<Job[]> {
  const now = request.now ?? tx.now;
  // Without caps, one statement (the engine reads only the type filters).
  const claimed = request.caps === undefined ? yield* tx.claim(request, now, limit) : yield* claimCapped(tx, request, now, limit);
  yield* commitJobs(
    tx,
    claimed.map((after) => ({ before: { ...after, status: 'PENDING' }, after, saved: true })),
  );
  return claimed;
}

/** Claims statement by statement so that no type exceeds its cap (see `claim`). */
function* claimCapped(tx: Tx, request: ClaimRequest, now: Date, limit: number): Op<Job[]> {
  const left = new Map(Object.entries(request.caps ?? {}));
  const { types: _t, excludeTypes: _e, caps: _c, ...rest } = request;
  const claimed: Job[] = [];
  while (claimed.length < limit) {
    const full = [...left].filter(([, n]) => n <= 0).map(([type]) => type);
    const filters = claimFilters(request, full);
    if (filters.types !== undefined && filters.types.length === 0) break;
    let size = limit - claimed.length;
    for (const [type, n] of left) {
      const claimable = n > 0 && (filters.types === undefined || filters.types.includes(type));
      if (claimable && filters.excludeTypes?.includes(type) !== true) size = Math.min(size, n);
    }
    const jobs = yield* tx.claim({ ...rest, ...filters }, now, size);
    for (const job of jobs) {
      claimed.push(job);
      const n = left.get(job.type);
      if (n !== undefined) left.set(job.type, n - 1);
    }
    if (jobs.length < size) break;
  }
  return claimed;
}

/** The job of a claim, refusing a stale token with `LEASE_LOST`. */
export function* fenced(tx: Tx, token: ClaimToken, now: Date = tx.now): Op<Job> {
  return T.checkFence(yield* tx.getJob(token.jobId), token, now);
}

export function* renewLease(tx: Tx, token: ClaimToken, leaseMs: number): Op<Lease> {
  const [lease] = yield* renewLeases(tx, [token], leaseMs);
  if (lease instanceof LeaseLostError) throw lease;
  return lease as Lease;
}

/**
 * Renews several leases: one read, each token checked on its own, then one statement that
 * extends the leases still held. A renewal is not news to subscribers: no change event.
 */
export function* renewLeases(tx: Tx, tokens: readonly ClaimToken[], leaseMs: number): Op<(Lease | LeaseLostError)[]> {
  const now = tx.now;
  const jobs = yield* tx.loadJobs(tokens.map((token) => token.jobId));
  const leaseUntil = new Date(now.getTime() + leaseMs);
  const held: string[] = [];
  const leases = tokens.map((token, i): Lease | LeaseLostError => {
    try {
      const job = T.checkFence(jobs[i] ?? null, token, now);
      held.push(job.id);
      return { leaseUntil, cancelRequested: job.cancelRequested };
    } catch (error) {
      if (error instanceof LeaseLostError) return error;
      throw error;
    }
  });
  if (held.length > 0) yield* tx.extendLeases(held, leaseUntil, now);
  return leases;
}

/** The new state and log lines one write makes of its (fenced) job. */
function written(write: QueueWrite, job: Job, now: Date): Pick<JobWrite, 'after' | 'logs'> {
  switch (write.kind) {
    case 'complete':
      return { after: T.completed(job, write.results, now, write.report?.usage), logs: write.report?.logs };
    case 'fail':
      return { after: T.failed(job, write.failure, now), logs: write.failure.logs };
    case 'cancelled':
      return { after: T.cancelledNow(job, now, write.report?.usage), logs: write.report?.logs };
    case 'progress':
      return { after: T.withProgress(job, write.progress, now) };
    case 'logs':
      return { after: null, logs: write.entries };
  }
}

/**
 * Group commit: every write in order, each fenced on its own against the job as the
 * writes before it in the group left it (a stale token gets its `LeaseLostError` in its
 * place, and nothing of it is written); then all their effects in one pass
 * (`commitJobs`: one call per kind of record); then, with `next`, the claim of up to
 * `next.limit` jobs. One job read for all writes; a completion that is its job's only
 * write may take the engine's one-statement completion (`fast`), which writes the same.
 */
export function* commitWrites(
  tx: Tx,
  writes: readonly QueueWrite[],
  next: { request: ClaimRequest; limit: number } | null,
  fast: boolean,
): Op<WritesCommitted> {
  const now = next?.request.now ?? tx.now;
  const perJob = new Map<string, number>();
  for (const write of writes) perJob.set(write.token.jobId, (perJob.get(write.token.jobId) ?? 0) + 1);
  const completeFenced = fast ? tx.completeFenced?.bind(tx) : undefined;
  const completeExpected = fast ? tx.completeExpected?.bind(tx) : undefined;
  const alone = (write: QueueWrite): write is Extract<QueueWrite, { kind: 'complete' }> =>
    completeFenced !== undefined && write.kind === 'complete' && write.report?.usage == null && perJob.get(write.token.jobId) === 1;
  const ids = [...new Set(writes.filter((write) => !alone(write)).map((write) => write.token.jobId))];
  const current = new Map<string, Job | null>();
  if (ids.length > 0) {
    const jobs = yield* tx.loadJobs(ids);
    ids.forEach((id, i) => {
      current.set(id, jobs[i] ?? null);
    });
  }
  const results: (Job | Error)[] = [];
  const changes: JobWrite[] = [];
  for (const write of writes) {
    const { token } = write;
    if (alone(write) && completeFenced !== undefined) {
      // The job as the writer saw it, when it is still stored so: nothing to read back.
      const seen = write.expected;
      const unchanged = seen !== undefined && completeExpected !== undefined && (yield* completeExpected(seen, token, write.results, now));
      const after = unchanged ? T.completed(seen, write.results, now) : yield* completeFenced(token, write.results, now);
      if (after === null) {
        results.push(new LeaseLostError(token.jobId, token.leaseToken));
        continue;
      }
      const before: Job = unchanged ? seen : { ...after, status: 'PROCESSING', version: after.version - 1 };
      changes.push({ before, after, logs: write.report?.logs, saved: true });
      results.push(after);
      continue;
    }
    let before: Job;
    try {
      before = T.checkFence(current.get(token.jobId) ?? null, token, now);
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
      results.push(error);
      continue;
    }
    const change = written(write, before, now);
    changes.push({ before, ...change });
    if (change.after !== null) current.set(token.jobId, change.after);
    results.push(change.after ?? before);
  }
  yield* commitJobs(tx, changes);
  const claimed = next !== null && next.limit > 0 ? yield* claim(tx, { ...next.request, now }, next.limit) : [];
  return { written: results, claimed };
}

/** One write as a group of one; a stale token throws its `LeaseLostError`. */
export function* commitWrite(tx: Tx, write: QueueWrite, fast: boolean): Op<Job> {
  const {
    written: [result],
  } = yield* commitWrites(tx, [write], null, fast);
  if (result instanceof Error) throw result;
  return result as Job;
}

export function* updateProgress(tx: Tx, token: ClaimToken, progress: Omit<Progress, 'updatedAt'>): Op<void> {
  yield* commitWrite(tx, { kind: 'progress', token, progress }, false);
}

export function* appendLogs(tx: Tx, token: ClaimToken, entries: NewLogEntry[]): Op<void> {
  yield* commitWrite(tx, { kind: 'logs', token, entries }, false);
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
): Op<Job> {
  return yield* commitWrite(tx, { kind: 'complete', token, results, report }, fast);
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
  const { written, claimed } = yield* commitWrites(tx, [{ kind: 'complete', token, results, report }], { request, limit: 1 }, fast);
  const [completed] = written;
  if (completed instanceof Error) throw completed;
  return { completed: completed as Job, next: claimed[0] ?? null };
}

export function* fail(tx: Tx, token: ClaimToken, failure: FailRequest): Op<Job> {
  return yield* commitWrite(tx, { kind: 'fail', token, failure }, false);
}

export function* markCancelled(tx: Tx, token: ClaimToken, report?: AttemptReport): Op<Job> {
  return yield* commitWrite(tx, { kind: 'cancelled', token, report }, false);
}

/** Gives a running job back (graceful shutdown): PENDING now, the attempt refunded. */
export function* release(tx: Tx, token: ClaimToken): Op<Job> {
  const before = yield* fenced(tx, token);
  const after = T.released(before, tx.now);
  yield* commitJob(tx, before, after);
  return after;
}

/** Takes back up to `limit` jobs whose lease ended before `now`; returns how many. */
export function* recoverExpiredLeases(tx: Tx, now: Date, limit: number): Op<number> {
  const expired = yield* tx.expiredLeases(now, limit);
  yield* commitJobs(
    tx,
    expired.map((before) => {
      const after = T.expired(before, now);
      return { before, after, logs: [T.expiredLogLine(before, after)] };
    }),
  );
  return expired.length;
}
