/**
 * The embedded default store: one SQLite file (better-sqlite3), WAL mode, shared
 * safely by several processes on one machine. Every write runs in an IMMEDIATE
 * transaction, so claims are exclusive across processes; the `changes` table is the
 * change feed, tailed by sequence (poll) and nudged at once after local writes.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { newId } from '../../domain/ids.js';
import { batchStatus } from '../../domain/status.js';
import type {
  AccessControl,
  Batch,
  Delivery,
  DeliveryStatus,
  Job,
  JobStatus,
  JsonObject,
  LogEntry,
  Principal,
  WebhookEvent,
} from '../../domain/types.js';
import { ConflictError, CursorExpiredError, LeaseLostError, NotFoundError, ValidationError } from '../../errors.js';
import { ChangeHub, type ChangeSource } from '../change-hub.js';
import type { ChangeListener, Listening } from '../change-stream.js';
import type {
  AttemptReport,
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
  IngestCounts,
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
import { INGEST_OUTCOMES } from '../port.js';
import {
  accessChangeData,
  afterAttempt,
  batchChangeData,
  batchDeliveryPayload,
  disabledAttempt,
  jobChangeData,
  jobDeliveryPayload,
  pageSize,
  prepareBatch,
  prepareJobs,
  readerEntries,
  wantsEvent,
  withAccess,
} from '../prepare.js';
import { decodePageCursor, decodeSeqCursor, encodeSeqCursor, statsJobFilter, summarizeStats, toPage } from '../query.js';
import * as T from '../transitions.js';
import { MIGRATIONS } from './migrations.js';

export interface SqliteStoreOptions {
  /** The database file; its folder is created. `:memory:` works for one process. */
  path: string;
  /** How long a write waits for another process's lock before failing. Default 5000. */
  busyTimeoutMs?: number;
  /** How often the change feed looks for other processes' writes. Default 50. */
  changePollMs?: number;
  /** How often claims first recover expired leases. Default 1000. */
  leaseCheckMs?: number;
}

type Row = Record<string, unknown>;

const json = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));
const parse = <T>(text: unknown): T => (text === null || text === undefined ? null : JSON.parse(text as string)) as T;
const ms = (date: Date | null): number | null => (date === null ? null : date.getTime());
const date = (value: unknown): Date | null => (value === null || value === undefined ? null : new Date(value as number));

function reviveProgress(value: unknown): Job['progress'] {
  const p = parse<Record<string, unknown> | null>(value);
  return p === null ? null : { ...(p as unknown as NonNullable<Job['progress']>), updatedAt: new Date(p.updatedAt as string) };
}

function reviveError(e: Record<string, unknown>): Job['errors'][number] {
  return { ...(e as unknown as Job['errors'][number]), at: new Date(e.at as string) };
}

function jobFromRow(row: Row): Job {
  const error = parse<Record<string, unknown> | null>(row.error);
  return {
    id: row.id as string,
    type: row.type as string,
    parameters: parse(row.parameters),
    status: row.status as JobStatus,
    priority: row.priority as number,
    runAt: new Date(row.run_at as number),
    attempts: row.attempts as number,
    maxAttempts: row.max_attempts as number,
    progress: reviveProgress(row.progress),
    results: parse(row.results),
    error: error === null ? null : reviveError(error),
    errors: parse<Record<string, unknown>[]>(row.errors).map(reviveError),
    ownerId: row.owner_id as string,
    teamIds: parse(row.team_ids),
    accessControl: parse(row.access),
    batchId: (row.batch_id as string | null) ?? null,
    track: (row.track as string | null) ?? null,
    webhook: parse(row.webhook),
    idempotencyKey: (row.idempotency_key as string | null) ?? null,
    cacheKey: (row.cache_key as string | null) ?? null,
    cachedFrom: (row.cached_from as string | null) ?? null,
    ingest: parse(row.ingest ?? null),
    correlationId: (row.correlation_id as string | null) ?? null,
    workerId: (row.worker_id as string | null) ?? null,
    usage: parse(row.usage ?? null),
    cancelRequested: row.cancel_requested === 1,
    leaseOwner: (row.lease_owner as string | null) ?? null,
    leaseUntil: date(row.lease_until),
    leaseToken: row.lease_token as number,
    version: row.version as number,
    createdAt: new Date(row.created_at as number),
    updatedAt: new Date(row.updated_at as number),
    startedAt: date(row.started_at),
    finishedAt: date(row.finished_at),
  };
}

function batchFromRow(row: Row): Batch {
  const counts = {
    total: row.total as number,
    pending: row.pending as number,
    processing: row.processing as number,
    completed: row.completed as number,
    failed: row.failed as number,
    cancelled: row.cancelled as number,
  };
  return {
    id: row.id as string,
    name: row.name as string,
    ownerId: row.owner_id as string,
    teamIds: parse(row.team_ids),
    accessControl: parse(row.access),
    active: row.active === 1,
    archived: row.archived === 1,
    webhook: parse(row.webhook),
    metadata: parse(row.metadata),
    counts,
    status: batchStatus(counts),
    summary: {
      firstStartedAt: date(row.first_started_at),
      lastFinishedAt: date(row.last_finished_at),
      tokens: (row.tokens as number | undefined) ?? 0,
      costUsd: (row.cost_usd as number | undefined) ?? 0,
    },
    idempotencyKey: (row.idempotency_key as string | null) ?? null,
    version: row.version as number,
    createdAt: new Date(row.created_at as number),
    updatedAt: new Date(row.updated_at as number),
    finishedAt: date(row.finished_at),
  };
}

function deliveryFromRow(row: Row): Delivery {
  return {
    id: row.id as string,
    event: row.event as WebhookEvent,
    jobId: (row.job_id as string | null) ?? null,
    batchId: (row.batch_id as string | null) ?? null,
    webhook: parse(row.webhook),
    payload: parse(row.payload),
    status: row.status as DeliveryStatus,
    attempts: parse<Record<string, unknown>[]>(row.attempts).map((a) => ({
      ...(a as unknown as Delivery['attempts'][number]),
      at: new Date(a.at as string),
    })),
    nextAttemptAt: new Date(row.next_attempt_at as number),
    leaseOwner: (row.lease_owner as string | null) ?? null,
    leaseUntil: date(row.lease_until),
    createdAt: new Date(row.created_at as number),
    updatedAt: new Date(row.updated_at as number),
  };
}

function changeFromRow(row: Row): ChangeEvent {
  return {
    cursor: encodeSeqCursor(row.seq as number),
    entity: row.entity as ChangeEntity,
    op: row.op as ChangeOp,
    id: row.entity_id as string,
    batchId: (row.batch_id as string | null) ?? null,
    ownerId: (row.owner_id as string | null) ?? null,
    status: (row.status as string | null) ?? null,
    version: row.version as number,
    at: new Date(row.at as number),
    data: parse(row.data),
  };
}

function summaryColumns(batch: Batch) {
  return {
    status: batch.status,
    first_started_at: ms(batch.summary.firstStartedAt),
    last_finished_at: ms(batch.summary.lastFinishedAt),
    tokens: batch.summary.tokens,
    cost_usd: batch.summary.costUsd,
  };
}

function accessColumns(owner: { teamIds: string[]; accessControl: AccessControl }) {
  return {
    team_ids: JSON.stringify(owner.teamIds),
    access: JSON.stringify(owner.accessControl),
    visibility: owner.accessControl.visibility,
    readers: JSON.stringify(readerEntries(owner.accessControl)),
  };
}

/** Columns a state change can touch (never identity, ownership or creation data). */
const MUTABLE_JOB_COLUMNS = [
  'status',
  'priority',
  'run_at',
  'attempts',
  'max_attempts',
  'lease_token',
  'lease_owner',
  'lease_until',
  'cancel_requested',
  'progress',
  'results',
  'error',
  'errors',
  'version',
  'updated_at',
  'started_at',
  'finished_at',
  'worker_id',
  'usage',
] as const;

/**
 * Columns a new job binds. The rest of a new job's row is the same for every job
 * (PENDING, no attempts, no lease, no results) and is written as constants by
 * `INSERT_NEW_JOB`: binding fewer values makes bulk submits markedly faster.
 */
const NEW_JOB_COLUMNS = [
  'id',
  'type',
  'parameters',
  'priority',
  'run_at',
  'max_attempts',
  'owner_id',
  'team_ids',
  'access',
  'visibility',
  'readers',
  'batch_id',
  'paused',
  'track',
  'webhook',
  'idempotency_key',
  'idempotency_hash',
  'cache_key',
  'cached_from',
  'ingest',
  'source',
  'correlation_id',
  'created_at',
] as const;

const INSERT_NEW_JOB = `INSERT INTO jobs (${NEW_JOB_COLUMNS.join(', ')}, status, attempts, lease_token, cancel_requested,
  errors, version, updated_at) VALUES (${NEW_JOB_COLUMNS.map(() => '?').join(', ')}, 'PENDING', 0, 0, 0, '[]', 1, ?)`;

/**
 * Encodes new jobs for `INSERT_NEW_JOB`. JSON that a bulk submit shares between its
 * jobs (teams, access control, the `created` change summary) is encoded once.
 */
function newJobEncoder() {
  const cache = new Map<unknown, string>();
  const once = (key: unknown, encode: () => string): string => {
    let text = cache.get(key);
    if (text === undefined) {
      text = encode();
      cache.set(key, text);
    }
    return text;
  };
  return {
    row(job: Job, paused: boolean, idempotencyHash: string | null): unknown[] {
      if (job.status !== 'PENDING' || job.attempts !== 0 || job.leaseToken !== 0 || job.version !== 1) {
        throw new Error(`internal: job ${job.id} is not a new job`);
      }
      const teams = once(job.teamIds, () => JSON.stringify(job.teamIds));
      const access = once(job.accessControl, () => JSON.stringify(job.accessControl));
      return [
        job.id,
        job.type,
        JSON.stringify(job.parameters),
        job.priority,
        job.runAt.getTime(),
        job.maxAttempts,
        job.ownerId,
        teams,
        access,
        job.accessControl.visibility,
        once(`readers:${access}`, () => JSON.stringify(readerEntries(job.accessControl))),
        job.batchId,
        paused ? 1 : 0,
        job.track,
        json(job.webhook),
        job.idempotencyKey,
        idempotencyHash,
        job.cacheKey,
        job.cachedFrom,
        json(job.ingest),
        job.ingest?.source ?? null,
        job.correlationId,
        job.createdAt.getTime(),
        job.updatedAt.getTime(),
      ];
    },
    createdData: (job: Job) => once('created', () => JSON.stringify(jobChangeData(job))),
  };
}

/** Positional values for `updateJob`: MUTABLE_JOB_COLUMNS, then the id. */
function jobUpdateValues(job: Job): unknown[] {
  return [
    job.status,
    job.priority,
    job.runAt.getTime(),
    job.attempts,
    job.maxAttempts,
    job.leaseToken,
    job.leaseOwner,
    ms(job.leaseUntil),
    job.cancelRequested ? 1 : 0,
    json(job.progress),
    json(job.results),
    json(job.error),
    JSON.stringify(job.errors),
    job.version,
    job.updatedAt.getTime(),
    ms(job.startedAt),
    ms(job.finishedAt),
    job.workerId,
    json(job.usage),
    job.id,
  ];
}

/** SQL condition + parameters for "this principal may read the row" (same rule as `can()`). */
function visibleSql(principal: Principal | undefined, table: string): { sql: string; params: unknown[] } | null {
  if (principal === undefined || principal.admin) return null;
  // Anonymous callers read nothing (see domain/access.ts).
  if (principal.userId === null) return { sql: '0 = 1', params: [] };
  const entries = [`user:${principal.userId}`, ...principal.teams.map((t) => `team:${t}`)];
  return {
    sql: `(${table}.owner_id = ? OR ${table}.visibility = 'PUBLIC'
      OR EXISTS (SELECT 1 FROM json_each(${table}.readers) r WHERE r.value IN (SELECT value FROM json_each(?)))
      OR (${table}.visibility = 'TEAM' AND EXISTS (SELECT 1 FROM json_each(${table}.team_ids) t WHERE t.value IN (SELECT value FROM json_each(?)))))`,
    params: [principal.userId, JSON.stringify(entries), JSON.stringify(principal.teams)],
  };
}

function batchWhere(filter: BatchFilter): Where {
  const where = new Where();
  if (filter.ownerId !== undefined) where.add('owner_id = ?', filter.ownerId);
  if (filter.status?.length === 1) where.add('status = ?', filter.status[0]);
  else if (filter.status !== undefined) where.add('status IN (SELECT value FROM json_each(?))', JSON.stringify(filter.status));
  if (filter.archived !== undefined) where.add('archived = ?', filter.archived ? 1 : 0);
  if (filter.active !== undefined) where.add('active = ?', filter.active ? 1 : 0);
  if (filter.createdAfter !== undefined) where.add('created_at >= ?', filter.createdAfter.getTime());
  if (filter.createdBefore !== undefined) where.add('created_at < ?', filter.createdBefore.getTime());
  const visible = visibleSql(filter.visibleTo, 'batches');
  if (visible !== null) where.add(visible.sql, ...visible.params);
  return where;
}

class Where {
  readonly parts: string[] = [];
  readonly params: unknown[] = [];
  add(sql: string, ...params: unknown[]): void {
    this.parts.push(sql);
    this.params.push(...params);
  }
  get sql(): string {
    return this.parts.length === 0 ? '' : `WHERE ${this.parts.join(' AND ')}`;
  }
}

function jobWhere(filter: JobFilter): Where {
  const where = new Where();
  // One status as an equality keeps the (…, status, id) indexes' order: no sort for a page.
  if (filter.status?.length === 1) where.add('status = ?', filter.status[0]);
  else if (filter.status !== undefined) where.add('status IN (SELECT value FROM json_each(?))', JSON.stringify(filter.status));
  if (filter.type !== undefined) where.add('type IN (SELECT value FROM json_each(?))', JSON.stringify(filter.type));
  if (filter.batchId !== undefined) where.add('batch_id = ?', filter.batchId);
  if (filter.ownerId !== undefined) where.add('owner_id = ?', filter.ownerId);
  if (filter.track !== undefined) where.add('track = ?', filter.track);
  if (filter.cacheKey !== undefined) where.add('cache_key = ?', filter.cacheKey);
  if (filter.cached !== undefined) where.add(filter.cached ? 'cached_from IS NOT NULL' : 'cached_from IS NULL');
  if (filter.source !== undefined) where.add('source = ?', filter.source);
  if (filter.retrying === true) where.add("status = 'PENDING' AND error IS NOT NULL");
  if (filter.retrying === false) where.add("NOT (status = 'PENDING' AND error IS NOT NULL)");
  if (filter.createdAfter !== undefined) where.add('created_at >= ?', filter.createdAfter.getTime());
  if (filter.createdBefore !== undefined) where.add('created_at < ?', filter.createdBefore.getTime());
  const visible = visibleSql(filter.visibleTo, 'jobs');
  if (visible !== null) where.add(visible.sql, ...visible.params);
  return where;
}

export class SqliteStore implements JobStore {
  readonly driver = 'sqlite';
  private readonly db: Database.Database;
  private readonly hub: ChangeHub;
  /** Prepared delivery listings, one per filter shape. */
  private readonly deliveryLists = new Map<string, Database.Statement>();
  private readonly changePollMs: number;
  private readonly leaseCheckMs: number;
  private lastDeliveryLeaseCheck = 0;
  private lastLeaseCheck = 0;
  private pollTimer: NodeJS.Timeout | null = null;
  private nudgeScheduled = false;
  private closed = false;
  private readonly stmt: ReturnType<SqliteStore['prepareStatements']>;
  private readonly transaction: Database.Transaction<(fn: () => unknown) => unknown>;

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    this.changePollMs = options.changePollMs ?? 50;
    this.leaseCheckMs = options.leaseCheckMs ?? 1000;
    this.migrate();
    this.stmt = this.prepareStatements();
    // One transaction wrapper for every write (building one per call is measurably slower).
    this.transaction = this.db.transaction((fn: () => unknown) => fn());
    this.hub = new ChangeHub(this.changeSource());
  }

  private migrate(): void {
    this.db
      .transaction(() => {
        const version = this.db.pragma('user_version', { simple: true }) as number;
        for (let i = version; i < MIGRATIONS.length; i++) this.db.exec(MIGRATIONS[i] as string);
        if (version < MIGRATIONS.length) this.db.pragma(`user_version = ${MIGRATIONS.length}`);
      })
      .immediate();
  }

  private prepareStatements() {
    const db = this.db;
    const batchCols = [
      'id',
      'name',
      'owner_id',
      'team_ids',
      'access',
      'visibility',
      'readers',
      'active',
      'archived',
      'webhook',
      'metadata',
      'total',
      'pending',
      'processing',
      'completed',
      'failed',
      'cancelled',
      'idempotency_key',
      'idempotency_hash',
      'version',
      'created_at',
      'updated_at',
      'finished_at',
      'status',
      'first_started_at',
      'last_finished_at',
      'tokens',
      'cost_usd',
    ];
    return {
      insertJob: db.prepare(INSERT_NEW_JOB),
      updateJobAccess: db.prepare('UPDATE jobs SET access = ?, visibility = ?, readers = ?, version = ?, updated_at = ? WHERE id = ?'),
      updateJob: db.prepare(`UPDATE jobs SET ${MUTABLE_JOB_COLUMNS.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`),
      editJob: db.prepare(`UPDATE jobs SET parameters = ?, track = ?, cache_key = ?, cached_from = ?, priority = ?, run_at = ?,
        max_attempts = ?, version = ?, updated_at = ? WHERE id = ?`),
      getJob: db.prepare('SELECT * FROM jobs WHERE id = ?'),
      completeJob: db.prepare(`UPDATE jobs SET status = 'COMPLETED', results = ?, error = NULL, cancel_requested = 0,
          finished_at = ?, lease_owner = NULL, lease_until = NULL, version = version + 1, updated_at = ?
        WHERE id = ? AND status = 'PROCESSING' AND lease_token = ? AND lease_owner = ? AND lease_until >= ?
        RETURNING *`),
      getJobs: db.prepare('SELECT * FROM jobs WHERE id IN (SELECT value FROM json_each(?))'),
      jobByKey: db.prepare('SELECT * FROM jobs WHERE owner_id = ? AND idempotency_key = ?'),
      jobKeyHash: db.prepare('SELECT idempotency_hash FROM jobs WHERE id = ?'),
      expiredLeases: db.prepare(`SELECT * FROM jobs WHERE status = 'PROCESSING' AND lease_until < ? LIMIT 500`),
      deleteJob: db.prepare('DELETE FROM jobs WHERE id = ?'),
      deleteLogs: db.prepare('DELETE FROM job_logs WHERE job_id = ?'),
      deleteJobDeliveries: db.prepare('DELETE FROM deliveries WHERE job_id = ?'),
      insertLog: db.prepare('INSERT INTO job_logs (job_id, attempt, at, level, message) VALUES (?, ?, ?, ?, ?)'),
      listLogs: db.prepare('SELECT * FROM job_logs WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?'),
      insertBatch: db.prepare(`INSERT INTO batches (${batchCols.join(', ')}) VALUES (${batchCols.map((c) => `@${c}`).join(', ')})`),
      updateBatch: db.prepare(`UPDATE batches SET active = @active, archived = @archived, total = @total, pending = @pending,
        processing = @processing, completed = @completed, failed = @failed, cancelled = @cancelled, version = @version,
        updated_at = @updated_at, finished_at = @finished_at, status = @status, first_started_at = @first_started_at,
        last_finished_at = @last_finished_at, tokens = @tokens, cost_usd = @cost_usd WHERE id = @id`),
      getBatch: db.prepare('SELECT * FROM batches WHERE id = ?'),
      getBatches: db.prepare('SELECT * FROM batches WHERE id IN (SELECT value FROM json_each(?))'),
      batchByKey: db.prepare('SELECT * FROM batches WHERE owner_id = ? AND idempotency_key = ?'),
      batchJobs: db.prepare('SELECT * FROM jobs WHERE batch_id = ? ORDER BY id'),
      batchJobsIn: db.prepare('SELECT * FROM jobs WHERE batch_id = ? AND status IN (SELECT value FROM json_each(?)) ORDER BY id'),
      pauseBatchJobs: db.prepare('UPDATE jobs SET paused = ? WHERE batch_id = ?'),
      deleteBatch: db.prepare('DELETE FROM batches WHERE id = ?'),
      deleteBatchDeliveries: db.prepare('DELETE FROM deliveries WHERE batch_id = ?'),
      insertDelivery: db.prepare(`INSERT INTO deliveries (id, event, job_id, batch_id, webhook, payload, status, attempts,
        next_attempt_at, lease_owner, lease_until, created_at, updated_at)
        VALUES (@id, @event, @job_id, @batch_id, @webhook, @payload, 'PENDING', '[]', @at, NULL, NULL, @at, @at)`),
      getDelivery: db.prepare('SELECT * FROM deliveries WHERE id = ?'),
      // Fenced like job writes: only the dispatcher that holds the delivery's lease may record.
      updateOwnedDelivery: db.prepare(`UPDATE deliveries SET status = @status, attempts = @attempts, next_attempt_at = @next_attempt_at,
        lease_owner = NULL, lease_until = NULL, updated_at = @updated_at
        WHERE id = @id AND status = 'SENDING' AND lease_owner = @worker`),
      claimDueDeliveries:
        db.prepare(`UPDATE deliveries SET status = 'SENDING', lease_owner = @worker, lease_until = @until, updated_at = @now
        WHERE id IN (SELECT id FROM deliveries WHERE status = 'PENDING' AND next_attempt_at <= @now ORDER BY next_attempt_at LIMIT @limit)
        RETURNING *`),
      // A 410 Gone disables a URL for the job, or for the whole batch of a batch's deliveries.
      disabledInBatch: db.prepare(`SELECT 1 FROM deliveries INDEXED BY deliveries_disabled
        WHERE status = 'DISABLED' AND batch_id = ? AND id <> ? AND json_extract(webhook, '$.url') = ? LIMIT 1`),
      disabledForJob: db.prepare(`SELECT 1 FROM deliveries INDEXED BY deliveries_disabled
        WHERE status = 'DISABLED' AND batch_id IS NULL AND job_id = ? AND id <> ? AND json_extract(webhook, '$.url') = ? LIMIT 1`),
      releaseDeliveries: db.prepare(`UPDATE deliveries SET status = 'PENDING', lease_owner = NULL, lease_until = NULL
        WHERE status = 'SENDING' AND lease_owner = ? AND id IN (SELECT value FROM json_each(?))`),
      expiredDeliveries: db.prepare(`UPDATE deliveries SET status = 'PENDING', lease_owner = NULL, lease_until = NULL
        WHERE status = 'SENDING' AND lease_until < ?`),
      updateDelivery: db.prepare(`UPDATE deliveries SET status = @status, attempts = @attempts, next_attempt_at = @next_attempt_at,
        lease_owner = @lease_owner, lease_until = @lease_until, updated_at = @updated_at WHERE id = @id`),
      insertChange: db.prepare(`INSERT INTO changes (at, entity, op, entity_id, batch_id, owner_id, status, version, data)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      changesAfter: db.prepare('SELECT * FROM changes WHERE seq > ? ORDER BY seq LIMIT ?'),
      headSeq: db.prepare('SELECT seq FROM changes ORDER BY seq DESC LIMIT 1'),
      addIngestCounts: db.prepare(`INSERT INTO ingest_counts (source, ${INGEST_OUTCOMES.join(', ')})
        VALUES (?, ${INGEST_OUTCOMES.map(() => '?').join(', ')})
        ON CONFLICT (source) DO UPDATE SET ${INGEST_OUTCOMES.map((o) => `${o} = ${o} + excluded.${o}`).join(', ')}`),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  /** Runs `fn` in an IMMEDIATE transaction, then lets local subscribers see the changes at once. */
  private write<R>(fn: () => R): R {
    const result = this.transaction.immediate(fn) as R;
    this.nudge();
    return result;
  }

  private change(
    entity: ChangeEntity,
    op: ChangeOp,
    rec: { id: string; batchId?: string | null; ownerId?: string | null; status?: string | null; version: number },
    at: Date,
    data: JsonObject | null,
  ): void {
    this.stmt.insertChange.run(
      at.getTime(),
      entity,
      op,
      rec.id,
      rec.batchId ?? null,
      rec.ownerId ?? null,
      rec.status ?? null,
      rec.version,
      json(data),
    );
  }

  private enqueueDelivery(
    event: WebhookEvent,
    webhook: JsonObject,
    target: { jobId: string | null; batchId: string | null },
    payload: (id: string) => JsonObject,
    now: Date,
  ): void {
    const id = newId('dlv', now.getTime());
    this.stmt.insertDelivery.run({
      id,
      event,
      job_id: target.jobId,
      batch_id: target.batchId,
      webhook: JSON.stringify(webhook),
      payload: JSON.stringify(payload(id)),
      at: now.getTime(),
    });
    this.change('delivery', 'created', { id, batchId: target.batchId, status: 'PENDING', version: 1 }, now, {
      event,
      status: 'PENDING',
      jobId: target.jobId,
    });
  }

  private loadJob(id: string): Job {
    const row = this.stmt.getJob.get(id) as Row | undefined;
    if (row === undefined) throw new NotFoundError('job', id);
    return jobFromRow(row);
  }

  private loadBatch(id: string): Batch {
    const row = this.stmt.getBatch.get(id) as Row | undefined;
    if (row === undefined) throw new NotFoundError('batch', id);
    return batchFromRow(row);
  }

  private saveBatch(batch: Batch, now: Date, op: ChangeOp = 'updated'): void {
    this.stmt.updateBatch.run({
      id: batch.id,
      active: batch.active ? 1 : 0,
      archived: batch.archived ? 1 : 0,
      ...batch.counts,
      version: batch.version,
      updated_at: batch.updatedAt.getTime(),
      finished_at: ms(batch.finishedAt),
      ...summaryColumns(batch),
    });
    this.change(
      'batch',
      op,
      { id: batch.id, batchId: batch.id, ownerId: batch.ownerId, status: batch.status, version: batch.version },
      now,
      batchChangeData(batch),
    );
  }

  /** Moves jobs between a batch's counts, and writes `batch.completed` when this finished it. */
  private moveInBatch(batchId: string, moves: T.BatchMove[], now: Date): void {
    if (moves.length === 0) return;
    const { batch, finished } = T.batchMoved(this.loadBatch(batchId), moves, now);
    this.saveBatch(batch, now);
    if (finished && wantsEvent(batch.webhook, 'batch.completed')) {
      this.enqueueDelivery(
        'batch.completed',
        batch.webhook as JsonObject,
        { jobId: null, batchId: batch.id },
        (id) => batchDeliveryPayload(id, batch, now),
        now,
      );
    }
  }

  /** Persists `before → after` with its change event, outbox delivery and batch counts. */
  private commitJob(before: Job, after: Job, now: Date, moveBatch = true): T.Effects {
    if (after === before) return { batchMove: null, jobEvent: null };
    this.stmt.updateJob.run(jobUpdateValues(after));
    return this.jobWritten(before, after, now, moveBatch);
  }

  /** What follows a job write in the same transaction: its change event, outbox row and batch counts. */
  private jobWritten(before: Job, after: Job, now: Date, moveBatch = true): T.Effects {
    this.change('job', 'updated', after, now, jobChangeData(after));
    const effects = T.effectsOf(before, after);
    if (effects.jobEvent !== null) {
      const event = effects.jobEvent;
      this.enqueueDelivery(
        event,
        after.webhook as JsonObject,
        { jobId: after.id, batchId: after.batchId },
        (id) => jobDeliveryPayload(id, event, after, now),
        now,
      );
    }
    if (moveBatch && effects.batchMove !== null) this.moveInBatch(effects.batchMove.batchId, [effects.batchMove], now);
    return effects;
  }

  /** Inserts new jobs and their `created` changes (the bulk-submit path). */
  private insertJobs(jobs: Job[], paused: boolean, hashes: (string | null)[], now: Date): void {
    const encoder = newJobEncoder();
    jobs.forEach((job, i) => {
      this.stmt.insertJob.run(encoder.row(job, paused, hashes[i] ?? null));
      this.stmt.insertChange.run(
        now.getTime(),
        'job',
        'created',
        job.id,
        job.batchId,
        job.ownerId,
        job.status,
        job.version,
        encoder.createdData(job),
      );
    });
  }

  async createJobs(inputs: NewJob[]): Promise<Created<Job>[]> {
    const now = new Date();
    const prepared = prepareJobs(inputs, now);
    return this.write(() => {
      const fresh: Job[] = [];
      const hashes: (string | null)[] = [];
      const inCall = new Map<string, { job: Job; fingerprint: string | null }>();
      const out = prepared.map(({ job, fingerprint }, index): Created<Job> => {
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
            return { value: earlier.job, created: false };
          }
          inCall.set(key, { job, fingerprint });
          const row = this.stmt.jobByKey.get(job.ownerId, job.idempotencyKey) as Row | undefined;
          if (row !== undefined) {
            if (row.idempotency_hash !== fingerprint) {
              throw new ConflictError(`jobs[${index}]: idempotency key "${job.idempotencyKey}" was used with another payload`, {
                index,
                idempotencyKey: job.idempotencyKey,
              });
            }
            return { value: jobFromRow(row), created: false };
          }
        }
        fresh.push(job);
        hashes.push(fingerprint);
        return { value: job, created: true };
      });
      this.insertJobs(fresh, false, hashes, now);
      return out;
    });
  }

  async createBatch(input: NewBatch): Promise<Created<{ batch: Batch; jobs: Job[] }>> {
    const now = new Date();
    const { batch, jobs, fingerprint } = prepareBatch(input, now);
    return this.write(() => {
      if (batch.idempotencyKey !== null) {
        const row = this.stmt.batchByKey.get(batch.ownerId, batch.idempotencyKey) as Row | undefined;
        if (row !== undefined) {
          if (row.idempotency_hash !== fingerprint) {
            throw new ConflictError(`idempotency key "${batch.idempotencyKey}" was used with another payload`, {
              idempotencyKey: batch.idempotencyKey,
            });
          }
          const existing = batchFromRow(row);
          const existingJobs = (this.stmt.batchJobs.all(existing.id) as Row[]).map(jobFromRow);
          return { value: { batch: existing, jobs: existingJobs }, created: false };
        }
      }
      this.stmt.insertBatch.run({
        id: batch.id,
        name: batch.name,
        owner_id: batch.ownerId,
        ...accessColumns(batch),
        active: batch.active ? 1 : 0,
        archived: 0,
        webhook: json(batch.webhook),
        metadata: json(batch.metadata),
        ...batch.counts,
        idempotency_key: batch.idempotencyKey,
        idempotency_hash: fingerprint,
        version: batch.version,
        created_at: now.getTime(),
        updated_at: now.getTime(),
        finished_at: null,
        ...summaryColumns(batch),
      });
      this.change(
        'batch',
        'created',
        { id: batch.id, batchId: batch.id, ownerId: batch.ownerId, status: batch.status, version: 1 },
        now,
        batchChangeData(batch),
      );
      this.insertJobs(jobs, !batch.active, [], now);
      return { value: { batch, jobs }, created: true };
    });
  }

  async getJobs(ids: readonly string[]): Promise<(Job | null)[]> {
    const rows = this.stmt.getJobs.all(JSON.stringify(ids)) as Row[];
    const byId = new Map(rows.map((row) => [row.id as string, jobFromRow(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async listJobs(filter: JobFilter, page: PageRequest): Promise<Page<Job>> {
    const where = jobWhere(filter);
    if (page.after) where.add('id < ?', decodePageCursor(page.after));
    const limit = pageSize(page.first);
    const rows = this.db.prepare(`SELECT * FROM jobs ${where.sql} ORDER BY id DESC LIMIT ?`).all(...where.params, limit + 1) as Row[];
    return toPage(rows.map(jobFromRow), limit);
  }

  async countJobs(filter: JobFilter): Promise<number> {
    const where = jobWhere(filter);
    return (this.db.prepare(`SELECT count(*) AS n FROM jobs ${where.sql}`).get(...where.params) as { n: number }).n;
  }

  async stats(filter: StatsFilter, now: Date = new Date()): Promise<Stats> {
    const base = statsJobFilter(filter);
    const where = jobWhere(base);
    const and = where.parts.length === 0 ? 'WHERE' : `${where.sql} AND`;
    const byType = this.db
      .prepare(`SELECT type AS key, status, count(*) AS count FROM jobs ${where.sql} GROUP BY type, status`)
      .all(...where.params) as Stats['byType'];
    const byTrack = this.db
      .prepare(`SELECT track AS key, status, count(*) AS count FROM jobs ${and} track IS NOT NULL GROUP BY track, status`)
      .all(...where.params) as Stats['byTrack'];
    const depth = this.db
      .prepare(`SELECT count(*) AS n FROM jobs ${and} status = 'PENDING' AND paused = 0 AND run_at <= ?`)
      .get(...where.params, now.getTime()) as { n: number };
    const hourAgo = now.getTime() - 3_600_000;
    const durations = this.db
      .prepare(
        `SELECT finished_at - started_at AS d FROM jobs ${and} finished_at >= ? AND started_at IS NOT NULL AND status IN ('COMPLETED', 'FAILED')`,
      )
      .pluck()
      .all(...where.params, hourAgo) as number[];
    return summarizeStats(byType, byTrack, depth.n, durations);
  }

  async claimNext(request: ClaimRequest): Promise<Job | null> {
    const now = request.now ?? new Date();
    if (now.getTime() - this.lastLeaseCheck >= this.leaseCheckMs) await this.recoverExpiredLeases(now);
    return this.write(() => this.claimNow(request, now));
  }

  private claimNow(request: ClaimRequest, now: Date): Job | null {
    const t = now.getTime();
    const row = this.claimStatement(request).get(
      request.workerId,
      request.workerId,
      t + request.leaseMs,
      t,
      t,
      ...this.claimParams(request, now),
    ) as Row | undefined;
    if (row === undefined) return null;
    const after = jobFromRow(row);
    this.jobWritten({ ...after, status: 'PENDING' }, after, now);
    return after;
  }

  private readonly claimStatements = new Map<string, Database.Statement>();

  /**
   * The claim query for this request's type filters, prepared once per shape. It is
   * pinned to the partial claim index: without statistics the planner may prefer the
   * status index and sort every pending job.
   */
  private claimStatement(request: ClaimRequest): Database.Statement {
    const include = request.types !== undefined;
    const exclude = request.excludeTypes !== undefined && request.excludeTypes.length > 0;
    const key = `${include}:${exclude}`;
    let statement = this.claimStatements.get(key);
    if (statement === undefined) {
      // The same state change as transitions.claimed(), in one statement (the hot path).
      statement = this.db.prepare(`UPDATE jobs SET status = 'PROCESSING', attempts = attempts + 1,
          lease_token = lease_token + 1, lease_owner = ?, worker_id = ?, lease_until = ?, started_at = ?, finished_at = NULL,
          version = version + 1, updated_at = ?
        WHERE id = (SELECT id FROM jobs INDEXED BY jobs_claim
          WHERE status = 'PENDING' AND paused = 0 AND run_at <= ?
          ${include ? 'AND type IN (SELECT value FROM json_each(?))' : ''}
          ${exclude ? 'AND type NOT IN (SELECT value FROM json_each(?))' : ''}
          ORDER BY priority DESC, run_at, id LIMIT 1)
        RETURNING *`);
      this.claimStatements.set(key, statement);
    }
    return statement;
  }

  private claimParams(request: ClaimRequest, now: Date): unknown[] {
    const params: unknown[] = [now.getTime()];
    if (request.types !== undefined) params.push(JSON.stringify(request.types));
    if (request.excludeTypes !== undefined && request.excludeTypes.length > 0) params.push(JSON.stringify(request.excludeTypes));
    return params;
  }

  /** Loads the job of a claim inside the current transaction, refusing stale tokens. */
  private fenced(token: ClaimToken, now: Date): Job {
    const row = this.stmt.getJob.get(token.jobId) as Row | undefined;
    return T.checkFence(row === undefined ? null : jobFromRow(row), token, now);
  }

  async renewLease(token: ClaimToken, leaseMs: number): Promise<Lease> {
    const now = new Date();
    return this.write(() => {
      const before = this.fenced(token, now);
      const after = T.renewed(before, leaseMs, now);
      // A renewal is not news to subscribers: no change event.
      this.stmt.updateJob.run(jobUpdateValues(after));
      return { leaseUntil: after.leaseUntil as Date, cancelRequested: after.cancelRequested };
    });
  }

  async updateProgress(token: ClaimToken, progress: Parameters<JobStore['updateProgress']>[1]): Promise<void> {
    const now = new Date();
    this.write(() => {
      const before = this.fenced(token, now);
      this.commitJob(before, T.withProgress(before, progress, now), now);
    });
  }

  async appendLogs(token: ClaimToken, entries: NewLogEntry[]): Promise<void> {
    const now = new Date();
    this.write(() => this.insertLogs(this.fenced(token, now), entries, now));
  }

  /** Log lines of the job's current attempt, each with its `logged` change. */
  private insertLogs(job: Job, entries: readonly NewLogEntry[] | undefined, now: Date): void {
    for (const entry of entries ?? []) {
      const seq = Number(this.stmt.insertLog.run(job.id, job.attempts, now.getTime(), entry.level, entry.message).lastInsertRowid);
      this.change('job', 'logged', job, now, { seq, level: entry.level, message: entry.message, attempt: job.attempts });
    }
  }

  private fencedTransition(token: ClaimToken, step: (job: Job, now: Date) => Job, logs?: readonly NewLogEntry[]): Job {
    const now = new Date();
    return this.write(() => {
      const before = this.fenced(token, now);
      this.insertLogs(before, logs, now);
      const after = step(before, now);
      this.commitJob(before, after, now);
      return after;
    });
  }

  async complete(token: ClaimToken, results: JsonObject | null, report?: AttemptReport): Promise<Job> {
    const now = new Date();
    return this.write(() => this.completeNow(token, results, now, report));
  }

  async completeAndClaim(
    token: ClaimToken,
    results: JsonObject | null,
    claim: ClaimRequest,
    report?: AttemptReport,
  ): Promise<{ completed: Job; next: Job | null }> {
    const now = claim.now ?? new Date();
    if (now.getTime() - this.lastLeaseCheck >= this.leaseCheckMs) await this.recoverExpiredLeases(now);
    return this.write(() => ({ completed: this.completeNow(token, results, now, report), next: this.claimNow(claim, now) }));
  }

  /**
   * The same state change as transitions.completed(), fenced in the WHERE clause (the hot
   * path); an attempt that reports usage takes the general path (the sums need the row).
   */
  private completeNow(token: ClaimToken, results: JsonObject | null, now: Date, report?: AttemptReport): Job {
    if (report?.usage != null) {
      const before = this.fenced(token, now);
      this.insertLogs(before, report.logs, now);
      const after = T.completed(before, results, now, report.usage);
      this.commitJob(before, after, now);
      return after;
    }
    const t = now.getTime();
    const row = this.stmt.completeJob.get(json(results), t, t, token.jobId, token.leaseToken, token.workerId, t) as Row | undefined;
    if (row === undefined) throw new LeaseLostError(token.jobId, token.leaseToken);
    const after = jobFromRow(row);
    // The lines belong before the completion in the feed, as the general path writes them.
    this.insertLogs(after, report?.logs, now);
    this.jobWritten({ ...after, status: 'PROCESSING' }, after, now);
    return after;
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
    let total = 0;
    for (;;) {
      const count = this.write(() => {
        const rows = this.stmt.expiredLeases.all(now.getTime()) as Row[];
        for (const row of rows) {
          const before = jobFromRow(row);
          const after = T.expired(before, now);
          this.insertLogs(before, [T.expiredLogLine(before, after)], now);
          this.commitJob(before, after, now);
        }
        return rows.length;
      });
      total += count;
      if (count < 500) return total;
    }
  }

  private mutateJob(id: string, step: (job: Job, now: Date) => Job): Job {
    const now = new Date();
    return this.write(() => {
      const before = this.loadJob(id);
      const after = step(before, now);
      this.commitJob(before, after, now);
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
    const now = new Date();
    return this.write(() => {
      const before = this.loadJob(id);
      const after = T.edited(before, patch, now);
      this.stmt.editJob.run(
        JSON.stringify(after.parameters),
        after.track,
        after.cacheKey,
        after.cachedFrom,
        after.priority,
        after.runAt.getTime(),
        after.maxAttempts,
        after.version,
        now.getTime(),
        id,
      );
      this.jobWritten(before, after, now);
      return after;
    });
  }

  async setJobAccess(id: string, accessControl: AccessControl): Promise<Job> {
    const now = new Date();
    return this.write(() => {
      const after = withAccess(this.loadJob(id), accessControl, now);
      const access = accessColumns(after);
      this.stmt.updateJobAccess.run(access.access, access.visibility, access.readers, after.version, now.getTime(), id);
      this.change('job', 'updated', after, now, accessChangeData(after));
      return after;
    });
  }

  async deleteJob(id: string): Promise<void> {
    const now = new Date();
    this.write(() => {
      const job = this.loadJob(id);
      T.assertDeletable(job);
      this.removeJob(job, now);
      if (job.batchId !== null) this.moveInBatch(job.batchId, [{ from: job.status, to: null }], now);
    });
  }

  private removeJob(job: Job, now: Date): void {
    this.stmt.deleteJob.run(job.id);
    this.stmt.deleteLogs.run(job.id);
    this.stmt.deleteJobDeliveries.run(job.id);
    this.change('job', 'deleted', { ...job, version: job.version + 1 }, now, null);
  }

  async listLogs(jobId: string, after: number | null, limit: number): Promise<LogEntry[]> {
    const rows = this.stmt.listLogs.all(jobId, after ?? 0, pageSize(limit)) as Row[];
    return rows.map((row) => ({
      seq: row.seq as number,
      jobId: row.job_id as string,
      attempt: row.attempt as number,
      at: new Date(row.at as number),
      level: row.level as LogEntry['level'],
      message: row.message as string,
    }));
  }

  async getBatches(ids: readonly string[]): Promise<(Batch | null)[]> {
    const rows = this.stmt.getBatches.all(JSON.stringify(ids)) as Row[];
    const byId = new Map(rows.map((row) => [row.id as string, batchFromRow(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async listBatches(filter: BatchFilter, page: PageRequest): Promise<Page<Batch>> {
    const where = batchWhere(filter);
    if (page.after) where.add('id < ?', decodePageCursor(page.after));
    const limit = pageSize(page.first);
    const rows = this.db.prepare(`SELECT * FROM batches ${where.sql} ORDER BY id DESC LIMIT ?`).all(...where.params, limit + 1) as Row[];
    return toPage(rows.map(batchFromRow), limit);
  }

  async countBatches(filter: BatchFilter): Promise<number> {
    const where = batchWhere(filter);
    return (this.db.prepare(`SELECT count(*) AS n FROM batches ${where.sql}`).get(...where.params) as { n: number }).n;
  }

  private mutateBatch(id: string, step: (batch: Batch, now: Date) => Batch, after?: (batch: Batch) => void): Batch {
    const now = new Date();
    return this.write(() => {
      const batch = step(this.loadBatch(id), now);
      this.saveBatch(batch, now);
      after?.(batch);
      return batch;
    });
  }

  async setBatchActive(id: string, active: boolean): Promise<Batch> {
    return this.mutateBatch(
      id,
      (b, now) => T.batchPatched(b, { active }, now),
      () => this.stmt.pauseBatchJobs.run(active ? 0 : 1, id),
    );
  }

  async archiveBatch(id: string, archived: boolean): Promise<Batch> {
    return this.mutateBatch(id, (b, now) => T.batchPatched(b, { archived }, now));
  }

  /** Applies `step` to the batch's jobs in `statuses`, with one count update for all of them. */
  private batchJobsStep(id: string, statuses: JobStatus[], step: (job: Job, now: Date) => Job): Batch {
    const now = new Date();
    return this.write(() => {
      this.loadBatch(id);
      const rows = this.stmt.batchJobsIn.all(id, JSON.stringify(statuses)) as Row[];
      const moves = [];
      for (const row of rows) {
        const before = jobFromRow(row);
        const effects = this.commitJob(before, step(before, now), now, false);
        if (effects.batchMove !== null) moves.push(effects.batchMove);
      }
      this.moveInBatch(id, moves, now);
      return this.loadBatch(id);
    });
  }

  async cancelBatch(id: string): Promise<Batch> {
    return this.batchJobsStep(id, ['PENDING', 'PROCESSING'], T.cancelRequestedFor);
  }

  async restartBatch(id: string, onlyFailed: boolean): Promise<Batch> {
    return this.batchJobsStep(id, onlyFailed ? ['FAILED'] : ['FAILED', 'CANCELLED', 'COMPLETED'], T.restarted);
  }

  async deleteBatch(id: string): Promise<void> {
    const now = new Date();
    this.write(() => {
      const batch = this.loadBatch(id);
      if (batch.counts.processing > 0) {
        throw new ConflictError(`batch ${id} has ${batch.counts.processing} running jobs: cancel it before deleting it`, { batchId: id });
      }
      for (const row of this.stmt.batchJobs.all(id) as Row[]) this.removeJob(jobFromRow(row), now);
      this.stmt.deleteBatch.run(id);
      this.stmt.deleteBatchDeliveries.run(id);
      this.change(
        'batch',
        'deleted',
        { id, batchId: id, ownerId: batch.ownerId, status: batch.status, version: batch.version + 1 },
        now,
        null,
      );
    });
  }

  async listDeliveries(filter: DeliveryFilter): Promise<Delivery[]> {
    const where = new Where();
    if (filter.jobId !== undefined) where.add('job_id = ?', filter.jobId);
    if (filter.batchId !== undefined) where.add('batch_id = ?', filter.batchId);
    if (where.parts.length === 0) throw new ValidationError('listDeliveries needs a jobId or a batchId');
    if (filter.status !== undefined) where.add('status = ?', filter.status);
    const sql = `SELECT * FROM deliveries ${where.sql} ORDER BY id`;
    let statement = this.deliveryLists.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.deliveryLists.set(sql, statement);
    }
    return (statement.all(...where.params) as Row[]).map(deliveryFromRow);
  }

  async claimDeliveries(workerId: string, limit: number, leaseMs: number, now: Date = new Date()): Promise<Delivery[]> {
    return this.write(() => this.claimDeliveriesNow(workerId, limit, leaseMs, now));
  }

  private claimDeliveriesNow(workerId: string, limit: number, leaseMs: number, now: Date): Delivery[] {
    // Expired delivery leases are looked for at most every leaseCheckMs, like job leases.
    if (now.getTime() - this.lastDeliveryLeaseCheck >= this.leaseCheckMs) {
      this.stmt.expiredDeliveries.run(now.getTime());
      this.lastDeliveryLeaseCheck = now.getTime();
    }
    const claimed: Delivery[] = [];
    for (;;) {
      const want = limit - claimed.length;
      // One statement leases the whole page; RETURNING order is unspecified, so sort.
      const rows = this.stmt.claimDueDeliveries.all({
        worker: workerId,
        until: now.getTime() + leaseMs,
        now: now.getTime(),
        limit: want,
      }) as Row[];
      const page = rows
        .map(deliveryFromRow)
        .sort((a, b) => a.nextAttemptAt.getTime() - b.nextAttemptAt.getTime() || a.id.localeCompare(b.id));
      let skipped = 0;
      for (const delivery of page) {
        const disabled =
          delivery.batchId !== null
            ? this.stmt.disabledInBatch.get(delivery.batchId, delivery.id, delivery.webhook.url)
            : this.stmt.disabledForJob.get(delivery.jobId, delivery.id, delivery.webhook.url);
        if (disabled !== undefined) {
          this.recordClaimedNow(delivery, workerId, { attempt: disabledAttempt(now), status: 'DISABLED' }, now);
          skipped++;
          continue;
        }
        claimed.push(delivery);
      }
      // Disabled deliveries made room: look again, until no more are due.
      if (skipped === 0 || rows.length < want) return claimed;
    }
  }

  /** Writes a delivery's state; with `changedAt`, also the change event subscribers see (not for claims). */
  private saveDelivery(d: Delivery, changedAt?: Date): void {
    this.stmt.updateDelivery.run({
      id: d.id,
      status: d.status,
      attempts: JSON.stringify(d.attempts),
      next_attempt_at: d.nextAttemptAt.getTime(),
      lease_owner: d.leaseOwner,
      lease_until: ms(d.leaseUntil),
      updated_at: d.updatedAt.getTime(),
    });
    if (changedAt !== undefined) this.deliveryChanged(d, changedAt);
  }

  private deliveryChanged(d: Delivery, at: Date): void {
    this.change('delivery', 'updated', { id: d.id, batchId: d.batchId, status: d.status, version: d.attempts.length + 1 }, at, {
      event: d.event,
      status: d.status,
      jobId: d.jobId,
    });
  }

  async getDelivery(id: string): Promise<Delivery | null> {
    const row = this.stmt.getDelivery.get(id) as Row | undefined;
    return row === undefined ? null : deliveryFromRow(row);
  }

  private loadDelivery(id: string): Delivery {
    const row = this.stmt.getDelivery.get(id) as Row | undefined;
    if (row === undefined) throw new NotFoundError('delivery', id);
    return deliveryFromRow(row);
  }

  async recordDeliveryAttempt(id: string, workerId: string, outcome: DeliveryOutcome): Promise<Delivery> {
    const now = new Date();
    return this.write(() => this.recordDeliveryNow(id, workerId, outcome, now));
  }

  async recordDeliveryAttempts(
    workerId: string,
    outcomes: DeliveryRecord[],
    claim: { limit: number; leaseMs: number } | null,
  ): Promise<{ recorded: (Delivery | LeaseLostError)[]; claimed: Delivery[] }> {
    const now = new Date();
    return this.write(() => {
      const recorded = outcomes.map(({ id, outcome, claimed }) => {
        try {
          return claimed === undefined
            ? this.recordDeliveryNow(id, workerId, outcome, now)
            : this.recordClaimedNow(claimed, workerId, outcome, now);
        } catch (error) {
          if (error instanceof LeaseLostError) return error;
          throw error;
        }
      });
      const claimed = claim === null || claim.limit <= 0 ? [] : this.claimDeliveriesNow(workerId, claim.limit, claim.leaseMs, now);
      return { recorded, claimed };
    });
  }

  /**
   * Records an attempt on the record the dispatcher claimed, without reading it back:
   * while the lease holds nobody else changes it, and the fenced UPDATE refuses the
   * write when the lease was lost.
   */
  private recordClaimedNow(claimed: Delivery, workerId: string, outcome: DeliveryOutcome, now: Date): Delivery {
    const after = afterAttempt(claimed, outcome, now);
    const result = this.stmt.updateOwnedDelivery.run({
      id: after.id,
      worker: workerId,
      status: after.status,
      attempts: JSON.stringify(after.attempts),
      next_attempt_at: after.nextAttemptAt.getTime(),
      updated_at: now.getTime(),
    });
    if (result.changes === 0) throw new LeaseLostError(after.id, claimed.attempts.length);
    this.deliveryChanged(after, now);
    return after;
  }

  private recordDeliveryNow(id: string, workerId: string, outcome: DeliveryOutcome, now: Date): Delivery {
    const before = this.loadDelivery(id);
    if (before.status !== 'SENDING' || before.leaseOwner !== workerId) throw new LeaseLostError(id, before.attempts.length);
    const after = afterAttempt(before, outcome, now);
    this.saveDelivery(after, now);
    return after;
  }

  async releaseDeliveries(workerId: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.write(() => this.stmt.releaseDeliveries.run(workerId, JSON.stringify(ids)).changes);
  }

  async redeliver(id: string): Promise<Delivery> {
    const now = new Date();
    return this.write(() => {
      const before = this.loadDelivery(id);
      if (before.status === 'SENDING' || before.status === 'PENDING') {
        throw new ConflictError(`delivery ${id} is already queued`, { deliveryId: id, status: before.status });
      }
      const after: Delivery = { ...before, status: 'PENDING', nextAttemptAt: now, updatedAt: now };
      this.saveDelivery(after, now);
      return after;
    });
  }

  private changeSource(): ChangeSource {
    return {
      readAfter: async (cursor, limit) => this.readChangesAfter(cursor === null ? 0 : decodeSeqCursor(cursor), limit, cursor),
      head: async () => {
        const row = this.stmt.headSeq.get() as { seq: number } | undefined;
        return row === undefined ? encodeSeqCursor(this.purgedThrough()) : encodeSeqCursor(row.seq);
      },
      compare: (a, b) => decodeSeqCursor(a) - decodeSeqCursor(b),
      startLive: () => {
        this.pollTimer = setInterval(() => this.pump(), this.changePollMs);
        this.pollTimer.unref();
      },
      stopLive: () => {
        if (this.pollTimer !== null) clearInterval(this.pollTimer);
        this.pollTimer = null;
      },
    };
  }

  private purgedThrough(): number {
    const row = this.stmt.getMeta.get('changes_purged_through') as { value: string } | undefined;
    return row === undefined ? 0 : Number(row.value);
  }

  private readChangesAfter(seq: number, limit: number, cursor: string | null): ChangeEvent[] {
    if (cursor !== null && seq < this.purgedThrough()) throw new CursorExpiredError(cursor);
    return (this.stmt.changesAfter.all(seq, limit) as Row[]).map(changeFromRow);
  }

  /** Publishes committed changes past the hub's position to local subscribers. */
  private pump(): void {
    if (this.closed || this.hub.subscriberCount === 0) return;
    try {
      for (;;) {
        const position = this.hub.livePosition;
        const events = this.readChangesAfter(position === null ? 0 : decodeSeqCursor(position), 1000, null);
        this.hub.publish(events);
        if (events.length < 1000) return;
      }
    } catch (error) {
      this.hub.failAll(error);
    }
  }

  private nudge(): void {
    if (this.nudgeScheduled || this.hub.subscriberCount === 0) return;
    this.nudgeScheduled = true;
    setImmediate(() => {
      this.nudgeScheduled = false;
      this.pump();
    });
  }

  watch(options: WatchOptions = {}): AsyncIterable<ChangeEvent> {
    return this.hub.subscribe(options.after, options.signal);
  }

  listen(after: string | null | undefined, listener: ChangeListener, keys?: readonly string[] | null): Listening {
    return this.hub.listen(after, listener, keys);
  }

  async headCursor(): Promise<string | null> {
    const row = this.stmt.headSeq.get() as { seq: number } | undefined;
    return row === undefined ? null : encodeSeqCursor(row.seq);
  }

  async addIngestCounts(counts: ReadonlyMap<string, Partial<IngestCounts>>): Promise<void> {
    if (counts.size === 0) return;
    this.write(() => {
      for (const [source, delta] of counts) {
        const values = INGEST_OUTCOMES.map((outcome) => delta[outcome] ?? 0);
        this.stmt.addIngestCounts.run(source, ...values);
      }
    });
  }

  async ingestCounts(): Promise<Map<string, IngestCounts>> {
    const rows = this.db.prepare('SELECT * FROM ingest_counts ORDER BY source').all() as Row[];
    return new Map(
      rows.map((row) => [row.source as string, Object.fromEntries(INGEST_OUTCOMES.map((o) => [o, row[o] as number])) as IngestCounts]),
    );
  }

  async purge(request: PurgeRequest): Promise<PurgeResult> {
    const now = new Date();
    let jobs = 0;
    let changes = 0;
    const jobIds: string[] = [];
    if (request.completedBefore !== undefined || request.failedBefore !== undefined) {
      const completed = request.completedBefore?.getTime() ?? Number.MIN_SAFE_INTEGER;
      const failed = request.failedBefore?.getTime() ?? Number.MIN_SAFE_INTEGER;
      const select = this.db.prepare(`SELECT * FROM jobs
        WHERE ((status = 'COMPLETED' AND finished_at < ?) OR (status IN ('FAILED', 'CANCELLED') AND finished_at < ?))
          AND (batch_id IS NULL OR batch_id NOT IN (SELECT id FROM batches WHERE archived = 1))
        LIMIT 500`);
      for (;;) {
        const removed = this.write(() => {
          const rows = select.all(completed, failed) as Row[];
          const byBatch = new Map<string, { from: JobStatus; to: null }[]>();
          for (const row of rows) {
            const job = jobFromRow(row);
            this.removeJob(job, now);
            jobIds.push(job.id);
            if (job.batchId !== null) byBatch.set(job.batchId, [...(byBatch.get(job.batchId) ?? []), { from: job.status, to: null }]);
          }
          for (const [batchId, moves] of byBatch) {
            if (this.stmt.getBatch.get(batchId) !== undefined) this.moveInBatch(batchId, moves, now);
          }
          return rows.length;
        });
        jobs += removed;
        if (removed < 500) break;
      }
    }
    if (request.changesBefore !== undefined) {
      const cutoff = request.changesBefore.getTime();
      this.write(() => {
        const last = this.lastChangeBefore(cutoff);
        if (last === null) return;
        changes = this.db.prepare('DELETE FROM changes WHERE seq <= ?').run(last).changes;
        this.stmt.setMeta.run('changes_purged_through', String(last));
      });
    }
    return { jobs, changes, jobIds };
  }

  /**
   * The newest change older than `cutoff`, found by binary search on the sequence
   * (times grow with the sequence), so the feed needs no index on time. The newest
   * change is never returned: keeping it keeps `max(seq)`, so sequences never repeat.
   */
  private lastChangeBefore(cutoff: number): number | null {
    const first = this.db.prepare('SELECT seq FROM changes ORDER BY seq LIMIT 1').pluck().get() as number | undefined;
    const newest = (this.stmt.headSeq.get() as { seq: number } | undefined)?.seq;
    if (first === undefined || newest === undefined) return null;
    const atOrAfter = this.db.prepare('SELECT seq, at FROM changes WHERE seq >= ? ORDER BY seq LIMIT 1');
    let lo = first;
    let hi = newest - 1;
    let found: number | null = null;
    while (lo <= hi) {
      const mid = Math.floor((lo + hi) / 2);
      const row = atOrAfter.get(mid) as { seq: number; at: number } | undefined;
      if (row === undefined || row.seq > hi) {
        hi = mid - 1;
      } else if (row.at < cutoff) {
        found = row.seq;
        lo = row.seq + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.failAll(new Error('store closed'));
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    this.db.close();
  }

  /** The query plan of a statement (used by benchmarks to show index use). */
  explain(sql: string, ...params: unknown[]): string[] {
    return (this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
  }

  /** The query plan of the claim query for a request's shape. */
  explainClaim(request: Omit<ClaimRequest, 'workerId' | 'leaseMs'> = {}): string[] {
    const full = { workerId: '', leaseMs: 0, ...request };
    const t = Date.now();
    return this.explain(this.claimStatement(full).source, '', '', t, t, t, ...this.claimParams(full, new Date()));
  }

  /** The raw connection, for benchmarks' baselines only. */
  get connection(): Database.Database {
    return this.db;
  }
}

/** Opens (and migrates) a SQLite store. */
export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}
