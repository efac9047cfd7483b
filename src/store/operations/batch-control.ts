/**
 * Batch control: pause and resume, archive, cancel, restart, delete.
 *
 * A batch may hold thousands of jobs, and changing them all in one transaction does not
 * scale: on MongoDB it meets workers' write conflicts, retries, and runs past the
 * server's transaction time limit. So control that touches jobs first **holds** the
 * batch (claims skip its jobs until the hold ends; it lasts `HOLD_MS`, renewed with
 * every chunk, so a crash mid-way cannot hold a batch for ever), then changes the jobs
 * in chunks of `CHUNK`, each one unit of work that moves the batch's counts for exactly
 * the jobs it changed, and last lets the hold go.
 */
import type { Batch, Job, JobStatus } from '../../domain/types.js';
import { ConflictError } from '../../errors.js';
import type { Op, Tx, Units } from '../engine.js';
import * as T from '../transitions.js';
import { batchChange, commitJob, loadBatch, moveInBatch, removeJob } from './commit.js';

/** Jobs changed per unit of work. */
export const CHUNK = 500;
/** How long a hold lasts without a new chunk. */
export const HOLD_MS = 60_000;

const holdUntil = (tx: Tx) => new Date(tx.now.getTime() + HOLD_MS);

function* patchBatch(tx: Tx, id: string, patch: Partial<Pick<Batch, 'active' | 'archived'>>, hold: boolean): Op<Batch> {
  const batch = T.batchPatched(yield* loadBatch(tx, id), patch, tx.now);
  yield* tx.saveBatch(batch);
  yield* tx.insertChanges([batchChange(batch, 'updated', tx.now)]);
  if (hold) yield* tx.holdBatch(id, holdUntil(tx));
  return batch;
}

/**
 * Lets the batch's hold go; with `resumed`, in the same unit of work, a batch change whose
 * summary says `resumed: true`: its jobs can be claimed again from this commit on, and
 * that is what workers wake on (a wake-up on the jobs' own changes would find the batch
 * still held, and every claim and completion of its jobs writes a batch change with
 * `active: true` too). The batch record itself is not changed by this.
 */
function* release(tx: Tx, id: string, resumed: boolean): Op<void> {
  yield* tx.holdBatch(id, null);
  if (!resumed) return;
  const batch = yield* tx.getBatch(id);
  if (batch === null) return;
  const change = batchChange(batch, 'updated', tx.now);
  yield* tx.insertChanges([{ ...change, data: { ...change.data, resumed: true } }]);
}

export function* archiveBatch(tx: Tx, id: string, archived: boolean): Op<Batch> {
  return yield* patchBatch(tx, id, { archived }, false);
}

/**
 * Runs `chunk` until it reports fewer than CHUNK jobs, renewing the hold with each
 * chunk; on failure the hold is let go before the error goes on.
 */
async function inChunks(units: Units, id: string, chunk: (tx: Tx, afterId: string | null) => Op<Job[]>): Promise<void> {
  let afterId: string | null = null;
  try {
    for (;;) {
      const from: string | null = afterId;
      const jobs: Job[] = await units.unit(function* (tx): Op<Job[]> {
        const done = yield* chunk(tx, from);
        if (done.length === CHUNK) yield* tx.holdBatch(id, holdUntil(tx));
        return done;
      });
      if (jobs.length < CHUNK) return;
      afterId = (jobs.at(-1) as Job).id;
    }
  } catch (error) {
    await units.unit((tx) => tx.holdBatch(id, null));
    throw error;
  }
}

/** Pauses (claims skip its jobs) or resumes a batch. */
export async function setBatchActive(units: Units, id: string, active: boolean): Promise<Batch> {
  const batch = await units.unit((tx) => patchBatch(tx, id, { active }, true));
  let afterId: string | null = null;
  let done = false;
  try {
    for (;;) {
      const from: string | null = afterId;
      const last: string | null = await units.unit(function* (tx): Op<string | null> {
        const end = yield* tx.pauseJobs(id, !active, from, CHUNK);
        if (end !== null) yield* tx.holdBatch(id, holdUntil(tx));
        return end;
      });
      if (last === null) break;
      afterId = last;
    }
    done = true;
  } finally {
    await units.unit((tx) => release(tx, id, done && active));
  }
  return batch;
}

/** Applies `step` to the batch's jobs in `statuses`, chunk by chunk, and returns the batch after. */
async function stepJobs(
  units: Units,
  id: string,
  statuses: readonly JobStatus[],
  step: (job: Job, now: Date) => Job,
  resumes: boolean,
): Promise<Batch> {
  await units.unit(function* (tx) {
    yield* loadBatch(tx, id);
    yield* tx.holdBatch(id, holdUntil(tx));
  });
  await inChunks(units, id, function* (tx, afterId) {
    const jobs = yield* tx.jobsOfBatch(id, { statuses, afterId, limit: CHUNK });
    const moves: T.BatchMove[] = [];
    for (const before of jobs) {
      const effects = yield* commitJob(tx, before, step(before, tx.now), false);
      if (effects.batchMove !== null) moves.push(effects.batchMove);
    }
    yield* moveInBatch(tx, id, moves);
    return jobs;
  });
  return units.unit(function* (tx) {
    yield* release(tx, id, resumes);
    return yield* loadBatch(tx, id);
  });
}

/** Cancels every pending job and asks running ones to stop. */
export function cancelBatch(units: Units, id: string): Promise<Batch> {
  return stepJobs(units, id, ['PENDING', 'PROCESSING'], T.cancelRequestedFor, false);
}

/** Restarts the batch's failed jobs (and cancelled and completed ones unless `onlyFailed`). */
export function restartBatch(units: Units, id: string, onlyFailed: boolean): Promise<Batch> {
  return stepJobs(units, id, onlyFailed ? ['FAILED'] : ['FAILED', 'CANCELLED', 'COMPLETED'], T.restarted, true);
}

function running(batchId: string, processing: number): ConflictError {
  return new ConflictError(`batch ${batchId} has ${processing} running jobs: cancel it before deleting it`, { batchId });
}

/**
 * Deletes a batch and its jobs; refused while any of them runs. A job claimed by a
 * claim that began before the hold (possible on MongoDB) stops the deletion with the
 * same `CONFLICT`; what was deleted by then stays deleted, with exact counts.
 */
export async function deleteBatch(units: Units, id: string): Promise<void> {
  await units.unit(function* (tx) {
    const batch = yield* loadBatch(tx, id);
    if (batch.counts.processing > 0) throw running(id, batch.counts.processing);
    yield* tx.holdBatch(id, holdUntil(tx));
  });
  await inChunks(units, id, function* (tx, afterId) {
    const jobs = yield* tx.jobsOfBatch(id, { afterId, limit: CHUNK });
    const busy = jobs.filter((job) => job.status === 'PROCESSING').length;
    if (busy > 0) throw running(id, busy);
    for (const job of jobs) yield* removeJob(tx, job);
    yield* moveInBatch(
      tx,
      id,
      jobs.map((job) => ({ from: job.status, to: null })),
      { announce: false },
    );
    return jobs;
  });
  await units.unit(function* (tx) {
    const batch = yield* loadBatch(tx, id);
    yield* tx.deleteBatch(id);
    yield* tx.insertChanges([{ ...batchChange(batch, 'deleted', tx.now), version: batch.version + 1, data: null }]);
  });
}
