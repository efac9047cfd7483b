/** Control of one job by its owner or an admin: cancel, restart, edit, access, delete. */
import type { AccessControl, Job } from '../../domain/types.js';
import type { Op, Tx } from '../engine.js';
import type { JobPatch } from '../port.js';
import { accessChangeData, withAccess } from '../prepare.js';
import * as T from '../transitions.js';
import { commitJob, commitJobs, loadJob, moveInBatch, removeJob } from './commit.js';

/** Loads a job, applies `step` and commits the change with its effects. */
export function* mutateJob(tx: Tx, id: string, step: (job: Job, now: Date) => Job): Op<Job> {
  const before = yield* loadJob(tx, id);
  const after = step(before, tx.now);
  yield* commitJob(tx, before, after);
  return after;
}

export function* cancelJob(tx: Tx, id: string): Op<Job> {
  return yield* mutateJob(tx, id, T.cancelRequestedFor);
}

export function* restartJob(tx: Tx, id: string): Op<Job> {
  return yield* mutateJob(tx, id, T.restarted);
}

export function* updateJob(tx: Tx, id: string, patch: JobPatch): Op<Job> {
  return yield* mutateJob(tx, id, (job, now) => T.edited(job, patch, now));
}

/** Replaces a job's access control; its change event carries `access: true`. */
export function* setJobAccess(tx: Tx, id: string, accessControl: AccessControl): Op<Job> {
  const before = yield* loadJob(tx, id);
  const after = withAccess(before, accessControl, tx.now);
  yield* commitJobs(tx, [{ before, after, data: accessChangeData(after) }]);
  return after;
}

/** Deletes a job that is not running, with its logs and deliveries, and moves its batch's counts. */
export function* deleteJob(tx: Tx, id: string): Op<void> {
  const job = yield* loadJob(tx, id);
  T.assertDeletable(job);
  yield* removeJob(tx, job);
  if (job.batchId !== null) yield* moveInBatch(tx, job.batchId, [{ from: job.status, to: null }]);
}
