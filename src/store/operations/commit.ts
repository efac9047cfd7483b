/**
 * Committing a job change: the job's new state, its change event, its outbox record
 * and its batch's counts, all in the caller's unit of work. Every operation that
 * changes a job goes through `commitJob` (or `jobWritten`, after an engine's one-statement
 * write), so the effects of a change are written in one place for both engines.
 */
import { newId } from '../../domain/ids.js';
import type { Batch, Delivery, Job, JsonObject, WebhookEvent } from '../../domain/types.js';
import { NotFoundError } from '../../errors.js';
import type { NewChange, Op, Tx } from '../engine.js';
import type { ChangeOp, NewLogEntry } from '../port.js';
import { batchChangeData, batchDeliveryPayload, jobChangeData, jobDeliveryPayload, wantsEvent } from '../prepare.js';
import * as T from '../transitions.js';

export function jobChange(job: Job, op: ChangeOp, at: Date, data: JsonObject | null): NewChange {
  return { entity: 'job', op, id: job.id, batchId: job.batchId, ownerId: job.ownerId, status: job.status, version: job.version, at, data };
}

export function batchChange(batch: Batch, op: ChangeOp, at: Date): NewChange {
  return {
    entity: 'batch',
    op,
    id: batch.id,
    batchId: batch.id,
    ownerId: batch.ownerId,
    status: batch.status,
    version: batch.version,
    at,
    data: batchChangeData(batch),
  };
}

export function deliveryChange(delivery: Delivery, op: ChangeOp, at: Date): NewChange {
  return {
    entity: 'delivery',
    op,
    id: delivery.id,
    batchId: delivery.batchId,
    ownerId: null,
    status: delivery.status,
    version: delivery.attempts.length + 1,
    at,
    data: { event: delivery.event, status: delivery.status, jobId: delivery.jobId },
  };
}

export function* loadJob(tx: Tx, id: string): Op<Job> {
  const job = yield* tx.getJob(id);
  if (job === null) throw new NotFoundError('job', id);
  return job;
}

export function* loadBatch(tx: Tx, id: string): Op<Batch> {
  const batch = yield* tx.getBatch(id);
  if (batch === null) throw new NotFoundError('batch', id);
  return batch;
}

/** A new outbox record: PENDING, due now. */
function newDelivery(
  now: Date,
  event: WebhookEvent,
  webhook: JsonObject,
  target: { jobId: string | null; batchId: string | null },
  payload: (id: string) => JsonObject,
): Delivery {
  const id = newId('dlv', now.getTime());
  return {
    id,
    event,
    jobId: target.jobId,
    batchId: target.batchId,
    webhook,
    payload: payload(id),
    status: 'PENDING',
    attempts: [],
    nextAttemptAt: now,
    leaseOwner: null,
    leaseUntil: null,
    createdAt: now,
    updatedAt: now,
  };
}

/** Writes an outbox record (PENDING, due now) and its change event. */
export function* enqueueDelivery(
  tx: Tx,
  event: WebhookEvent,
  webhook: JsonObject,
  target: { jobId: string | null; batchId: string | null },
  payload: (id: string) => JsonObject,
): Op<Delivery> {
  const delivery = newDelivery(tx.now, event, webhook, target, payload);
  yield* tx.insertDeliveries([delivery]);
  yield* tx.insertChanges([deliveryChange(delivery, 'created', tx.now)]);
  return delivery;
}

/** Recorded moves applied per unit of work. */
const MOVES_PAGE = 5000;

/**
 * Moves jobs between a batch's counts and writes its change event; writes
 * `batch.completed` when this move finished the batch, unless `announce` is false (a
 * batch being deleted). On an engine that defers batch counts, a `hot` move (a job's own
 * change) is recorded instead, and applied after the commit (`applyBatchMoves`); any
 * other move first applies what is recorded, so counts and the end of a batch stay
 * exact.
 */
export function* moveInBatch(
  tx: Tx,
  batchId: string,
  moves: readonly T.BatchMove[],
  options: { announce?: boolean; hot?: boolean } = {},
): Op<Batch | null> {
  if (tx.deferBatchCounts && options.hot === true) {
    if (moves.length === 0) return null;
    yield* tx.insertBatchMoves(batchId, moves);
    tx.movedBatches.add(batchId);
    return null;
  }
  const recorded = tx.deferBatchCounts ? yield* tx.batchMoves(batchId, MOVES_PAGE) : null;
  const all = recorded === null || recorded.moves.length === 0 ? moves : [...recorded.moves, ...moves];
  if (all.length === 0) return null;
  if (recorded !== null && recorded.ids.length > 0) yield* tx.deleteBatchMoves(recorded.ids);
  const current = yield* tx.getBatch(batchId);
  // Moves recorded for a batch deleted since have nothing left to count.
  if (current === null && moves.length === 0) return null;
  const { batch, finished } = T.batchMoved(current ?? (yield* loadBatch(tx, batchId)), all, tx.now);
  yield* tx.saveBatch(batch);
  yield* tx.insertChanges([batchChange(batch, 'updated', tx.now)]);
  if (options.announce !== false && finished && wantsEvent(batch.webhook, 'batch.completed')) {
    yield* enqueueDelivery(tx, 'batch.completed', batch.webhook as JsonObject, { jobId: null, batchId: batch.id }, (id) =>
      batchDeliveryPayload(id, batch, tx.now),
    );
  }
  return batch;
}

/** Applies the moves recorded for a batch (deferred engines); returns whether there were any. */
export function* applyBatchMoves(tx: Tx, batchId: string): Op<boolean> {
  return (yield* moveInBatch(tx, batchId, [])) !== null;
}

const NO_EFFECTS: T.Effects = { batchMove: null, jobEvent: null };

/** One job's write in a unit of work: its log lines and its new state. */
export interface JobWrite {
  /** The job before this write; its log lines belong to this state's attempt. */
  before: Job;
  /** The new state; null when the write only adds log lines. */
  after: Job | null;
  /** Log lines, written before the new state (so they come first in the feed too). */
  logs?: readonly NewLogEntry[] | undefined;
  /** The engine wrote the new state already (its one-statement claim or completion). */
  saved?: boolean;
  /** The change event's summary; default `jobChangeData(after)`. */
  data?: JsonObject;
}

/**
 * Writes job changes with all their effects, one primitive call per kind of record
 * however many jobs (MongoDB: one `bulkWrite` for the jobs): the log lines with their
 * change events (a write's line numbers ride in its `updated` change; lines alone are
 * one `logged` change), the new states, their change events and outbox records, in the order
 * of `writes`, and each job's batch counts (unless `moveBatch` is false: the caller moves
 * a whole chunk). A job written twice is saved once, with its last state. Every job change
 * of every operation goes through here, so its effects are composed in one place for both
 * engines and for one job or many.
 *
 * A batch's change follows the job change that moved its counts, job by job (subscribers
 * of `batchUpdated` see which job moved them), so where counts are moved in the unit
 * itself the changes are written up to each such job before its batch moves. Where they
 * are deferred, each batch's moves are recorded once for the whole group.
 */
export function* commitJobs(tx: Tx, writes: readonly JobWrite[], moveBatch = true): Op<T.Effects[]> {
  const now = tx.now;
  const logged = writes.filter((w) => w.logs !== undefined && w.logs.length > 0);
  const seqs = logged.length === 0 ? [] : yield* tx.insertLogs(logged.map((w) => ({ job: w.before, entries: w.logs ?? [] })));
  const saves = new Map<string, { before: Job; after: Job }>();
  const changes: NewChange[] = [];
  const deliveries: Delivery[] = [];
  const moves: ({ batchId: string } & T.BatchMove)[] = [];
  const effects: T.Effects[] = [];
  let lines = 0;
  for (const write of writes) {
    const { before, after } = write;
    // The numbers of the lines this write added; their text is in the log, not in the feed.
    const logSeqs = write.logs !== undefined && write.logs.length > 0 ? (seqs[lines++] ?? []) : null;
    if (after === null || after === before) {
      // Lines alone: one `logged` change for all of them.
      if (logSeqs !== null) changes.push(jobChange(before, 'logged', now, { logSeqs }));
      effects.push(NO_EFFECTS);
      continue;
    }
    if (write.saved !== true) saves.set(after.id, { before: saves.get(after.id)?.before ?? before, after });
    // Lines written with a new state are announced by its change (they come before it in the log).
    const data = write.data ?? jobChangeData(after);
    changes.push(jobChange(after, 'updated', now, logSeqs === null ? data : { ...data, logSeqs }));
    const effect = T.effectsOf(before, after);
    const event = effect.jobEvent;
    if (event !== null) {
      const delivery = newDelivery(now, event, after.webhook as JsonObject, { jobId: after.id, batchId: after.batchId }, (id) =>
        jobDeliveryPayload(id, event, after, now),
      );
      deliveries.push(delivery);
      changes.push(deliveryChange(delivery, 'created', now));
    }
    effects.push(effect);
    if (!moveBatch || effect.batchMove === null) continue;
    if (tx.deferBatchCounts) moves.push(effect.batchMove);
    else {
      yield* tx.insertChanges(changes.splice(0));
      const { batchId, ...move } = effect.batchMove;
      yield* moveInBatch(tx, batchId, [move], { hot: true });
    }
  }
  if (saves.size > 0) yield* tx.saveJobs([...saves.values()]);
  if (changes.length > 0) yield* tx.insertChanges(changes);
  if (deliveries.length > 0) yield* tx.insertDeliveries(deliveries);
  for (const [batchId, batchMoves] of byBatch(moves)) yield* moveInBatch(tx, batchId, batchMoves, { hot: true });
  return effects;
}

/**
 * Persists `before → after` with its change event, outbox delivery and (unless
 * `moveBatch` is false: the caller moves a whole chunk at once) its batch counts.
 */
export function* commitJob(tx: Tx, before: Job, after: Job, moveBatch = true): Op<T.Effects> {
  if (after === before) return NO_EFFECTS;
  return (yield* commitJobs(tx, [{ before, after }], moveBatch))[0] as T.Effects;
}

/** What follows a job write the caller made itself, in the same unit of work: its change event, outbox record and batch counts. */
export function* jobWritten(tx: Tx, before: Job, after: Job, moveBatch = true, data: JsonObject = jobChangeData(after)): Op<T.Effects> {
  return (yield* commitJobs(tx, [{ before, after, saved: true, data }], moveBatch))[0] as T.Effects;
}

/** Log lines of the job's current attempt, each with its `logged` change. */
export function* writeLogs(tx: Tx, job: Job, entries: readonly NewLogEntry[] | undefined): Op<void> {
  if (entries === undefined || entries.length === 0) return;
  yield* commitJobs(tx, [{ before: job, after: null, logs: entries }]);
}

/** Deletes a job with its logs and deliveries, and writes its `deleted` change (no count move). */
export function* removeJob(tx: Tx, job: Job): Op<void> {
  yield* tx.deleteJob(job);
  yield* tx.insertChanges([jobChange({ ...job, version: job.version + 1 }, 'deleted', tx.now, null)]);
}

/** Groups count moves by batch, in first-seen order. */
export function byBatch(moves: readonly ({ batchId: string } & T.BatchMove)[]): Map<string, T.BatchMove[]> {
  const grouped = new Map<string, T.BatchMove[]>();
  for (const { batchId, ...move } of moves) {
    const list = grouped.get(batchId);
    if (list === undefined) grouped.set(batchId, [move]);
    else list.push(move);
  }
  return grouped;
}
