/**
 * Subscriptions on top of the store's change feed. The store already fans one change
 * source per process out to every `watch()` (see store/change-hub.ts), so no
 * subscriber holds a database cursor of its own; this module turns the raw events into
 * what each subscription promises: the current state first (op SNAPSHOT), then every
 * change, each checked against the subscriber's read access.
 *
 * Access checks need a job's owner, teams and ACL. Those are cached per process and
 * loaded in shared batches; an event flagged `access: true` (setJobAccess) drops the
 * cached entry so the next check reads the new rules.
 */
import DataLoader from 'dataloader';
import { can, type Owned } from '../domain/access.js';
import type {
  Batch,
  BatchCounts,
  BatchStatus,
  Delivery,
  Job,
  JobStatus,
  JsonObject,
  LogEntry,
  LogLevel,
  Principal,
  Progress,
} from '../domain/types.js';
import { AppError, CursorExpiredError, ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import type { ChangeEvent, JobStore } from '../store/port.js';

export type ChangeOpName = 'SNAPSHOT' | 'CREATED' | 'UPDATED' | 'DELETED';

export interface JobChangeModel {
  cursor: string;
  op: ChangeOpName;
  at: Date;
  jobId: string;
  batchId: string | null;
  status: JobStatus | null;
  attempts: number | null;
  progress: Progress | null;
  cancelRequested: boolean | null;
  version: number;
  /** The job itself, when the event was made from a read (SNAPSHOT). */
  snapshot: Job | null;
}

export interface BatchChangeModel {
  cursor: string;
  op: ChangeOpName;
  at: Date;
  batchId: string;
  status: BatchStatus | null;
  counts: BatchCounts | null;
  active: boolean | null;
  archived: boolean | null;
  version: number;
  job: JobChangeModel | null;
  snapshot: Batch | null;
}

export interface DeliveryChangeModel {
  cursor: string;
  op: ChangeOpName;
  deliveryId: string;
  jobId: string | null;
  batchId: string | null;
  event: string | null;
  status: string | null;
  snapshot: Delivery | null;
}

export interface JobEventFilter {
  status?: readonly JobStatus[] | null;
  type?: readonly string[] | null;
  batchId?: string | null;
  ownerId?: string | null;
  /** Jobs made from this inbound webhook source. */
  source?: string | null;
}

/**
 * Ends a stream with an error the client should see. graphql-js sends a value that
 * fails to resolve as an error result, which graphql-ws delivers before completing.
 */
export class StreamError {
  constructor(readonly error: AppError) {}
}

export interface SubscriptionFeed {
  jobUpdated(principal: Principal, id: string, after: string | null | undefined): AsyncIterableIterator<JobChangeModel | StreamError>;
  batchUpdated(principal: Principal, id: string, after: string | null | undefined): AsyncIterableIterator<BatchChangeModel | StreamError>;
  jobEvents(
    principal: Principal,
    filter: JobEventFilter,
    after: string | null | undefined,
  ): AsyncIterableIterator<JobChangeModel | StreamError>;
  jobLogs(principal: Principal, id: string, after: number | null | undefined): AsyncIterableIterator<LogEntry | StreamError>;
  deliveryUpdated(
    principal: Principal,
    target: { jobId?: string | null; batchId?: string | null },
    after: string | null | undefined,
  ): AsyncIterableIterator<DeliveryChangeModel | StreamError>;
  /** Subscriptions open now (metrics). */
  activeSubscriptions(): number;
}

type AccessInfo = Owned & { type: string | null; source: string | null };

const OPS: Record<string, ChangeOpName> = { created: 'CREATED', updated: 'UPDATED', deleted: 'DELETED' };

function progressOf(data: JsonObject | null): Progress | null {
  const raw = data?.progress as { percent: number; step: string | null; message: string | null; updatedAt: string } | null | undefined;
  if (raw === null || raw === undefined) return null;
  return { percent: raw.percent, step: raw.step ?? null, message: raw.message ?? null, updatedAt: new Date(raw.updatedAt) };
}

export function jobChangeOf(event: ChangeEvent): JobChangeModel {
  const data = event.data;
  return {
    cursor: event.cursor,
    op: OPS[event.op] ?? 'UPDATED',
    at: event.at,
    jobId: event.id,
    batchId: event.batchId,
    status: (event.status as JobStatus | null) ?? null,
    attempts: typeof data?.attempts === 'number' ? data.attempts : null,
    progress: progressOf(data),
    cancelRequested: typeof data?.cancelRequested === 'boolean' ? data.cancelRequested : null,
    version: event.version,
    snapshot: null,
  };
}

function jobSnapshot(job: Job, cursor: string): JobChangeModel {
  return {
    cursor,
    op: 'SNAPSHOT',
    at: job.updatedAt,
    jobId: job.id,
    batchId: job.batchId,
    status: job.status,
    attempts: job.attempts,
    progress: job.progress,
    cancelRequested: job.cancelRequested,
    version: job.version,
    snapshot: job,
  };
}

function batchChangeOf(event: ChangeEvent, job: JobChangeModel | null): BatchChangeModel {
  const data = event.data;
  return {
    cursor: event.cursor,
    op: OPS[event.op] ?? 'UPDATED',
    at: event.at,
    batchId: event.id,
    status: (event.status as BatchStatus | null) ?? null,
    counts: (data?.counts as unknown as BatchCounts | undefined) ?? null,
    active: typeof data?.active === 'boolean' ? data.active : null,
    archived: typeof data?.archived === 'boolean' ? data.archived : null,
    version: event.version,
    job,
    snapshot: null,
  };
}

function batchSnapshot(batch: Batch, cursor: string): BatchChangeModel {
  return {
    cursor,
    op: 'SNAPSHOT',
    at: batch.updatedAt,
    batchId: batch.id,
    status: batch.status,
    counts: batch.counts,
    active: batch.active,
    archived: batch.archived,
    version: batch.version,
    job: null,
    snapshot: batch,
  };
}

/**
 * Wraps a generator so that `return()` (the client unsubscribed) takes effect at once:
 * a plain async generator waiting for the next change would only see it after that
 * change arrived, keeping the watch open on a quiet job.
 */
function abortable<T>(run: (signal: AbortSignal) => AsyncGenerator<T>, count: { active: number }): AsyncIterableIterator<T | StreamError> {
  const controller = new AbortController();
  const inner = run(controller.signal);
  let finished = false;
  count.active++;
  const finish = () => {
    if (finished) return;
    finished = true;
    count.active--;
    controller.abort();
  };
  const iterator: AsyncIterableIterator<T | StreamError> = {
    async next() {
      if (finished) return { done: true, value: undefined };
      try {
        const result = await inner.next();
        if (result.done === true) finish();
        return result;
      } catch (error) {
        finish();
        // An expected error becomes the stream's last message; anything else is the server's.
        if (error instanceof AppError) return { done: false, value: new StreamError(error) };
        throw error;
      }
    },
    async return() {
      finish();
      await inner.return(undefined).catch(() => undefined);
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

export function createSubscriptionFeed(store: JobStore, options: { cacheSize?: number } = {}): SubscriptionFeed {
  const cacheSize = options.cacheSize ?? 50_000;
  const count = { active: 0 };
  const cache = new Map<string, AccessInfo | null>();
  // Shared by every subscriber: the events of one tick cost one store read, not one per subscriber.
  const jobInfo = new DataLoader<string, AccessInfo | null>(
    async (ids) =>
      (await store.getJobs(ids)).map((job) =>
        job === null
          ? null
          : {
              ownerId: job.ownerId,
              teamIds: job.teamIds,
              accessControl: job.accessControl,
              type: job.type,
              source: job.ingest?.source ?? null,
            },
      ),
    { cache: false, maxBatchSize: 500 },
  );
  // Live subscribers receive the same event objects from the store's fan-out; giving them
  // the same models too lets shared-execution.ts execute each change once for all of them.
  const jobModels = new WeakMap<ChangeEvent, JobChangeModel>();
  const batchModels = new WeakMap<ChangeEvent, BatchChangeModel>();
  const jobModel = (event: ChangeEvent): JobChangeModel => {
    let model = jobModels.get(event);
    if (model === undefined) {
      model = jobChangeOf(event);
      jobModels.set(event, model);
    }
    return model;
  };
  const batchModel = (event: ChangeEvent, job: JobChangeModel | null): BatchChangeModel => {
    let model = batchModels.get(event);
    if (model === undefined || model.job?.cursor !== job?.cursor) {
      model = batchChangeOf(event, job);
      batchModels.set(event, model);
    }
    return model;
  };

  async function infoOf(id: string): Promise<AccessInfo | null> {
    if (cache.has(id)) return cache.get(id) ?? null;
    const info = await jobInfo.load(id);
    if (info !== null) {
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
      cache.set(id, info);
    }
    return info;
  }

  /** May `principal` see this job event? Owners and admins need no lookup. */
  async function mayRead(principal: Principal, event: ChangeEvent): Promise<boolean> {
    if (principal.admin) return true;
    if (principal.userId !== null && event.ownerId === principal.userId) return true;
    if (event.data?.access === true) cache.delete(event.id);
    const info = await infoOf(event.id);
    return info !== null && can(principal, 'read', info);
  }

  async function readableJob(principal: Principal, id: string): Promise<Job> {
    const [job] = await store.getJobs([id]);
    if (job === null || job === undefined || !can(principal, 'read', job)) throw new NotFoundError('job', id);
    return job;
  }

  async function readableBatch(principal: Principal, id: string): Promise<Batch> {
    const [batch] = await store.getBatches([id]);
    if (batch === null || batch === undefined || !can(principal, 'read', batch)) throw new NotFoundError('batch', id);
    return batch;
  }

  /**
   * The changes after `after`, or — without a cursor, or when it has expired — the
   * snapshot `read()` makes followed by the changes after the head it was read at.
   * Reading the head before the snapshot means a write in between shows up twice
   * (in the snapshot and as a change) but is never lost.
   */
  async function* follow<S>(
    after: string | null | undefined,
    read: (head: string) => Promise<S[]>,
    signal: AbortSignal,
  ): AsyncGenerator<{ snapshot: S } | { event: ChangeEvent }> {
    // "" is the cursor of a snapshot taken before the first change ever: from the start.
    let cursor = after === '' ? null : (after ?? null);
    let needSnapshot = after === null || after === undefined;
    for (;;) {
      if (needSnapshot) {
        cursor = await store.headCursor();
        for (const snapshot of await read(cursor ?? '')) yield { snapshot };
        needSnapshot = false;
      }
      try {
        for await (const event of store.watch({ after: cursor, signal })) {
          cursor = event.cursor;
          yield { event };
        }
        return;
      } catch (error) {
        if (!(error instanceof CursorExpiredError)) throw error;
        needSnapshot = true;
      }
    }
  }

  return {
    activeSubscriptions: () => count.active,
    jobUpdated(principal, id, after) {
      return abortable(async function* (signal) {
        // Checked up front so that a resuming subscriber without access gets NOT_FOUND too.
        await readableJob(principal, id);
        const snapshot = async (head: string) => [jobSnapshot(await readableJob(principal, id), head)];
        for await (const item of follow(after, snapshot, signal)) {
          if ('snapshot' in item) {
            yield item.snapshot;
            continue;
          }
          const { event } = item;
          if (event.entity !== 'job' || event.id !== id || event.op === 'logged') continue;
          if (event.data?.access === true && !(await mayRead(principal, event))) {
            throw new ForbiddenError(`read access to job ${id} was withdrawn`, { jobId: id });
          }
          yield jobModel(event);
          if (event.op === 'deleted') return;
        }
      }, count);
    },

    batchUpdated(principal, id, after) {
      return abortable(async function* (signal) {
        await readableBatch(principal, id);
        const snapshot = async (head: string) => [batchSnapshot(await readableBatch(principal, id), head)];
        // The job change that moved the counts comes just before the batch change, in the same transaction.
        let lastJob: JobChangeModel | null = null;
        for await (const item of follow(after, snapshot, signal)) {
          if ('snapshot' in item) {
            yield item.snapshot;
            continue;
          }
          const { event } = item;
          if (event.entity === 'job' && event.batchId === id && event.op !== 'logged') {
            lastJob = jobModel(event);
          } else if (event.entity === 'batch' && event.id === id) {
            yield batchModel(event, lastJob);
            lastJob = null;
            if (event.op === 'deleted') return;
          }
        }
      }, count);
    },

    jobEvents(principal, filter, after) {
      return abortable(async function* (signal) {
        for await (const event of store.watch({ after: after === '' ? null : (after ?? null), signal })) {
          if (event.entity !== 'job' || event.op === 'logged') continue;
          if (filter.batchId != null && event.batchId !== filter.batchId) continue;
          if (filter.ownerId != null && event.ownerId !== filter.ownerId) continue;
          if (filter.status != null && !filter.status.includes(event.status as JobStatus)) continue;
          if (!(await mayRead(principal, event))) continue;
          if (filter.type != null || filter.source != null) {
            const info = await infoOf(event.id);
            if (info === null) continue;
            if (filter.type != null && (info.type === null || !filter.type.includes(info.type))) continue;
            if (filter.source != null && info.source !== filter.source) continue;
          }
          yield jobModel(event);
        }
      }, count);
    },

    deliveryUpdated(principal, target, after) {
      return abortable(async function* (signal) {
        const jobId = target.jobId ?? null;
        const batchId = target.batchId ?? null;
        if ((jobId === null) === (batchId === null)) throw new ValidationError('give exactly one of jobId and batchId', { field: 'jobId' });
        if (jobId !== null) await readableJob(principal, jobId);
        else await readableBatch(principal, batchId as string);
        const filter = jobId !== null ? { jobId } : { batchId: batchId as string };
        const snapshot = async (head: string) =>
          (await store.listDeliveries(filter)).map(
            (delivery): DeliveryChangeModel => ({
              cursor: head,
              op: 'SNAPSHOT',
              deliveryId: delivery.id,
              jobId: delivery.jobId,
              batchId: delivery.batchId,
              event: delivery.event,
              status: delivery.status,
              snapshot: delivery,
            }),
          );
        for await (const item of follow(after, snapshot, signal)) {
          if ('snapshot' in item) {
            yield item.snapshot;
            continue;
          }
          const { event } = item;
          if (event.entity === 'job' && event.op === 'deleted' && event.id === jobId) return;
          if (event.entity === 'batch' && event.op === 'deleted' && event.id === batchId) return;
          if (event.entity !== 'delivery') continue;
          const eventJobId = typeof event.data?.jobId === 'string' ? event.data.jobId : null;
          if (jobId !== null ? eventJobId !== jobId : event.batchId !== batchId) continue;
          yield {
            cursor: event.cursor,
            op: OPS[event.op] ?? 'UPDATED',
            deliveryId: event.id,
            jobId: eventJobId,
            batchId: event.batchId,
            event: typeof event.data?.event === 'string' ? event.data.event : null,
            status: event.status,
            snapshot: null,
          };
        }
      }, count);
    },

    jobLogs(principal, id, after) {
      return abortable(async function* (signal) {
        await readableJob(principal, id);
        let lastSeq = after ?? 0;
        const head = await store.headCursor();
        for (;;) {
          const page = await store.listLogs(id, lastSeq, 500);
          for (const entry of page) {
            lastSeq = entry.seq;
            yield entry;
          }
          if (page.length < 500) break;
        }
        for await (const event of store.watch({ after: head, signal })) {
          if (event.entity !== 'job' || event.id !== id) continue;
          if (event.op === 'deleted') return;
          if (event.op !== 'logged' || event.data === null) continue;
          const seq = event.data.seq as number;
          if (seq <= lastSeq) continue;
          lastSeq = seq;
          yield {
            seq,
            jobId: id,
            attempt: event.data.attempt as number,
            at: event.at,
            level: event.data.level as LogLevel,
            message: event.data.message as string,
          };
        }
      }, count);
    },
  };
}
