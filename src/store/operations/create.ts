/**
 * Creating jobs and batches. Inputs are validated and built before the unit of work
 * (`prepare.ts`); inside it, idempotency keys are looked up (per owner: the same key and
 * payload return the earlier record, another payload is `CONFLICT`), then the new
 * records and their `created` changes are written.
 */
import type { Batch, Job } from '../../domain/types.js';
import { ConflictError } from '../../errors.js';
import type { Op, Tx } from '../engine.js';
import type { Created } from '../port.js';
import { jobChangeData, type PreparedBatch, type PreparedJob } from '../prepare.js';
import { batchChange, jobChange } from './commit.js';

function keyConflict(key: string, index?: number): ConflictError {
  const where = index === undefined ? '' : `jobs[${index}]: `;
  return new ConflictError(`${where}idempotency key "${key}" was used with another payload`, {
    ...(index === undefined ? {} : { index }),
    idempotencyKey: key,
  });
}

/** Writes new jobs (already validated) and their `created` changes, in one unit of work. */
function* insertJobs(tx: Tx, jobs: readonly Job[], paused: boolean, fingerprints: readonly (string | null)[]): Op<void> {
  const first = jobs[0];
  if (first === undefined) return;
  yield* tx.insertJobs(jobs, paused, fingerprints);
  // Every new job has the same summary: one object, which engines may encode once.
  const data = jobChangeData(first);
  yield* tx.insertChanges(jobs.map((job) => jobChange(job, 'created', tx.now, data)));
}

/** Creates jobs atomically; a key repeated in one call counts as one submit. */
export function* createJobs(tx: Tx, prepared: readonly PreparedJob[]): Op<Created<Job>[]> {
  const fresh: Job[] = [];
  const fingerprints: (string | null)[] = [];
  const inCall = new Map<string, PreparedJob>();
  const out: Created<Job>[] = [];
  for (const [index, entry] of prepared.entries()) {
    const { job, fingerprint } = entry;
    if (job.idempotencyKey !== null) {
      const key = `${job.ownerId}\u0000${job.idempotencyKey}`;
      const earlier = inCall.get(key);
      if (earlier !== undefined) {
        if (earlier.fingerprint !== fingerprint) throw keyConflict(job.idempotencyKey, index);
        out.push({ value: earlier.job, created: false });
        continue;
      }
      inCall.set(key, entry);
      const existing = yield* tx.jobByKey(job.ownerId, job.idempotencyKey);
      if (existing !== null) {
        if (existing.fingerprint !== fingerprint) throw keyConflict(job.idempotencyKey, index);
        out.push({ value: existing.value, created: false });
        continue;
      }
    }
    fresh.push(job);
    fingerprints.push(fingerprint);
    out.push({ value: job, created: true });
  }
  yield* insertJobs(tx, fresh, false, fingerprints);
  return out;
}

/** Every job of a batch, by id. */
export function* allJobsOf(tx: Tx, batchId: string): Op<Job[]> {
  const jobs: Job[] = [];
  for (;;) {
    const page = yield* tx.jobsOfBatch(batchId, { afterId: jobs.at(-1)?.id ?? null, limit: 1000 });
    jobs.push(...page);
    if (page.length < 1000) return jobs;
  }
}

/** Creates a batch and all its jobs atomically (or returns the one its idempotency key made). */
export function* createBatch(tx: Tx, prepared: PreparedBatch): Op<Created<{ batch: Batch; jobs: Job[] }>> {
  const { batch, jobs, fingerprint } = prepared;
  if (batch.idempotencyKey !== null) {
    const existing = yield* tx.batchByKey(batch.ownerId, batch.idempotencyKey);
    if (existing !== null) {
      if (existing.fingerprint !== fingerprint) throw keyConflict(batch.idempotencyKey);
      return { value: { batch: existing.value, jobs: yield* allJobsOf(tx, existing.value.id) }, created: false };
    }
  }
  yield* tx.insertBatch(batch, fingerprint);
  yield* tx.insertChanges([batchChange(batch, 'created', tx.now)]);
  yield* insertJobs(tx, jobs, !batch.active, []);
  return { value: { batch, jobs }, created: true };
}
