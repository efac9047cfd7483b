/**
 * Retention of finished jobs and change events. Candidates are listed outside any
 * transaction, so each is checked again inside the unit of work that deletes it:
 * still finished, finished before its cutoff, not in an archived batch. A job
 * restarted (or archived) meanwhile stays; only what was deleted is reported, so the
 * caller deletes the result files of those jobs and no others.
 */
import type { Job } from '../../domain/types.js';
import type { Engine, Op, Tx, Units } from '../engine.js';
import type { PurgeRequest, PurgeResult } from '../port.js';
import type * as T from '../transitions.js';
import { byBatch, moveInBatch, removeJob } from './commit.js';

/** Candidates read per unit of work. */
const PAGE = 500;

type Cutoffs = Pick<PurgeRequest, 'completedBefore' | 'failedBefore'>;

function expired(job: Job, cutoffs: Cutoffs): boolean {
  if (job.finishedAt === null) return false;
  const cutoff =
    job.status === 'COMPLETED'
      ? cutoffs.completedBefore
      : job.status === 'PENDING' || job.status === 'PROCESSING'
        ? undefined
        : cutoffs.failedBefore;
  return cutoff !== undefined && job.finishedAt.getTime() < cutoff.getTime();
}

/** Deletes those of `ids` that retention may still delete; returns their ids. */
export function* deleteExpired(tx: Tx, ids: readonly string[], cutoffs: Cutoffs): Op<string[]> {
  const deleted: string[] = [];
  const moves: ({ batchId: string } & T.BatchMove)[] = [];
  const archived = new Map<string, boolean>();
  for (const id of ids) {
    const job = yield* tx.getJob(id);
    if (job === null || !expired(job, cutoffs)) continue;
    if (job.batchId !== null) {
      let isArchived = archived.get(job.batchId);
      if (isArchived === undefined) {
        isArchived = (yield* tx.getBatch(job.batchId))?.archived ?? false;
        archived.set(job.batchId, isArchived);
      }
      if (isArchived) continue;
      moves.push({ batchId: job.batchId, from: job.status, to: null });
    }
    yield* removeJob(tx, job);
    deleted.push(id);
  }
  for (const [batchId, batchMoves] of byBatch(moves)) {
    if ((yield* tx.getBatch(batchId)) !== null) yield* moveInBatch(tx, batchId, batchMoves);
  }
  return deleted;
}

/** Deletes old finished jobs (with their logs and deliveries) and old change events. */
export async function purge(
  engine: Pick<Engine, 'retentionCandidates' | 'purgeChanges'>,
  units: Units,
  request: PurgeRequest,
): Promise<PurgeResult> {
  const jobIds: string[] = [];
  const cutoffs: Cutoffs = {
    ...(request.completedBefore === undefined ? {} : { completedBefore: request.completedBefore }),
    ...(request.failedBefore === undefined ? {} : { failedBefore: request.failedBefore }),
  };
  if (cutoffs.completedBefore !== undefined || cutoffs.failedBefore !== undefined) {
    for (;;) {
      const ids = await engine.retentionCandidates(cutoffs, PAGE);
      if (ids.length === 0) break;
      const deleted = await units.unit((tx) => deleteExpired(tx, ids, cutoffs));
      jobIds.push(...deleted);
      // A page of candidates none of which could go: they changed meanwhile; the next sweep sees them again.
      if (ids.length < PAGE || deleted.length === 0) break;
    }
  }
  const changes = request.changesBefore === undefined ? 0 : await engine.purgeChanges(request.changesBefore);
  return { jobs: jobIds.length, changes, jobIds };
}
