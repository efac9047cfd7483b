/**
 * The scale-out store: a MongoDB replica set shared by any number of API and worker
 * processes (official `mongodb` driver). Every write is a multi-document transaction
 * that also inserts its change events into the `changes` collection; one change
 * stream per process on that collection is the live feed, its resume tokens are the
 * cursors. Claims are one `findOneAndUpdate` in the claim order.
 *
 * Change streams and transactions need a replica set: start-up checks and says so.
 */
import {
  type ChangeStream,
  type ClientSession,
  type Collection,
  type Db,
  type Document,
  type Filter,
  MongoClient,
  MongoServerError,
} from 'mongodb';
import { newId } from '../../domain/ids.js';
import { batchStatus } from '../../domain/status.js';
import type { AccessControl, Batch, Delivery, Job, JobStatus, JsonObject, LogEntry, Principal, WebhookEvent } from '../../domain/types.js';
import { ConflictError, CursorExpiredError, LeaseLostError, NotFoundError, StoreUnavailableError, ValidationError } from '../../errors.js';
import { ChangeHub, type ChangeSource } from '../change-hub.js';
import type { ChangeListener, Listening } from '../change-stream.js';
import type {
  BatchFilter,
  ChangeEntity,
  ChangeEvent,
  ChangeOp,
  ClaimRequest,
  ClaimToken,
  Created,
  DeliveryFilter,
  DeliveryOutcome,
  DeliveryRecord,
  FailRequest,
  JobFilter,
  JobPatch,
  JobStore,
  Lease,
  NewBatch,
  NewJob,
  NewLogEntry,
  Page,
  PageRequest,
  PurgeRequest,
  PurgeResult,
  Stats,
  StatsFilter,
  WatchOptions,
} from '../port.js';
import { type AttemptReport, INGEST_OUTCOMES, type IngestCounts } from '../port.js';
import {
  accessChangeData,
  afterAttempt,
  batchChangeData,
  batchDeliveryPayload,
  disabledAttempt,
  emptySummary,
  jobChangeData,
  jobDeliveryPayload,
  pageSize,
  prepareBatch,
  prepareJobs,
  readerEntries,
  wantsEvent,
  withAccess,
} from '../prepare.js';
import { decodePageCursor, statsJobFilter, summarizeStats, toPage } from '../query.js';
import * as T from '../transitions.js';

export interface MongoStoreOptions {
  /** A replica set (or sharded cluster) connection string. */
  uri: string;
  /** Database name. Default `conveyor`. */
  database?: string;
  /** Connection pool size. Default 20. */
  maxPoolSize?: number;
  /** How long to wait for a server at start and for each operation's server selection. Default 10000. */
  serverSelectionTimeoutMS?: number;
  /** Socket/operation timeout. Default 30000. */
  socketTimeoutMS?: number;
  /** How often claims first recover expired leases. Default 1000. */
  leaseCheckMs?: number;
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
type BatchDoc = Omit<Batch, 'id'> & { _id: string; visibility: string; readers: string[]; idempotencyHash: string | null };
type DeliveryDoc = Omit<Delivery, 'id'> & { _id: string };
type LogDoc = { _id: string; jobId: string; seq: number; attempt: number; at: Date; level: LogEntry['level']; message: string };
type ChangeDoc = {
  at: Date;
  entity: ChangeEntity;
  op: ChangeOp;
  entityId: string;
  batchId: string | null;
  ownerId: string | null;
  status: string | null;
  version: number;
  data: JsonObject | null;
};
type MetaDoc = { _id: string; purgedBefore?: Date };
type IngestCountsDoc = { _id: string } & Partial<IngestCounts>;

/** Fields of a job that change after creation. */
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
  // Documents written before the result cache (or ingest) lack those fields.
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

function batchToDoc(batch: Batch, idempotencyHash: string | null): BatchDoc {
  const { id, ...rest } = batch;
  return { _id: id, ...rest, visibility: batch.accessControl.visibility, readers: readerEntries(batch.accessControl), idempotencyHash };
}

function batchFromDoc(doc: BatchDoc): Batch {
  const { _id, visibility: _v, readers: _r, idempotencyHash: _h, ...rest } = doc;
  // Documents written before batch summaries lack one.
  return { id: _id, ...rest, status: batchStatus(rest.counts), summary: rest.summary ?? emptySummary() };
}

function deliveryFromDoc(doc: DeliveryDoc): Delivery {
  const { _id, ...rest } = doc;
  return { id: _id, ...rest };
}

function mutableJobFields(job: Job): Partial<JobDoc> {
  return Object.fromEntries(MUTABLE_JOB_FIELDS.map((field) => [field, job[field]])) as Partial<JobDoc>;
}

/** Cursor ↔ change-stream resume token. Tokens' `_data` strings sort in stream order. */
function encodeToken(token: unknown): string {
  const data = (token as { _data?: unknown } | null)?._data;
  if (typeof data !== 'string') throw new StoreUnavailableError('the change stream returned a resume token without _data');
  return `m${data}`;
}

function decodeToken(cursor: string): { _data: string } {
  if (!/^m[0-9A-Fa-f]+$/.test(cursor)) throw new ValidationError('after: not a valid change cursor', { field: 'after' });
  return { _data: cursor.slice(1) };
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

function jobQuery(filter: JobFilter): Filter<JobDoc> {
  const and: Document[] = [];
  if (filter.status !== undefined) and.push({ status: { $in: filter.status } });
  if (filter.type !== undefined) and.push({ type: { $in: filter.type } });
  if (filter.batchId !== undefined) and.push({ batchId: filter.batchId });
  if (filter.ownerId !== undefined) and.push({ ownerId: filter.ownerId });
  if (filter.track !== undefined) and.push({ track: filter.track });
  if (filter.cacheKey !== undefined) and.push({ cacheKey: filter.cacheKey });
  if (filter.cached !== undefined)
    and.push(filter.cached ? { cachedFrom: { $type: 'string' } } : { cachedFrom: { $not: { $type: 'string' } } });
  if (filter.source !== undefined) and.push({ 'ingest.source': filter.source });
  if (filter.retrying === true) and.push({ status: 'PENDING', error: { $type: 'object' } });
  if (filter.retrying === false) and.push({ $nor: [{ status: 'PENDING', error: { $type: 'object' } }] });
  if (filter.createdAfter !== undefined) and.push({ createdAt: { $gte: filter.createdAfter } });
  if (filter.createdBefore !== undefined) and.push({ createdAt: { $lt: filter.createdBefore } });
  const visible = visibleFilter(filter.visibleTo);
  if (visible !== null) and.push(visible);
  return (and.length === 0 ? {} : { $and: and }) as Filter<JobDoc>;
}

const CHANGE_PIPELINE = [{ $match: { operationType: 'insert' } }];
/** Server error code for a resume token that fell off the oplog. */
const CHANGE_STREAM_HISTORY_LOST = 286;
/** How long a replay keeps reading empty batches while the stream scans towards the head. */
const REPLAY_CATCH_UP_MS = 10_000;

/** Writes of one transaction: collected, then applied in order inside it. */

function batchConditions(filter: BatchFilter): Document[] {
  const and: Document[] = [];
  if (filter.ownerId !== undefined) and.push({ ownerId: filter.ownerId });
  if (filter.status !== undefined) and.push({ status: { $in: filter.status } });
  if (filter.archived !== undefined) and.push({ archived: filter.archived });
  if (filter.active !== undefined) and.push({ active: filter.active });
  if (filter.createdAfter !== undefined) and.push({ createdAt: { $gte: filter.createdAfter } });
  if (filter.createdBefore !== undefined) and.push({ createdAt: { $lt: filter.createdBefore } });
  const visible = visibleFilter(filter.visibleTo);
  if (visible !== null) and.push(visible);
  return and;
}

class Tx {
  constructor(
    readonly session: ClientSession,
    readonly now: Date,
  ) {}
}

export class MongoStore implements JobStore {
  readonly driver = 'mongodb';
  private readonly db: Db;
  private readonly jobs: Collection<JobDoc>;
  private readonly batches: Collection<BatchDoc>;
  private readonly logs: Collection<LogDoc>;
  private readonly deliveries: Collection<DeliveryDoc>;
  private readonly changes: Collection<ChangeDoc>;
  private readonly meta: Collection<MetaDoc>;
  private readonly ingest: Collection<IngestCountsDoc>;
  private readonly hub: ChangeHub;
  private readonly leaseCheckMs: number;
  private lastLeaseCheck = 0;
  private live: ChangeStream<ChangeDoc> | null = null;
  private closed = false;

  constructor(
    private readonly client: MongoClient,
    database: string,
    options: MongoStoreOptions,
  ) {
    this.db = client.db(database);
    this.jobs = this.db.collection('jobs');
    this.batches = this.db.collection('batches');
    this.logs = this.db.collection('job_logs');
    this.deliveries = this.db.collection('deliveries');
    this.changes = this.db.collection('changes');
    this.meta = this.db.collection('meta');
    this.ingest = this.db.collection('ingest_counts');
    this.leaseCheckMs = options.leaseCheckMs ?? 1000;
    this.hub = new ChangeHub(this.changeSource());
  }

  /** Creates the indexes (idempotent). Called once at start-up. */
  async init(): Promise<void> {
    await Promise.all([
      this.jobs.createIndexes([
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
      ]),
      this.batches.createIndexes([
        { key: { ownerId: 1, _id: -1 }, name: 'owner' },
        { key: { status: 1, _id: -1 }, name: 'status' },
        { key: { archived: 1, active: 1, _id: -1 }, name: 'flags' },
        { key: { createdAt: 1 }, name: 'created' },
        {
          key: { ownerId: 1, idempotencyKey: 1 },
          name: 'idempotency',
          unique: true,
          partialFilterExpression: { idempotencyKey: { $type: 'string' } },
        },
      ]),
      this.logs.createIndexes([{ key: { jobId: 1, seq: 1 }, name: 'job_seq' }]),
      this.deliveries.createIndexes([
        { key: { nextAttemptAt: 1 }, name: 'due', partialFilterExpression: { status: 'PENDING' } },
        { key: { leaseUntil: 1 }, name: 'lease', partialFilterExpression: { status: 'SENDING' } },
        { key: { jobId: 1 }, name: 'job' },
        { key: { batchId: 1 }, name: 'batch' },
      ]),
      this.changes.createIndexes([{ key: { at: 1 }, name: 'at' }]),
    ]);
  }

  /** Runs `fn` in a transaction; the driver retries it on transient errors, so `fn` must only read and write. */
  private async tx<R>(fn: (tx: Tx) => Promise<R>): Promise<R> {
    return this.client.withSession((session) => session.withTransaction(() => fn(new Tx(session, new Date()))));
  }

  private async change(
    tx: Tx,
    entity: ChangeEntity,
    op: ChangeOp,
    rec: { id: string; batchId?: string | null; ownerId?: string | null; status?: string | null; version: number },
    data: JsonObject | null,
  ): Promise<void> {
    await this.changes.insertOne(
      {
        at: tx.now,
        entity,
        op,
        entityId: rec.id,
        batchId: rec.batchId ?? null,
        ownerId: rec.ownerId ?? null,
        status: rec.status ?? null,
        version: rec.version,
        data,
      },
      { session: tx.session },
    );
  }

  private async enqueueDelivery(
    tx: Tx,
    event: WebhookEvent,
    webhook: JsonObject,
    target: { jobId: string | null; batchId: string | null },
    payload: (id: string) => JsonObject,
  ): Promise<void> {
    const id = newId('dlv', tx.now.getTime());
    await this.deliveries.insertOne(
      {
        _id: id,
        event,
        jobId: target.jobId,
        batchId: target.batchId,
        webhook,
        payload: payload(id),
        status: 'PENDING',
        attempts: [],
        nextAttemptAt: tx.now,
        leaseOwner: null,
        leaseUntil: null,
        createdAt: tx.now,
        updatedAt: tx.now,
      },
      { session: tx.session },
    );
    await this.change(
      tx,
      'delivery',
      'created',
      { id, batchId: target.batchId, status: 'PENDING', version: 1 },
      { event, status: 'PENDING', jobId: target.jobId },
    );
  }

  private async loadJob(tx: Tx | null, id: string): Promise<Job> {
    const doc = await this.jobs.findOne({ _id: id }, tx === null ? {} : { session: tx.session });
    if (doc === null) throw new NotFoundError('job', id);
    return jobFromDoc(doc as JobDoc);
  }

  private async loadBatch(tx: Tx, id: string): Promise<Batch> {
    const doc = await this.batches.findOne({ _id: id }, { session: tx.session });
    if (doc === null) throw new NotFoundError('batch', id);
    return batchFromDoc(doc as BatchDoc);
  }

  private async saveBatch(tx: Tx, batch: Batch): Promise<void> {
    await this.batches.updateOne(
      { _id: batch.id },
      {
        $set: {
          active: batch.active,
          archived: batch.archived,
          counts: batch.counts,
          status: batch.status,
          summary: batch.summary,
          version: batch.version,
          updatedAt: batch.updatedAt,
          finishedAt: batch.finishedAt,
        },
      },
      { session: tx.session },
    );
    await this.change(
      tx,
      'batch',
      'updated',
      { id: batch.id, batchId: batch.id, ownerId: batch.ownerId, status: batch.status, version: batch.version },
      batchChangeData(batch),
    );
  }

  private async moveInBatch(tx: Tx, batchId: string, moves: T.BatchMove[]): Promise<void> {
    if (moves.length === 0) return;
    const { batch, finished } = T.batchMoved(await this.loadBatch(tx, batchId), moves, tx.now);
    await this.saveBatch(tx, batch);
    if (finished && wantsEvent(batch.webhook, 'batch.completed')) {
      await this.enqueueDelivery(tx, 'batch.completed', batch.webhook as JsonObject, { jobId: null, batchId: batch.id }, (id) =>
        batchDeliveryPayload(id, batch, tx.now),
      );
    }
  }

  private async commitJob(tx: Tx, before: Job, after: Job, moveBatch = true): Promise<T.Effects> {
    if (after === before) return { batchMove: null, jobEvent: null };
    const result = await this.jobs.updateOne(
      { _id: before.id, version: before.version },
      { $set: mutableJobFields(after) },
      { session: tx.session },
    );
    if (result.matchedCount === 0) throw new ConflictError(`job ${before.id} changed concurrently; try again`, { jobId: before.id });
    await this.change(tx, 'job', 'updated', after, jobChangeData(after));
    const effects = T.effectsOf(before, after);
    if (effects.jobEvent !== null) {
      const event = effects.jobEvent;
      await this.enqueueDelivery(tx, event, after.webhook as JsonObject, { jobId: after.id, batchId: after.batchId }, (id) =>
        jobDeliveryPayload(id, event, after, tx.now),
      );
    }
    if (moveBatch && effects.batchMove !== null) await this.moveInBatch(tx, effects.batchMove.batchId, [effects.batchMove]);
    return effects;
  }

  async createJobs(inputs: NewJob[]): Promise<Created<Job>[]> {
    const prepared = prepareJobs(inputs, new Date());
    return this.tx(async (tx) => {
      const out: Created<Job>[] = [];
      const fresh: JobDoc[] = [];
      const inCall = new Map<string, { job: Job; fingerprint: string | null }>();
      for (const [index, { job, fingerprint }] of prepared.entries()) {
        if (job.idempotencyKey !== null) {
          const key = `${job.ownerId}\u0000${job.idempotencyKey}`;
          const earlier = inCall.get(key);
          if (earlier !== undefined) {
            if (earlier.fingerprint !== fingerprint) {
              throw new ConflictError(`jobs[${index}]: idempotency key "${job.idempotencyKey}" was used with another payload`, {
                index,
                idempotencyKey: job.idempotencyKey,
              });
            }
            out.push({ value: earlier.job, created: false });
            continue;
          }
          inCall.set(key, { job, fingerprint });
          const existing = (await this.jobs.findOne(
            { ownerId: job.ownerId, idempotencyKey: job.idempotencyKey },
            { session: tx.session },
          )) as JobDoc | null;
          if (existing !== null) {
            if (existing.idempotencyHash !== fingerprint) {
              throw new ConflictError(`jobs[${index}]: idempotency key "${job.idempotencyKey}" was used with another payload`, {
                index,
                idempotencyKey: job.idempotencyKey,
              });
            }
            out.push({ value: jobFromDoc(existing), created: false });
            continue;
          }
        }
        fresh.push(jobToDoc(job, false, fingerprint));
        out.push({ value: job, created: true });
      }
      await this.insertJobs(tx, fresh);
      return out;
    });
  }

  private async insertJobs(tx: Tx, docs: JobDoc[]): Promise<void> {
    if (docs.length === 0) return;
    await this.jobs.insertMany(docs, { session: tx.session, ordered: true });
    await this.changes.insertMany(
      docs.map((doc) => {
        const job = jobFromDoc(doc);
        return {
          at: tx.now,
          entity: 'job',
          op: 'created',
          entityId: job.id,
          batchId: job.batchId,
          ownerId: job.ownerId,
          status: job.status,
          version: job.version,
          data: jobChangeData(job),
        };
      }),
      { session: tx.session, ordered: true },
    );
  }

  async createBatch(input: NewBatch): Promise<Created<{ batch: Batch; jobs: Job[] }>> {
    const { batch, jobs, fingerprint } = prepareBatch(input, new Date());
    return this.tx(async (tx) => {
      if (batch.idempotencyKey !== null) {
        const existing = (await this.batches.findOne(
          { ownerId: batch.ownerId, idempotencyKey: batch.idempotencyKey },
          { session: tx.session },
        )) as BatchDoc | null;
        if (existing !== null) {
          if (existing.idempotencyHash !== fingerprint) {
            throw new ConflictError(`idempotency key "${batch.idempotencyKey}" was used with another payload`, {
              idempotencyKey: batch.idempotencyKey,
            });
          }
          const docs = await this.jobs.find({ batchId: existing._id }, { session: tx.session }).sort({ _id: 1 }).toArray();
          return { value: { batch: batchFromDoc(existing), jobs: docs.map((d) => jobFromDoc(d as JobDoc)) }, created: false };
        }
      }
      await this.batches.insertOne(batchToDoc(batch, fingerprint), { session: tx.session });
      await this.change(
        tx,
        'batch',
        'created',
        { id: batch.id, batchId: batch.id, ownerId: batch.ownerId, status: batch.status, version: 1 },
        batchChangeData(batch),
      );
      await this.insertJobs(
        tx,
        jobs.map((job) => jobToDoc(job, !batch.active, null)),
      );
      return { value: { batch, jobs }, created: true };
    });
  }

  async getJobs(ids: readonly string[]): Promise<(Job | null)[]> {
    const docs = await this.jobs.find({ _id: { $in: [...ids] } }).toArray();
    const byId = new Map(docs.map((doc) => [doc._id, jobFromDoc(doc as JobDoc)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async listJobs(filter: JobFilter, page: PageRequest): Promise<Page<Job>> {
    const query = jobQuery(filter) as Document;
    const limit = pageSize(page.first);
    const paged = page.after ? { $and: [query, { _id: { $lt: decodePageCursor(page.after) } }] } : query;
    const docs = await this.jobs
      .find(paged as Filter<JobDoc>)
      .sort({ _id: -1 })
      .limit(limit + 1)
      .toArray();
    return toPage(
      docs.map((d) => jobFromDoc(d as JobDoc)),
      limit,
    );
  }

  async countJobs(filter: JobFilter): Promise<number> {
    return this.jobs.countDocuments(jobQuery(filter));
  }

  async stats(filter: StatsFilter, now: Date = new Date()): Promise<Stats> {
    const base = statsJobFilter(filter);
    const match = jobQuery(base) as Document;
    const grouped = async (field: string, extra: Document) => {
      const rows = await this.jobs
        .aggregate<{ _id: { key: string; status: JobStatus }; count: number }>([
          { $match: { $and: [match, extra] } },
          { $group: { _id: { key: `$${field}`, status: '$status' }, count: { $sum: 1 } } },
        ])
        .toArray();
      return rows.map((r) => ({ key: r._id.key, status: r._id.status, count: r.count }));
    };
    const [byType, byTrack, queueDepth, finished] = await Promise.all([
      grouped('type', {}),
      grouped('track', { track: { $type: 'string' } }),
      this.jobs.countDocuments({ $and: [match, { status: 'PENDING', paused: false, runAt: { $lte: now } }] } as Filter<JobDoc>),
      this.jobs
        .find({
          $and: [
            match,
            {
              finishedAt: { $gte: new Date(now.getTime() - 3_600_000) },
              startedAt: { $type: 'date' },
              status: { $in: ['COMPLETED', 'FAILED'] },
            },
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

  async claimNext(request: ClaimRequest): Promise<Job | null> {
    const now = request.now ?? new Date();
    if (now.getTime() - this.lastLeaseCheck >= this.leaseCheckMs) await this.recoverExpiredLeases(now);
    const typeFilter: Document = {};
    if (request.types !== undefined) typeFilter.$in = request.types;
    if (request.excludeTypes !== undefined && request.excludeTypes.length > 0) typeFilter.$nin = request.excludeTypes;
    return this.tx(async (tx) => {
      const query: Document = { status: 'PENDING', paused: false, runAt: { $lte: now } };
      if (Object.keys(typeFilter).length > 0) query.type = typeFilter;
      const before = await this.jobs.findOneAndUpdate(
        query as Filter<JobDoc>,
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
        { sort: { priority: -1, runAt: 1, _id: 1 }, returnDocument: 'before', session: tx.session },
      );
      if (before === null) return null;
      const job = jobFromDoc(before as JobDoc);
      const after = T.claimed(job, request.workerId, request.leaseMs, now);
      await this.change(tx, 'job', 'updated', after, jobChangeData(after));
      if (after.batchId !== null) await this.moveInBatch(tx, after.batchId, [{ from: 'PENDING', to: 'PROCESSING' }]);
      return after;
    });
  }

  private async fenced(tx: Tx, token: ClaimToken): Promise<Job> {
    const doc = (await this.jobs.findOne({ _id: token.jobId }, { session: tx.session })) as JobDoc | null;
    return T.checkFence(doc === null ? null : jobFromDoc(doc), token, tx.now);
  }

  async renewLease(token: ClaimToken, leaseMs: number): Promise<Lease> {
    return this.tx(async (tx) => {
      const before = await this.fenced(tx, token);
      const after = T.renewed(before, leaseMs, tx.now);
      await this.jobs.updateOne({ _id: before.id, version: before.version }, { $set: mutableJobFields(after) }, { session: tx.session });
      return { leaseUntil: after.leaseUntil as Date, cancelRequested: after.cancelRequested };
    });
  }

  async updateProgress(token: ClaimToken, progress: Parameters<JobStore['updateProgress']>[1]): Promise<void> {
    await this.tx(async (tx) => {
      const before = await this.fenced(tx, token);
      await this.commitJob(tx, before, T.withProgress(before, progress, tx.now));
    });
  }

  async appendLogs(token: ClaimToken, entries: NewLogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.tx(async (tx) => this.insertLogs(tx, await this.fenced(tx, token), entries));
  }

  /** Log lines of the job's current attempt, each with its `logged` change. */
  private async insertLogs(tx: Tx, job: Job, entries: readonly NewLogEntry[] | undefined): Promise<void> {
    if (entries === undefined || entries.length === 0) return;
    const updated = await this.jobs.findOneAndUpdate(
      { _id: job.id },
      { $inc: { logSeq: entries.length } },
      { session: tx.session, returnDocument: 'after' },
    );
    const end = (updated as JobDoc | null)?.logSeq ?? entries.length;
    const first = end - entries.length + 1;
    const docs: LogDoc[] = entries.map((entry, i) => ({
      _id: `${job.id}:${first + i}`,
      jobId: job.id,
      seq: first + i,
      attempt: job.attempts,
      at: tx.now,
      level: entry.level,
      message: entry.message,
    }));
    await this.logs.insertMany(docs, { session: tx.session });
    for (const doc of docs) {
      await this.change(tx, 'job', 'logged', job, { seq: doc.seq, level: doc.level, message: doc.message, attempt: doc.attempt });
    }
  }

  private async fencedTransition(token: ClaimToken, step: (job: Job, now: Date) => Job, logs?: readonly NewLogEntry[]): Promise<Job> {
    return this.tx(async (tx) => {
      const before = await this.fenced(tx, token);
      await this.insertLogs(tx, before, logs);
      const after = step(before, tx.now);
      await this.commitJob(tx, before, after);
      return after;
    });
  }

  async complete(token: ClaimToken, results: JsonObject | null, report?: AttemptReport): Promise<Job> {
    return this.fencedTransition(token, (job, now) => T.completed(job, results, now, report?.usage), report?.logs);
  }

  async completeAndClaim(
    token: ClaimToken,
    results: JsonObject | null,
    claim: ClaimRequest,
    report?: AttemptReport,
  ): Promise<{ completed: Job; next: Job | null }> {
    // Two transactions here: a claim's findOneAndUpdate contends across workers, and a
    // retried transaction must not redo a completion that already committed.
    const completed = await this.complete(token, results, report);
    return { completed, next: await this.claimNext(claim) };
  }

  async fail(token: ClaimToken, failure: FailRequest): Promise<Job> {
    return this.fencedTransition(token, (job, now) => T.failed(job, failure, now), failure.logs);
  }

  async markCancelled(token: ClaimToken, report?: AttemptReport): Promise<Job> {
    return this.fencedTransition(token, (job, now) => T.cancelledNow(job, now, report?.usage), report?.logs);
  }

  async release(token: ClaimToken): Promise<Job> {
    return this.fencedTransition(token, (job, now) => T.released(job, now));
  }

  async recoverExpiredLeases(now: Date = new Date()): Promise<number> {
    this.lastLeaseCheck = now.getTime();
    const expired = await this.jobs
      .find({ status: 'PROCESSING', leaseUntil: { $lt: now } })
      .project<{ _id: string }>({ _id: 1 })
      .limit(500)
      .toArray();
    let recovered = 0;
    for (const { _id } of expired) {
      const done = await this.tx(async (tx) => {
        const before = await this.loadJob(tx, _id);
        // Another process may have recovered or the worker renewed it since the scan.
        if (before.status !== 'PROCESSING' || before.leaseUntil === null || before.leaseUntil >= now) return false;
        const after = T.expired(before, tx.now);
        await this.insertLogs(tx, before, [T.expiredLogLine(before, after)]);
        await this.commitJob(tx, before, after);
        return true;
      });
      if (done) recovered++;
    }
    return recovered;
  }

  private async mutateJob(id: string, step: (job: Job, now: Date) => Job): Promise<Job> {
    return this.tx(async (tx) => {
      const before = await this.loadJob(tx, id);
      const after = step(before, tx.now);
      await this.commitJob(tx, before, after);
      return after;
    });
  }

  async cancelJob(id: string): Promise<Job> {
    return this.mutateJob(id, T.cancelRequestedFor);
  }

  async restartJob(id: string): Promise<Job> {
    return this.mutateJob(id, T.restarted);
  }

  async updateJob(id: string, patch: JobPatch): Promise<Job> {
    return this.tx(async (tx) => {
      const before = await this.loadJob(tx, id);
      const after = T.edited(before, patch, tx.now);
      const result = await this.jobs.updateOne(
        { _id: id, version: before.version },
        {
          $set: {
            parameters: after.parameters,
            track: after.track,
            cacheKey: after.cacheKey,
            cachedFrom: after.cachedFrom,
            priority: after.priority,
            runAt: after.runAt,
            maxAttempts: after.maxAttempts,
            version: after.version,
            updatedAt: after.updatedAt,
          },
        },
        { session: tx.session },
      );
      if (result.matchedCount === 0) throw new ConflictError(`job ${id} changed concurrently; try again`, { jobId: id });
      await this.change(tx, 'job', 'updated', after, jobChangeData(after));
      return after;
    });
  }

  async setJobAccess(id: string, accessControl: AccessControl): Promise<Job> {
    return this.tx(async (tx) => {
      const before = await this.loadJob(tx, id);
      const after = withAccess(before, accessControl, tx.now);
      const result = await this.jobs.updateOne(
        { _id: id, version: before.version },
        {
          $set: {
            accessControl: after.accessControl,
            visibility: after.accessControl.visibility,
            readers: readerEntries(after.accessControl),
            version: after.version,
            updatedAt: after.updatedAt,
          },
        },
        { session: tx.session },
      );
      if (result.matchedCount === 0) throw new ConflictError(`job ${id} changed concurrently; try again`, { jobId: id });
      await this.change(tx, 'job', 'updated', after, accessChangeData(after));
      return after;
    });
  }

  async deleteJob(id: string): Promise<void> {
    await this.tx(async (tx) => {
      const job = await this.loadJob(tx, id);
      T.assertDeletable(job);
      await this.removeJob(tx, job);
      if (job.batchId !== null) await this.moveInBatch(tx, job.batchId, [{ from: job.status, to: null }]);
    });
  }

  private async removeJob(tx: Tx, job: Job): Promise<void> {
    await this.jobs.deleteOne({ _id: job.id }, { session: tx.session });
    await this.logs.deleteMany({ jobId: job.id }, { session: tx.session });
    await this.deliveries.deleteMany({ jobId: job.id }, { session: tx.session });
    await this.change(tx, 'job', 'deleted', { ...job, version: job.version + 1 }, null);
  }

  async listLogs(jobId: string, after: number | null, limit: number): Promise<LogEntry[]> {
    const docs = await this.logs
      .find({ jobId, seq: { $gt: after ?? 0 } })
      .sort({ seq: 1 })
      .limit(pageSize(limit))
      .toArray();
    return docs.map((d) => ({ seq: d.seq, jobId: d.jobId, attempt: d.attempt, at: d.at, level: d.level, message: d.message }));
  }

  async getBatches(ids: readonly string[]): Promise<(Batch | null)[]> {
    const docs = await this.batches.find({ _id: { $in: [...ids] } }).toArray();
    const byId = new Map(docs.map((doc) => [doc._id, batchFromDoc(doc as BatchDoc)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async listBatches(filter: BatchFilter, page: PageRequest): Promise<Page<Batch>> {
    const and = batchConditions(filter);
    if (page.after) and.push({ _id: { $lt: decodePageCursor(page.after) } });
    const limit = pageSize(page.first);
    const docs = await this.batches
      .find((and.length === 0 ? {} : { $and: and }) as Filter<BatchDoc>)
      .sort({ _id: -1 })
      .limit(limit + 1)
      .toArray();
    return toPage(
      docs.map((d) => batchFromDoc(d as BatchDoc)),
      limit,
    );
  }

  async countBatches(filter: BatchFilter): Promise<number> {
    const and = batchConditions(filter);
    return this.batches.countDocuments((and.length === 0 ? {} : { $and: and }) as Filter<BatchDoc>);
  }

  private async mutateBatch(id: string, patch: Partial<Pick<Batch, 'active' | 'archived'>>): Promise<Batch> {
    return this.tx(async (tx) => {
      const batch = T.batchPatched(await this.loadBatch(tx, id), patch, tx.now);
      await this.saveBatch(tx, batch);
      if (patch.active !== undefined)
        await this.jobs.updateMany({ batchId: id }, { $set: { paused: !patch.active } }, { session: tx.session });
      return batch;
    });
  }

  async setBatchActive(id: string, active: boolean): Promise<Batch> {
    return this.mutateBatch(id, { active });
  }

  async archiveBatch(id: string, archived: boolean): Promise<Batch> {
    return this.mutateBatch(id, { archived });
  }

  private async batchJobsStep(id: string, statuses: JobStatus[], step: (job: Job, now: Date) => Job): Promise<Batch> {
    return this.tx(async (tx) => {
      await this.loadBatch(tx, id);
      const docs = await this.jobs
        .find({ batchId: id, status: { $in: statuses } }, { session: tx.session })
        .sort({ _id: 1 })
        .toArray();
      const moves = [];
      for (const doc of docs) {
        const before = jobFromDoc(doc as JobDoc);
        const effects = await this.commitJob(tx, before, step(before, tx.now), false);
        if (effects.batchMove !== null) moves.push(effects.batchMove);
      }
      await this.moveInBatch(tx, id, moves);
      return this.loadBatch(tx, id);
    });
  }

  async cancelBatch(id: string): Promise<Batch> {
    return this.batchJobsStep(id, ['PENDING', 'PROCESSING'], T.cancelRequestedFor);
  }

  async restartBatch(id: string, onlyFailed: boolean): Promise<Batch> {
    return this.batchJobsStep(id, onlyFailed ? ['FAILED'] : ['FAILED', 'CANCELLED', 'COMPLETED'], T.restarted);
  }

  async deleteBatch(id: string): Promise<void> {
    await this.tx(async (tx) => {
      const batch = await this.loadBatch(tx, id);
      if (batch.counts.processing > 0) {
        throw new ConflictError(`batch ${id} has ${batch.counts.processing} running jobs: cancel it before deleting it`, { batchId: id });
      }
      const docs = await this.jobs.find({ batchId: id }, { session: tx.session }).toArray();
      for (const doc of docs) await this.removeJob(tx, jobFromDoc(doc as JobDoc));
      await this.batches.deleteOne({ _id: id }, { session: tx.session });
      await this.deliveries.deleteMany({ batchId: id }, { session: tx.session });
      await this.change(
        tx,
        'batch',
        'deleted',
        { id, batchId: id, ownerId: batch.ownerId, status: batch.status, version: batch.version + 1 },
        null,
      );
    });
  }

  async listDeliveries(filter: DeliveryFilter): Promise<Delivery[]> {
    const query: Document = {};
    if (filter.jobId !== undefined) query.jobId = filter.jobId;
    if (filter.batchId !== undefined) query.batchId = filter.batchId;
    if (Object.keys(query).length === 0) throw new ValidationError('listDeliveries needs a jobId or a batchId');
    if (filter.status !== undefined) query.status = filter.status;
    const docs = await this.deliveries
      .find(query as Filter<DeliveryDoc>)
      .sort({ _id: 1 })
      .toArray();
    return docs.map((d) => deliveryFromDoc(d as DeliveryDoc));
  }

  async claimDeliveries(workerId: string, limit: number, leaseMs: number, now: Date = new Date()): Promise<Delivery[]> {
    await this.deliveries.updateMany(
      { status: 'SENDING', leaseUntil: { $lt: now } },
      { $set: { status: 'PENDING', leaseOwner: null, leaseUntil: null } },
    );
    const claimed: Delivery[] = [];
    while (claimed.length < limit) {
      const doc = await this.deliveries.findOneAndUpdate(
        { status: 'PENDING', nextAttemptAt: { $lte: now } },
        { $set: { status: 'SENDING', leaseOwner: workerId, leaseUntil: new Date(now.getTime() + leaseMs), updatedAt: now } },
        { sort: { nextAttemptAt: 1 }, returnDocument: 'after' },
      );
      if (doc === null) break;
      const delivery = deliveryFromDoc(doc as DeliveryDoc);
      // A 410 Gone disables a URL for the job, or for the whole batch of a batch's deliveries.
      const disabled = await this.deliveries.findOne({
        _id: { $ne: delivery.id },
        status: 'DISABLED',
        'webhook.url': delivery.webhook.url,
        ...(delivery.batchId !== null ? { batchId: delivery.batchId } : { jobId: delivery.jobId }),
      } as Filter<DeliveryDoc>);
      if (disabled !== null) {
        await this.recordDeliveryAttempt(delivery.id, workerId, { attempt: disabledAttempt(now), status: 'DISABLED' });
        continue;
      }
      claimed.push(delivery);
    }
    return claimed;
  }

  async releaseDeliveries(workerId: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.deliveries.updateMany(
      { _id: { $in: [...ids] }, status: 'SENDING', leaseOwner: workerId },
      { $set: { status: 'PENDING', leaseOwner: null, leaseUntil: null } },
    );
    return result.modifiedCount;
  }

  private async saveDelivery(tx: Tx, before: Delivery, after: Delivery): Promise<void> {
    const { id: _id, ...fields } = after;
    const result = await this.deliveries.updateOne(
      { _id: before.id, updatedAt: before.updatedAt },
      { $set: fields },
      { session: tx.session },
    );
    if (result.matchedCount === 0) throw new ConflictError(`delivery ${before.id} changed concurrently; try again`);
    await this.change(
      tx,
      'delivery',
      'updated',
      { id: after.id, batchId: after.batchId, status: after.status, version: after.attempts.length + 1 },
      { event: after.event, status: after.status, jobId: after.jobId },
    );
  }

  async getDelivery(id: string): Promise<Delivery | null> {
    const doc = await this.deliveries.findOne({ _id: id });
    return doc === null ? null : deliveryFromDoc(doc as DeliveryDoc);
  }

  private async loadDelivery(tx: Tx, id: string): Promise<Delivery> {
    const doc = await this.deliveries.findOne({ _id: id }, { session: tx.session });
    if (doc === null) throw new NotFoundError('delivery', id);
    return deliveryFromDoc(doc as DeliveryDoc);
  }

  async recordDeliveryAttempt(id: string, workerId: string, outcome: DeliveryOutcome): Promise<Delivery> {
    return this.tx(async (tx) => {
      const before = await this.loadDelivery(tx, id);
      if (before.status !== 'SENDING' || before.leaseOwner !== workerId) throw new LeaseLostError(id, before.attempts.length);
      const after = afterAttempt(before, outcome, tx.now);
      await this.saveDelivery(tx, before, after);
      return after;
    });
  }

  async recordDeliveryAttempts(
    workerId: string,
    outcomes: DeliveryRecord[],
    claim: { limit: number; leaseMs: number } | null,
  ): Promise<{ recorded: (Delivery | LeaseLostError)[]; claimed: Delivery[] }> {
    // Each record is its own transaction here: a replica set's commits are network round
    // trips either way, and records of different deliveries do not depend on each other.
    const recorded = await Promise.all(
      outcomes.map(({ id, outcome }) =>
        this.recordDeliveryAttempt(id, workerId, outcome).catch((error: unknown) => {
          if (error instanceof LeaseLostError) return error;
          throw error;
        }),
      ),
    );
    const claimed = claim === null || claim.limit <= 0 ? [] : await this.claimDeliveries(workerId, claim.limit, claim.leaseMs);
    return { recorded, claimed };
  }

  async redeliver(id: string): Promise<Delivery> {
    return this.tx(async (tx) => {
      const before = await this.loadDelivery(tx, id);
      if (before.status === 'SENDING' || before.status === 'PENDING') {
        throw new ConflictError(`delivery ${id} is already queued`, { deliveryId: id, status: before.status });
      }
      const after: Delivery = { ...before, status: 'PENDING', nextAttemptAt: tx.now, updatedAt: tx.now };
      await this.saveDelivery(tx, before, after);
      return after;
    });
  }

  private toEvent(change: { _id: unknown; fullDocument?: ChangeDoc }): ChangeEvent {
    const doc = change.fullDocument as ChangeDoc;
    return {
      cursor: encodeToken(change._id),
      entity: doc.entity,
      op: doc.op,
      id: doc.entityId,
      batchId: doc.batchId,
      ownerId: doc.ownerId,
      status: doc.status,
      version: doc.version,
      at: doc.at,
      data: doc.data,
    };
  }

  private async purgedBefore(): Promise<Date | null> {
    return (await this.meta.findOne({ _id: 'changes' }))?.purgedBefore ?? null;
  }

  /** The stream's position now: the post-batch resume token of an empty read. */
  private async head(): Promise<string> {
    const stream = this.changes.watch<ChangeDoc>(CHANGE_PIPELINE, { maxAwaitTimeMS: 1 });
    try {
      await stream.tryNext();
      return encodeToken(stream.resumeToken);
    } finally {
      await stream.close();
    }
  }

  private async readAfter(cursor: string | null, limit: number): Promise<ChangeEvent[]> {
    const target = await this.head();
    if (cursor === null) return [];
    const stream = this.changes.watch<ChangeDoc>(CHANGE_PIPELINE, { startAfter: decodeToken(cursor), maxAwaitTimeMS: 1 });
    const events: ChangeEvent[] = [];
    const purgedBefore = await this.purgedBefore();
    const deadline = Date.now() + REPLAY_CATCH_UP_MS;
    try {
      while (events.length < limit) {
        const change = await stream.tryNext();
        if (change === null) {
          // An empty batch can come before the stream reached the head: go on until it has.
          if (encodeToken(stream.resumeToken) >= target || Date.now() > deadline) break;
          continue;
        }
        const event = this.toEvent(change as { _id: unknown; fullDocument?: ChangeDoc });
        if (events.length === 0 && purgedBefore !== null && event.at < purgedBefore) throw new CursorExpiredError(cursor);
        events.push(event);
      }
    } catch (error) {
      if (error instanceof MongoServerError && error.code === CHANGE_STREAM_HISTORY_LOST) throw new CursorExpiredError(cursor);
      throw error;
    } finally {
      await stream.close();
    }
    return events;
  }

  private changeSource(): ChangeSource {
    return {
      readAfter: (cursor, limit) => this.readAfter(cursor, limit),
      head: () => this.head(),
      compare: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
      startLive: () => void this.runLive(),
      stopLive: () => {
        const stream = this.live;
        this.live = null;
        void stream?.close();
      },
    };
  }

  /** The one change stream of this process: publishes every insert into `changes`. */
  private async runLive(): Promise<void> {
    const position = this.hub.livePosition;
    const stream = this.changes.watch<ChangeDoc>(CHANGE_PIPELINE, position === null ? {} : { startAfter: decodeToken(position) });
    this.live = stream;
    try {
      for await (const change of stream) {
        if (this.live !== stream) break;
        this.hub.publish([this.toEvent(change as { _id: unknown; fullDocument?: ChangeDoc })]);
      }
    } catch (error) {
      // The driver resumes by itself on resumable errors; anything else ends the subscriptions.
      if (this.live === stream && !this.closed) this.hub.failAll(error);
    } finally {
      if (this.live === stream) this.live = null;
    }
  }

  watch(options: WatchOptions = {}): AsyncIterable<ChangeEvent> {
    return this.hub.subscribe(options.after, options.signal);
  }

  listen(after: string | null | undefined, listener: ChangeListener, keys?: readonly string[] | null): Listening {
    return this.hub.listen(after, listener, keys);
  }

  async headCursor(): Promise<string | null> {
    return this.head();
  }

  async addIngestCounts(counts: ReadonlyMap<string, Partial<IngestCounts>>): Promise<void> {
    if (counts.size === 0) return;
    await this.ingest.bulkWrite(
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
    const docs = await this.ingest.find({}).sort({ _id: 1 }).toArray();
    return new Map(docs.map((doc) => [doc._id, Object.fromEntries(INGEST_OUTCOMES.map((o) => [o, doc[o] ?? 0])) as IngestCounts]));
  }

  async purge(request: PurgeRequest): Promise<PurgeResult> {
    let jobs = 0;
    let changes = 0;
    const jobIds: string[] = [];
    if (request.completedBefore !== undefined || request.failedBefore !== undefined) {
      const archived = await this.batches.find({ archived: true }).project<{ _id: string }>({ _id: 1 }).toArray();
      const ends: Filter<JobDoc>[] = [];
      if (request.completedBefore !== undefined) ends.push({ status: 'COMPLETED', finishedAt: { $lt: request.completedBefore } });
      if (request.failedBefore !== undefined)
        ends.push({ status: { $in: ['FAILED', 'CANCELLED'] }, finishedAt: { $lt: request.failedBefore } });
      const filter = { $or: ends, batchId: { $nin: archived.map((b) => b._id) } } as Filter<JobDoc>;
      for (;;) {
        const batch = await this.jobs.find(filter).project<{ _id: string }>({ _id: 1 }).limit(500).toArray();
        for (const { _id } of batch) {
          await this.tx(async (tx) => {
            const job = await this.loadJob(tx, _id).catch(() => null);
            if (job === null) return;
            await this.removeJob(tx, job);
            if (job.batchId !== null && (await this.batches.countDocuments({ _id: job.batchId }, { session: tx.session })) > 0) {
              await this.moveInBatch(tx, job.batchId, [{ from: job.status, to: null }]);
            }
          });
          jobIds.push(_id);
          jobs++;
        }
        if (batch.length < 500) break;
      }
    }
    if (request.changesBefore !== undefined) {
      changes = (await this.changes.deleteMany({ at: { $lt: request.changesBefore } })).deletedCount;
      await this.meta.updateOne({ _id: 'changes' }, { $max: { purgedBefore: request.changesBefore } }, { upsert: true });
    }
    return { jobs, changes, jobIds };
  }

  async ping(): Promise<void> {
    await this.db.command({ ping: 1 });
  }

  /** Drops this store's database (tests only). */
  async dropDatabase(): Promise<void> {
    await this.db.dropDatabase();
  }

  /** The database, for GridFS result files next to the jobs (`results/gridfs`). */
  database(): Db {
    return this.db;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.failAll(new Error('store closed'));
    await this.live?.close();
    await this.client.close();
  }
}

/**
 * Connects, refuses a standalone server (no change streams or transactions there),
 * and creates the indexes.
 */
export async function createMongoStore(options: MongoStoreOptions): Promise<MongoStore> {
  const client = new MongoClient(options.uri, {
    maxPoolSize: options.maxPoolSize ?? 20,
    serverSelectionTimeoutMS: options.serverSelectionTimeoutMS ?? 10_000,
    socketTimeoutMS: options.socketTimeoutMS ?? 30_000,
  });
  try {
    await client.connect();
    const hello = await client.db('admin').command({ hello: 1 });
    if (typeof hello.setName !== 'string' && hello.msg !== 'isdbgrid') {
      throw new StoreUnavailableError(
        'MongoDB at the configured URI is a standalone server; Conveyor needs a replica set (change streams and transactions). ' +
          'Start mongod with --replSet and run rs.initiate() (a single-node replica set is enough).',
      );
    }
    const store = new MongoStore(client, options.database ?? 'conveyor', options);
    await store.init();
    return store;
  } catch (error) {
    await client.close().catch(() => {});
    if (error instanceof StoreUnavailableError) throw error;
    throw new StoreUnavailableError(`cannot use MongoDB: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
