/**
 * The MongoDB engine: a replica set shared by any number of API and worker processes
 * (official driver). A unit of work is one multi-document transaction
 * (`session.withTransaction`, snapshot reads, majority writes), retried by the driver
 * on transient errors with a fresh `tx.now`. `changes` is the change source
 * (`change-source.ts`). Times that decide leases come from the server's clock: the
 * engine measures its offset from this process's clock at start and every minute.
 *
 * Change streams and transactions need a replica set: `createMongoStore` checks.
 */
import {
  type AnyBulkWriteOperation,
  type ClientSession,
  type Collection,
  type Db,
  type Document,
  type Filter,
  type IndexDescription,
  MongoClient,
  ObjectId,
  type TransactionOptions,
} from 'mongodb';
import { batchStatus } from '../../domain/status.js';
import type { Batch, Delivery, Job, LogEntry, Principal } from '../../domain/types.js';
import { ConflictError, ValidationError } from '../../errors.js';
import { ChangeHub } from '../change-hub.js';
import type { ChangeListener, Listening } from '../change-stream.js';
import { type Engine, type Keyed, type NewChange, type Op, runAsync, type Tx, wait } from '../engine.js';
import {
  type BatchFilter,
  type ClaimRequest,
  type DeliveryFilter,
  INGEST_OUTCOMES,
  type IngestCounts,
  type JobFilter,
  type NewLogEntry,
  type Page,
  type PageRequest,
  type Stats,
  type StatsFilter,
} from '../port.js';
import { emptySummary, pageSize, readerEntries } from '../prepare.js';
import { decodePageCursor, statsJobFilter, summarizeStats, toPage } from '../query.js';
import type { BatchMove } from '../transitions.js';
import { ensureChangeIndexes, type MongoChangeDoc, MongoChangeSource } from './change-source.js';

export interface MongoEngineOptions {
  /** How long change events are kept by the TTL index on `changes` (0: until the retention sweep). Default 0. */
  changesRetentionHours?: number;
}

type JobDoc = Omit<Job, 'id'> & {
  _id: string;
  visibility: string;
  readers: string[];
  paused: boolean;
  idempotencyHash: string | null;
  logSeq: number;
};
/** `status` is stored (derived from the counts at every write) so that lists can filter on it. */
type BatchDoc = Omit<Batch, 'id'> & {
  _id: string;
  visibility: string;
  readers: string[];
  idempotencyHash: string | null;
  heldUntil?: Date | null;
};
type DeliveryDoc = Omit<Delivery, 'id'> & { _id: string };
type LogDoc = { _id: string; jobId: string; seq: number; attempt: number; at: Date; level: LogEntry['level']; message: string };
type IngestCountsDoc = { _id: string } & Partial<IngestCounts>;
/** A batch count move a job change recorded, applied after its commit (`operations/commit.ts`). */
type MoveDoc = { _id?: ObjectId; batchId: string; at: Date; move: BatchMove };

/** Snapshot reads and majority writes: an acknowledged write survives a failover, and a unit reads one point in time. */
const TRANSACTION: TransactionOptions = { readConcern: { level: 'snapshot' }, writeConcern: { w: 'majority' }, readPreference: 'primary' };

const MUTABLE_JOB_FIELDS = [
  'status',
  'priority',
  'runAt',
  'attempts',
  'maxAttempts',
  'leaseToken',
  'leaseOwner',
  'leaseUntil',
  'cancelRequested',
  'progress',
  'results',
  'error',
  'errors',
  'version',
  'updatedAt',
  'startedAt',
  'finishedAt',
  'workerId',
  'usage',
] as const satisfies readonly (keyof Job)[];

function jobToDoc(job: Job, paused: boolean, idempotencyHash: string | null): JobDoc {
  const { id, ...rest } = job;
  return {
    _id: id,
    ...rest,
    visibility: job.accessControl.visibility,
    readers: readerEntries(job.accessControl),
    paused,
    idempotencyHash,
    logSeq: 0,
  };
}

function jobFromDoc(doc: JobDoc): Job {
  const { _id, visibility: _v, readers: _r, paused: _p, idempotencyHash: _h, logSeq: _l, ...rest } = doc;
  // Documents written before the result cache (or ingest, usage) lack those fields.
  return {
    id: _id,
    ...rest,
    cacheKey: rest.cacheKey ?? null,
    cachedFrom: rest.cachedFrom ?? null,
    ingest: rest.ingest ?? null,
    correlationId: rest.correlationId ?? null,
    workerId: rest.workerId ?? null,
    usage: rest.usage ?? null,
  };
}

function batchFromDoc(doc: BatchDoc): Batch {
  const { _id, visibility: _v, readers: _r, idempotencyHash: _h, heldUntil: _u, ...rest } = doc;
  return { id: _id, ...rest, status: batchStatus(rest.counts), summary: rest.summary ?? emptySummary() };
}

function deliveryFromDoc(doc: DeliveryDoc): Delivery {
  const { _id, ...rest } = doc;
  return { id: _id, ...rest };
}

/**
 * Equality on a field indexed by a partial index filtered with `$type`: the query
 * carries the filter too, because the planner uses a partial index only for queries
 * that contain its filter expression (an equality alone does not prove `$type`).
 */
const typed = (value: unknown, type: 'string' | 'date') => ({ $eq: value, $type: type });

/** The idempotency lookup (`idempotency` indexes of `jobs` and `batches`). */
export function idempotencyFilter(ownerId: string, key: string): Document {
  return { ownerId, idempotencyKey: typed(key, 'string') };
}

/** Earlier deliveries to this URL that answered 410 for the job (or the batch): `disabled` index. */
export function disabledFilter(delivery: Delivery): Document {
  return {
    status: 'DISABLED',
    _id: { $ne: delivery.id },
    'webhook.url': delivery.webhook.url,
    ...(delivery.batchId !== null ? { batchId: delivery.batchId } : { batchId: null, jobId: delivery.jobId }),
  };
}

function visibleFilter(principal: Principal | undefined): Document | null {
  if (principal === undefined || principal.admin) return null;
  // Anonymous callers read nothing (see domain/access.ts).
  if (principal.userId === null) return { _id: { $in: [] } };
  const entries = [`user:${principal.userId}`, ...principal.teams.map((t) => `team:${t}`)];
  return {
    $or: [
      { ownerId: principal.userId },
      { visibility: 'PUBLIC' },
      { readers: { $in: entries } },
      { visibility: 'TEAM', teamIds: { $in: principal.teams } },
    ],
  };
}

function created(and: Document[], filter: { createdAfter?: Date; createdBefore?: Date }): void {
  if (filter.createdAfter !== undefined) and.push({ createdAt: { $gte: filter.createdAfter } });
  if (filter.createdBefore !== undefined) and.push({ createdAt: { $lt: filter.createdBefore } });
}

/** The conditions of a job list filter. */
export function jobQuery(filter: JobFilter): Document {
  const and: Document[] = [];
  if (filter.status !== undefined) and.push({ status: { $in: filter.status } });
  if (filter.type !== undefined) and.push({ type: { $in: filter.type } });
  if (filter.batchId !== undefined) and.push({ batchId: filter.batchId });
  if (filter.ownerId !== undefined) and.push({ ownerId: filter.ownerId });
  if (filter.track !== undefined) and.push({ track: typed(filter.track, 'string') });
  if (filter.cacheKey !== undefined) and.push({ cacheKey: typed(filter.cacheKey, 'string') });
  if (filter.cached !== undefined)
    and.push(filter.cached ? { cachedFrom: { $type: 'string' } } : { cachedFrom: { $not: { $type: 'string' } } });
  if (filter.source !== undefined) and.push({ 'ingest.source': typed(filter.source, 'string') });
  if (filter.retrying === true) and.push({ status: 'PENDING', error: { $type: 'object' } });
  if (filter.retrying === false) and.push({ $nor: [{ status: 'PENDING', error: { $type: 'object' } }] });
  created(and, filter);
  const visible = visibleFilter(filter.visibleTo);
  if (visible !== null) and.push(visible);
  return and.length === 0 ? {} : { $and: and };
}

function batchQuery(filter: BatchFilter): Document {
  const and: Document[] = [];
  if (filter.ownerId !== undefined) and.push({ ownerId: filter.ownerId });
  if (filter.status !== undefined) and.push({ status: { $in: filter.status } });
  if (filter.archived !== undefined) and.push({ archived: filter.archived });
  if (filter.active !== undefined) and.push({ active: filter.active });
  created(and, filter);
  const visible = visibleFilter(filter.visibleTo);
  if (visible !== null) and.push(visible);
  return and.length === 0 ? {} : { $and: and };
}

/** The indexes of every collection but `changes` (see `ensureChangeIndexes`). An index's key never changes under its name. */
export const INDEXES: Record<'jobs' | 'batches' | 'job_logs' | 'deliveries' | 'batch_moves', IndexDescription[]> = {
  batch_moves: [
    { key: { batchId: 1, _id: 1 }, name: 'batch' },
    { key: { at: 1 }, name: 'at' },
  ],
  jobs: [
    { key: { paused: 1, priority: -1, runAt: 1, _id: 1 }, name: 'claim', partialFilterExpression: { status: 'PENDING' } },
    { key: { leaseUntil: 1 }, name: 'lease', partialFilterExpression: { status: 'PROCESSING' } },
    { key: { status: 1, _id: -1 }, name: 'status' },
    { key: { type: 1, _id: -1 }, name: 'type' },
    { key: { batchId: 1, status: 1, _id: -1 }, name: 'batch_status' },
    { key: { ownerId: 1, _id: -1 }, name: 'owner' },
    { key: { track: 1, _id: -1 }, name: 'track', partialFilterExpression: { track: { $type: 'string' } } },
    { key: { createdAt: 1 }, name: 'created' },
    { key: { finishedAt: 1 }, name: 'finished', partialFilterExpression: { finishedAt: { $type: 'date' } } },
    { key: { readers: 1 }, name: 'readers' },
    { key: { cacheKey: 1, finishedAt: -1 }, name: 'cache', partialFilterExpression: { cacheKey: { $type: 'string' } } },
    { key: { 'ingest.source': 1, _id: -1 }, name: 'source', partialFilterExpression: { 'ingest.source': { $type: 'string' } } },
    {
      key: { ownerId: 1, idempotencyKey: 1 },
      name: 'idempotency',
      unique: true,
      partialFilterExpression: { idempotencyKey: { $type: 'string' } },
    },
  ],
  batches: [
    { key: { ownerId: 1, _id: -1 }, name: 'owner' },
    { key: { status: 1, _id: -1 }, name: 'status' },
    { key: { archived: 1, active: 1, _id: -1 }, name: 'flags' },
    { key: { createdAt: 1 }, name: 'created' },
    { key: { heldUntil: 1 }, name: 'held', partialFilterExpression: { heldUntil: { $type: 'date' } } },
    {
      key: { ownerId: 1, idempotencyKey: 1 },
      name: 'idempotency',
      unique: true,
      partialFilterExpression: { idempotencyKey: { $type: 'string' } },
    },
  ],
  job_logs: [{ key: { jobId: 1, seq: 1 }, name: 'job_seq' }],
  deliveries: [
    { key: { nextAttemptAt: 1 }, name: 'due', partialFilterExpression: { status: 'PENDING' } },
    { key: { leaseUntil: 1 }, name: 'lease', partialFilterExpression: { status: 'SENDING' } },
    { key: { jobId: 1 }, name: 'job' },
    { key: { batchId: 1 }, name: 'batch' },
    // The 410 check of every delivery claim (disabledFilter).
    { key: { batchId: 1, 'webhook.url': 1, jobId: 1 }, name: 'disabled', partialFilterExpression: { status: 'DISABLED' } },
  ],
};

class MongoTx implements Tx {
  readonly deferBatchCounts = true;
  readonly movedBatches = new Set<string>();
  private readonly o: { session: ClientSession };
  constructor(
    private readonly c: MongoEngine['collections'],
    session: ClientSession,
    readonly now: Date,
  ) {
    this.o = { session };
  }

  *getJob(id: string): Op<Job | null> {
    const doc = yield* wait(this.c.jobs.findOne({ _id: id }, this.o));
    return doc === null ? null : jobFromDoc(doc as JobDoc);
  }
  *jobByKey(ownerId: string, key: string): Op<Keyed<Job> | null> {
    const doc = (yield* wait(this.c.jobs.findOne(idempotencyFilter(ownerId, key) as Filter<JobDoc>, this.o))) as JobDoc | null;
    return doc === null ? null : { value: jobFromDoc(doc), fingerprint: doc.idempotencyHash };
  }
  *insertJobs(jobs: readonly Job[], paused: boolean, fingerprints: readonly (string | null)[]): Op<void> {
    const docs = jobs.map((job, i) => jobToDoc(job, paused, fingerprints[i] ?? null));
    if (docs.length > 0) yield* wait(this.c.jobs.insertMany(docs, { ...this.o, ordered: true }));
  }
  *loadJobs(ids: readonly string[]): Op<(Job | null)[]> {
    const docs = yield* wait(this.c.jobs.find({ _id: { $in: [...ids] } }, this.o).toArray());
    const byId = new Map(docs.map((doc) => [doc._id, jobFromDoc(doc as JobDoc)]));
    return ids.map((id) => byId.get(id) ?? null);
  }
  /** One ordered `bulkWrite`, each update conditional on the version its operation read. */
  *saveJobs(pairs: readonly { before: Job; after: Job }[]): Op<void> {
    if (pairs.length === 0) return;
    const updates: AnyBulkWriteOperation<JobDoc>[] = pairs.map(({ before, after }) => {
      const fields: Document = Object.fromEntries(MUTABLE_JOB_FIELDS.map((field) => [field, after[field]]));
      if (after.parameters !== before.parameters || after.cacheKey !== before.cacheKey || after.cachedFrom !== before.cachedFrom) {
        Object.assign(fields, { parameters: after.parameters, track: after.track, cacheKey: after.cacheKey, cachedFrom: after.cachedFrom });
      }
      if (after.accessControl !== before.accessControl) {
        Object.assign(fields, {
          accessControl: after.accessControl,
          visibility: after.accessControl.visibility,
          readers: readerEntries(after.accessControl),
        });
      }
      return { updateOne: { filter: { _id: before.id, version: before.version }, update: { $set: fields } } };
    });
    const result = yield* wait(this.c.jobs.bulkWrite(updates, { ...this.o, ordered: true }));
    if (result.matchedCount < pairs.length) {
      throw new ConflictError('a job changed concurrently; try again', { jobIds: pairs.map((p) => p.before.id) });
    }
  }
  *deleteJob(job: Job): Op<void> {
    yield* wait(this.c.jobs.deleteOne({ _id: job.id }, this.o));
    yield* wait(this.c.logs.deleteMany({ jobId: job.id }, this.o));
    yield* wait(this.c.deliveries.deleteMany({ jobId: job.id }, this.o));
  }
  *jobsOfBatch(batchId: string, page: { statuses?: readonly string[]; afterId: string | null; limit: number }): Op<Job[]> {
    const query: Document = { batchId, ...(page.afterId === null ? {} : { _id: { $gt: page.afterId } }) };
    if (page.statuses !== undefined) query.status = { $in: [...page.statuses] };
    const docs = yield* wait(
      this.c.jobs
        .find(query as Filter<JobDoc>, this.o)
        .sort({ _id: 1 })
        .limit(page.limit)
        .toArray(),
    );
    return docs.map((doc) => jobFromDoc(doc as JobDoc));
  }
  *pauseJobs(batchId: string, paused: boolean, afterId: string | null, limit: number): Op<string | null> {
    const query = { batchId, ...(afterId === null ? {} : { _id: { $gt: afterId } }) } as Filter<JobDoc>;
    const ids = (yield* wait(
      this.c.jobs.find(query, this.o).sort({ _id: 1 }).limit(limit).project<{ _id: string }>({ _id: 1 }).toArray(),
    )).map((d) => d._id);
    if (ids.length === 0) return null;
    yield* wait(this.c.jobs.updateMany({ _id: { $in: ids } }, { $set: { paused } }, this.o));
    return ids.at(-1) as string;
  }
  /** Three statements whatever `limit`: the ids in claim order, one `updateMany`, the claimed documents. */
  *claim(request: ClaimRequest, now: Date, limit: number): Op<Job[]> {
    const held = yield* wait(
      this.c.batches
        .find({ heldUntil: { $gt: now } }, this.o)
        .project<{ _id: string }>({ _id: 1 })
        .toArray(),
    );
    const query: Document = { status: 'PENDING', paused: false, runAt: { $lte: now } };
    const type: Document = {};
    if (request.types !== undefined) type.$in = request.types;
    if (request.excludeTypes !== undefined && request.excludeTypes.length > 0) type.$nin = request.excludeTypes;
    if (Object.keys(type).length > 0) query.type = type;
    if (held.length > 0) query.batchId = { $nin: held.map((b) => b._id) };
    const order = { priority: -1, runAt: 1, _id: 1 } as const;
    const ids = (yield* wait(
      this.c.jobs
        .find(query as Filter<JobDoc>, this.o)
        .sort(order)
        .limit(limit)
        .project<{ _id: string }>({ _id: 1 })
        .toArray(),
    )).map((doc) => doc._id);
    if (ids.length === 0) return [];
    // The same state change as transitions.claimed(). A transaction that claimed one of these
    // meanwhile makes this one conflict, and the driver runs the unit again.
    yield* wait(
      this.c.jobs.updateMany(
        { _id: { $in: ids }, status: 'PENDING' },
        {
          $set: {
            status: 'PROCESSING',
            leaseOwner: request.workerId,
            workerId: request.workerId,
            leaseUntil: new Date(now.getTime() + request.leaseMs),
            startedAt: now,
            finishedAt: null,
            updatedAt: now,
          },
          $inc: { attempts: 1, leaseToken: 1, version: 1 },
        },
        this.o,
      ),
    );
    const docs = yield* wait(
      this.c.jobs
        .find({ _id: { $in: ids }, status: 'PROCESSING' }, this.o)
        .sort(order)
        .toArray(),
    );
    return docs.map((doc) => jobFromDoc(doc as JobDoc));
  }
  *extendLeases(ids: readonly string[], until: Date, now: Date): Op<void> {
    if (ids.length === 0) return;
    yield* wait(
      this.c.jobs.updateMany({ _id: { $in: [...ids] } }, { $set: { leaseUntil: until, updatedAt: now }, $inc: { version: 1 } }, this.o),
    );
  }
  *expiredLeases(now: Date, limit: number): Op<Job[]> {
    const docs = yield* wait(
      this.c.jobs
        .find({ status: 'PROCESSING', leaseUntil: { $lt: now } }, this.o)
        .limit(limit)
        .toArray(),
    );
    return docs.map((doc) => jobFromDoc(doc as JobDoc));
  }
  /** Three statements for any number of jobs: the jobs' log counters moved, read back, then the lines. */
  *insertLogs(items: readonly { job: Job; entries: readonly NewLogEntry[] }[]): Op<number[][]> {
    const counts = new Map<string, number>();
    for (const { job, entries } of items) counts.set(job.id, (counts.get(job.id) ?? 0) + entries.length);
    if (counts.size === 0) return items.map(() => []);
    yield* wait(
      this.c.jobs.bulkWrite(
        [...counts].map(([id, n]) => ({ updateOne: { filter: { _id: id }, update: { $inc: { logSeq: n } } } })),
        { ...this.o, ordered: true },
      ),
    );
    const docs = yield* wait(
      this.c.jobs
        .find({ _id: { $in: [...counts.keys()] } }, this.o)
        .project<{ _id: string; logSeq?: number }>({ logSeq: 1 })
        .toArray(),
    );
    const next = new Map(docs.map((doc) => [doc._id, (doc.logSeq ?? 0) - (counts.get(doc._id) ?? 0) + 1]));
    const lines: LogDoc[] = [];
    const seqs = items.map(({ job, entries }) =>
      entries.map((entry) => {
        const seq = next.get(job.id) ?? 1;
        next.set(job.id, seq + 1);
        lines.push({
          _id: `${job.id}:${seq}`,
          jobId: job.id,
          seq,
          attempt: job.attempts,
          at: this.now,
          level: entry.level,
          message: entry.message,
        });
        return seq;
      }),
    );
    if (lines.length > 0) yield* wait(this.c.logs.insertMany(lines, { ...this.o, ordered: true }));
    return seqs;
  }
  *getBatch(id: string): Op<Batch | null> {
    const doc = yield* wait(this.c.batches.findOne({ _id: id }, this.o));
    return doc === null ? null : batchFromDoc(doc as BatchDoc);
  }
  *batchByKey(ownerId: string, key: string): Op<Keyed<Batch> | null> {
    const doc = (yield* wait(this.c.batches.findOne(idempotencyFilter(ownerId, key) as Filter<BatchDoc>, this.o))) as BatchDoc | null;
    return doc === null ? null : { value: batchFromDoc(doc), fingerprint: doc.idempotencyHash };
  }
  *insertBatch(batch: Batch, fingerprint: string | null): Op<void> {
    const { id, ...rest } = batch;
    const doc: BatchDoc = {
      _id: id,
      ...rest,
      visibility: batch.accessControl.visibility,
      readers: readerEntries(batch.accessControl),
      idempotencyHash: fingerprint,
    };
    yield* wait(this.c.batches.insertOne(doc, this.o));
  }
  *saveBatch(b: Batch): Op<void> {
    const fields = { active: b.active, archived: b.archived, counts: b.counts, status: b.status, summary: b.summary, version: b.version };
    yield* wait(this.c.batches.updateOne({ _id: b.id }, { $set: { ...fields, updatedAt: b.updatedAt, finishedAt: b.finishedAt } }, this.o));
  }
  *holdBatch(id: string, until: Date | null): Op<void> {
    yield* wait(
      this.c.batches.updateOne({ _id: id }, until === null ? { $unset: { heldUntil: '' } } : { $set: { heldUntil: until } }, this.o),
    );
  }
  *deleteBatch(id: string): Op<void> {
    yield* wait(this.c.batches.deleteOne({ _id: id }, this.o));
    yield* wait(this.c.deliveries.deleteMany({ batchId: id }, this.o));
    yield* wait(this.c.moves.deleteMany({ batchId: id }, this.o));
  }
  *insertBatchMoves(batchId: string, moves: readonly BatchMove[]): Op<void> {
    yield* wait(
      this.c.moves.insertMany(
        moves.map((move) => ({ batchId, at: this.now, move })),
        this.o,
      ),
    );
  }
  *batchMoves(batchId: string, limit: number): Op<{ ids: string[]; moves: BatchMove[] }> {
    const docs = yield* wait(this.c.moves.find({ batchId }, this.o).sort({ _id: 1 }).limit(limit).toArray());
    return { ids: docs.map((d) => String(d._id)), moves: docs.map((d) => d.move) };
  }
  *deleteBatchMoves(ids: readonly string[]): Op<void> {
    yield* wait(this.c.moves.deleteMany({ _id: { $in: ids.map((id) => new ObjectId(id)) } }, this.o));
  }
  *insertChanges(changes: readonly NewChange[]): Op<void> {
    const docs: MongoChangeDoc[] = changes.map(({ id, ...c }) => ({ ...c, entityId: id }));
    if (docs.length > 0) yield* wait(this.c.changes.insertMany(docs, { ...this.o, ordered: true }));
  }
  *insertDeliveries(deliveries: readonly Delivery[]): Op<void> {
    const docs: DeliveryDoc[] = deliveries.map(({ id, ...rest }) => ({ _id: id, ...rest }));
    if (docs.length > 0) yield* wait(this.c.deliveries.insertMany(docs, { ...this.o, ordered: true }));
  }
  *getDelivery(id: string): Op<Delivery | null> {
    const doc = yield* wait(this.c.deliveries.findOne({ _id: id }, this.o));
    return doc === null ? null : deliveryFromDoc(doc as DeliveryDoc);
  }
  *saveDelivery(after: Delivery, owner: string | null): Op<boolean> {
    const { id, ...fields } = after;
    const filter: Document = owner === null ? { _id: id } : { _id: id, status: 'SENDING', leaseOwner: owner };
    const result = yield* wait(this.c.deliveries.updateOne(filter as Filter<DeliveryDoc>, { $set: fields }, this.o));
    return result.matchedCount > 0;
  }
  *claimDeliveries(workerId: string, limit: number, now: Date, leaseUntil: Date): Op<Delivery[]> {
    const claimed: Delivery[] = [];
    while (claimed.length < limit) {
      const doc = yield* wait(
        this.c.deliveries.findOneAndUpdate(
          { status: 'PENDING', nextAttemptAt: { $lte: now } },
          { $set: { status: 'SENDING', leaseOwner: workerId, leaseUntil, updatedAt: now } },
          { sort: { nextAttemptAt: 1, _id: 1 }, returnDocument: 'after', ...this.o },
        ),
      );
      if (doc === null) break;
      claimed.push(deliveryFromDoc(doc as DeliveryDoc));
    }
    return claimed;
  }
  *disabledTarget(delivery: Delivery): Op<boolean> {
    const doc = yield* wait(
      this.c.deliveries.findOne(disabledFilter(delivery) as Filter<DeliveryDoc>, { ...this.o, projection: { _id: 1 } }),
    );
    return doc !== null;
  }
  *resetExpiredDeliveries(now: Date): Op<number> {
    const reset = { $set: { status: 'PENDING' as const, leaseOwner: null, leaseUntil: null } };
    return (yield* wait(this.c.deliveries.updateMany({ status: 'SENDING', leaseUntil: { $lt: now } }, reset, this.o))).modifiedCount;
  }
  *releaseDeliveries(workerId: string, ids: readonly string[]): Op<number> {
    const reset = { $set: { status: 'PENDING' as const, leaseOwner: null, leaseUntil: null } };
    return (yield* wait(this.c.deliveries.updateMany({ _id: { $in: [...ids] }, status: 'SENDING', leaseOwner: workerId }, reset, this.o)))
      .modifiedCount;
  }
}

export class MongoEngine implements Engine {
  readonly driver = 'mongodb';
  /** Job changes record their batch count moves: workers on one batch never conflict on its document. */
  readonly deferBatchCounts = true;
  readonly collections: {
    jobs: Collection<JobDoc>;
    batches: Collection<BatchDoc>;
    logs: Collection<LogDoc>;
    deliveries: Collection<DeliveryDoc>;
    changes: Collection<MongoChangeDoc>;
    ingest: Collection<IngestCountsDoc>;
    moves: Collection<MoveDoc>;
  };
  private readonly source: MongoChangeSource;
  private readonly hub: ChangeHub;
  /** Server clock minus this process's clock, in ms (see `measureClock`). */
  private clockOffset = 0;
  private clockTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly client: MongoClient,
    readonly db: Db,
    private readonly options: MongoEngineOptions = {},
  ) {
    this.collections = {
      jobs: db.collection('jobs'),
      batches: db.collection('batches'),
      logs: db.collection('job_logs'),
      deliveries: db.collection('deliveries'),
      changes: db.collection('changes'),
      ingest: db.collection('ingest_counts'),
      moves: db.collection('batch_moves'),
    };
    this.source = new MongoChangeSource(db, () => this.hub);
    this.hub = new ChangeHub(this.source);
  }

  /** Creates the indexes (idempotent) and starts following the server's clock. */
  async init(): Promise<void> {
    const { jobs, batches, logs, deliveries, moves } = this.collections;
    await Promise.all([
      jobs.createIndexes(INDEXES.jobs),
      batches.createIndexes(INDEXES.batches),
      logs.createIndexes(INDEXES.job_logs),
      deliveries.createIndexes(INDEXES.deliveries),
      moves.createIndexes(INDEXES.batch_moves),
      ensureChangeIndexes(this.db, { retentionHours: this.options.changesRetentionHours ?? 0 }),
    ]);
    await this.measureClock();
    this.clockTimer = setInterval(() => void this.measureClock().catch(() => undefined), 60_000);
    this.clockTimer.unref();
  }

  /** The server's clock (`hello.localTime`), less half the round trip, against ours. */
  private async measureClock(): Promise<void> {
    const sent = Date.now();
    const hello = await this.db.admin().command({ hello: 1 });
    const received = Date.now();
    if (hello.localTime instanceof Date) this.clockOffset = hello.localTime.getTime() - (sent + received) / 2;
  }

  now(): Date {
    return new Date(Date.now() + this.clockOffset);
  }

  async unit<T>(work: (tx: Tx) => Op<T>): Promise<T> {
    return this.client.withSession((session) =>
      // `now` is read inside the callback, so a retried transaction takes the time again.
      session.withTransaction(() => runAsync(work(new MongoTx(this.collections, session, this.now()))), TRANSACTION),
    );
  }

  async getJobs(ids: readonly string[]): Promise<(Job | null)[]> {
    const docs = await this.collections.jobs.find({ _id: { $in: [...ids] } }).toArray();
    const byId = new Map(docs.map((doc) => [doc._id, jobFromDoc(doc as JobDoc)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  private async page<D extends { _id: string }, T extends { id: string }>(
    collection: Collection<D>,
    query: Document,
    page: PageRequest,
    map: (doc: D) => T,
  ): Promise<Page<T>> {
    const limit = pageSize(page.first);
    const paged = page.after ? { $and: [query, { _id: { $lt: decodePageCursor(page.after) } }] } : query;
    const docs = await collection
      .find(paged as Filter<D>)
      .sort({ _id: -1 })
      .limit(limit + 1)
      .toArray();
    return toPage(
      docs.map((doc) => map(doc as D)),
      limit,
    );
  }

  listJobs(filter: JobFilter, page: PageRequest): Promise<Page<Job>> {
    return this.page(this.collections.jobs, jobQuery(filter), page, jobFromDoc);
  }

  countJobs(filter: JobFilter): Promise<number> {
    return this.collections.jobs.countDocuments(jobQuery(filter) as Filter<JobDoc>);
  }

  async stats(filter: StatsFilter, now: Date): Promise<Stats> {
    const match = jobQuery(statsJobFilter(filter));
    const jobs = this.collections.jobs;
    const grouped = async (field: string, extra: Document) => {
      const rows = await jobs
        .aggregate<{ _id: { key: string; status: Job['status'] }; count: number }>([
          { $match: { $and: [match, extra] } },
          { $group: { _id: { key: `$${field}`, status: '$status' }, count: { $sum: 1 } } },
        ])
        .toArray();
      return rows.map((r) => ({ key: r._id.key, status: r._id.status, count: r.count }));
    };
    const hourAgo = new Date(now.getTime() - 3_600_000);
    const [byType, byTrack, queueDepth, finished] = await Promise.all([
      grouped('type', {}),
      grouped('track', { track: { $type: 'string' } }),
      jobs.countDocuments({ $and: [match, { status: 'PENDING', paused: false, runAt: { $lte: now } }] } as Filter<JobDoc>),
      jobs
        .find({
          $and: [
            match,
            { finishedAt: { $gte: hourAgo, $type: 'date' }, startedAt: { $type: 'date' }, status: { $in: ['COMPLETED', 'FAILED'] } },
          ],
        } as Filter<JobDoc>)
        .project<{ startedAt: Date; finishedAt: Date }>({ startedAt: 1, finishedAt: 1 })
        .toArray(),
    ]);
    return summarizeStats(
      byType,
      byTrack,
      queueDepth,
      finished.map((j) => j.finishedAt.getTime() - j.startedAt.getTime()),
    );
  }

  async getBatches(ids: readonly string[]): Promise<(Batch | null)[]> {
    const docs = await this.collections.batches.find({ _id: { $in: [...ids] } }).toArray();
    const byId = new Map(docs.map((doc) => [doc._id, batchFromDoc(doc as BatchDoc)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  listBatches(filter: BatchFilter, page: PageRequest): Promise<Page<Batch>> {
    return this.page(this.collections.batches, batchQuery(filter), page, batchFromDoc);
  }

  countBatches(filter: BatchFilter): Promise<number> {
    return this.collections.batches.countDocuments(batchQuery(filter) as Filter<BatchDoc>);
  }

  async listLogs(jobId: string, after: number | null, limit: number): Promise<LogEntry[]> {
    const docs = await this.collections.logs
      .find({ jobId, seq: { $gt: after ?? 0 } })
      .sort({ seq: 1 })
      .limit(pageSize(limit))
      .toArray();
    return docs.map((d) => ({ seq: d.seq, jobId: d.jobId, attempt: d.attempt, at: d.at, level: d.level, message: d.message }));
  }

  async listDeliveries(filter: DeliveryFilter): Promise<Delivery[]> {
    const query: Document = {};
    if (filter.jobId !== undefined) query.jobId = filter.jobId;
    if (filter.batchId !== undefined) query.batchId = filter.batchId;
    if (Object.keys(query).length === 0) throw new ValidationError('listDeliveries needs a jobId or a batchId');
    if (filter.status !== undefined) query.status = filter.status;
    const docs = await this.collections.deliveries
      .find(query as Filter<DeliveryDoc>)
      .sort({ _id: 1 })
      .toArray();
    return docs.map((d) => deliveryFromDoc(d as DeliveryDoc));
  }

  async getDelivery(id: string): Promise<Delivery | null> {
    const doc = await this.collections.deliveries.findOne({ _id: id });
    return doc === null ? null : deliveryFromDoc(doc as DeliveryDoc);
  }

  async addIngestCounts(counts: ReadonlyMap<string, Partial<IngestCounts>>): Promise<void> {
    await this.collections.ingest.bulkWrite(
      [...counts].map(([source, delta]) => ({
        updateOne: {
          filter: { _id: source },
          update: { $inc: Object.fromEntries(INGEST_OUTCOMES.map((o) => [o, delta[o] ?? 0])) },
          upsert: true,
        },
      })),
      { ordered: false },
    );
  }

  async ingestCounts(): Promise<Map<string, IngestCounts>> {
    const docs = await this.collections.ingest.find({}).sort({ _id: 1 }).toArray();
    return new Map(docs.map((doc) => [doc._id, Object.fromEntries(INGEST_OUTCOMES.map((o) => [o, doc[o] ?? 0])) as IngestCounts]));
  }

  async batchesWithMoves(before: Date, limit: number): Promise<string[]> {
    const rows = await this.collections.moves
      .aggregate<{ _id: string }>([{ $match: { at: { $lt: before } } }, { $group: { _id: '$batchId' } }, { $limit: limit }])
      .toArray();
    return rows.map((row) => row._id);
  }

  /** The conditions of retention candidates (finished before their cutoff, not in an archived batch). */
  async retentionQuery(cutoffs: { completedBefore?: Date; failedBefore?: Date }): Promise<Document> {
    const archived = await this.collections.batches.find({ archived: true }).project<{ _id: string }>({ _id: 1 }).toArray();
    const ends: Document[] = [];
    if (cutoffs.completedBefore !== undefined)
      ends.push({ status: 'COMPLETED', finishedAt: { $lt: cutoffs.completedBefore, $type: 'date' } });
    if (cutoffs.failedBefore !== undefined) {
      ends.push({ status: { $in: ['FAILED', 'CANCELLED'] }, finishedAt: { $lt: cutoffs.failedBefore, $type: 'date' } });
    }
    return { $or: ends, batchId: { $nin: archived.map((b) => b._id) } };
  }

  async retentionCandidates(cutoffs: { completedBefore?: Date; failedBefore?: Date }, limit: number): Promise<string[]> {
    const query = (await this.retentionQuery(cutoffs)) as Filter<JobDoc>;
    const docs = await this.collections.jobs.find(query).project<{ _id: string }>({ _id: 1 }).limit(limit).toArray();
    return docs.map((doc) => doc._id);
  }

  async purgeChanges(before: Date): Promise<number> {
    // A cursor whose next change is gone expires (change-source.ts checks), as on SQLite.
    return (await this.collections.changes.deleteMany({ at: { $lt: before } })).deletedCount;
  }

  listen(after: string | null | undefined, listener: ChangeListener, keys?: readonly string[] | null): Listening {
    return this.hub.listen(after, listener, keys);
  }

  headCursor(): Promise<string | null> {
    return this.source.head();
  }

  async ping(): Promise<void> {
    await this.db.command({ ping: 1 });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.clockTimer !== null) clearInterval(this.clockTimer);
    this.hub.failAll(new Error('store closed'));
    await this.source.close();
    await this.client.close();
  }
}

/** A client whose writes outside transactions are majority-acknowledged and whose reads are majority-committed. */
export function mongoClient(
  uri: string,
  options: { maxPoolSize: number; serverSelectionTimeoutMS: number; socketTimeoutMS: number },
): MongoClient {
  return new MongoClient(uri, { ...options, writeConcern: { w: 'majority' }, readConcern: { level: 'majority' } });
}
