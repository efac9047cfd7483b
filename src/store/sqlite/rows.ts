/** SQLite rows ↔ records, and the WHERE clauses of list filters. */
import { batchStatus } from '../../domain/status.js';
import type { AccessControl, Batch, Delivery, DeliveryStatus, Job, JobStatus, Principal, WebhookEvent } from '../../domain/types.js';
import type { BatchFilter, JobFilter } from '../port.js';
import { readerEntries } from '../prepare.js';

export type Row = Record<string, unknown>;

export const json = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));
export const parse = <T>(text: unknown): T => (text === null || text === undefined ? null : JSON.parse(text as string)) as T;
export const ms = (date: Date | null): number | null => (date === null ? null : date.getTime());
const date = (value: unknown): Date | null => (value === null || value === undefined ? null : new Date(value as number));
const text = (value: unknown): string | null => (value as string | null | undefined) ?? null;

function reviveError(e: Record<string, unknown>): Job['errors'][number] {
  return { ...(e as unknown as Job['errors'][number]), at: new Date(e.at as string) };
}

/**
 * The job columns in the order of the array `JOB_COLUMNS` selects. `nest` marks JSON
 * columns of a shape Conveyor bounds itself, nested in the array by `json(…)`; the JSON
 * columns that hold what submitters and handlers give (parameters, results, error
 * details, webhook, ingest) stay text, parsed here: SQLite's `json()` refuses nesting
 * deeper than 1,000 levels, which must never make a job unreadable.
 */
const JOB_FIELDS: readonly [column: string, nest?: 'nest'][] = [
  ['id'],
  ['type'],
  ['parameters'],
  ['status'],
  ['priority'],
  ['run_at'],
  ['attempts'],
  ['max_attempts'],
  ['progress', 'nest'],
  ['results'],
  ['error'],
  ['errors'],
  ['owner_id'],
  ['team_ids', 'nest'],
  ['access', 'nest'],
  ['batch_id'],
  ['track'],
  ['webhook'],
  ['idempotency_key'],
  ['cache_key'],
  ['cached_from'],
  ['ingest'],
  ['correlation_id'],
  ['worker_id'],
  ['usage', 'nest'],
  ['cancel_requested'],
  ['lease_owner'],
  ['lease_until'],
  ['lease_token'],
  ['version'],
  ['created_at'],
  ['updated_at'],
  ['started_at'],
  ['finished_at'],
];

/**
 * What a job is read as: one value, a JSON array of its columns (the bounded JSON
 * columns nested), so a row costs one string and one `JSON.parse` (`jobFromValues`)
 * plus the parses of the text JSON columns. Measured: ~3.5 µs a job against ~5.8 µs for
 * the 34 columns as separate values (each a value better-sqlite3 converts) plus their
 * JSON parses, and ~11 µs for a row object. Statements select it in raw mode; a
 * statement may select more after it (e.g. the idempotency fingerprint, at
 * `AFTER_JOB_COLUMNS`).
 */
export const JOB_COLUMNS = `json_array(${JOB_FIELDS.map(([column, nest]) => (nest === 'nest' ? `json(${column})` : column)).join(', ')})`;

/** Index of the first value after `JOB_COLUMNS` in a raw row. */
export const AFTER_JOB_COLUMNS = 1;

/** A job from a raw row whose first value is `JOB_COLUMNS` (the indexes below follow `JOB_FIELDS`). */
export function jobFromValues(row: readonly unknown[]): Job {
  const v = JSON.parse(row[0] as string) as unknown[];
  const progress = v[8] as Record<string, unknown> | null;
  const error = parse<Record<string, unknown> | null>(v[10]);
  return {
    id: v[0] as string,
    type: v[1] as string,
    parameters: parse(v[2]),
    status: v[3] as JobStatus,
    priority: v[4] as number,
    runAt: new Date(v[5] as number),
    attempts: v[6] as number,
    maxAttempts: v[7] as number,
    progress:
      progress === null
        ? null
        : { ...(progress as unknown as NonNullable<Job['progress']>), updatedAt: new Date(progress.updatedAt as string) },
    results: parse(v[9]),
    error: error === null ? null : reviveError(error),
    errors: parse<Record<string, unknown>[]>(v[11]).map(reviveError),
    ownerId: v[12] as string,
    teamIds: v[13] as string[],
    accessControl: v[14] as AccessControl,
    batchId: text(v[15]),
    track: text(v[16]),
    webhook: parse(v[17]),
    idempotencyKey: text(v[18]),
    cacheKey: text(v[19]),
    cachedFrom: text(v[20]),
    ingest: parse(v[21] ?? null),
    correlationId: text(v[22]),
    workerId: text(v[23]),
    usage: (v[24] ?? null) as Job['usage'],
    cancelRequested: v[25] === 1,
    leaseOwner: text(v[26]),
    leaseUntil: date(v[27]),
    leaseToken: v[28] as number,
    version: v[29] as number,
    createdAt: new Date(v[30] as number),
    updatedAt: new Date(v[31] as number),
    startedAt: date(v[32]),
    finishedAt: date(v[33]),
  };
}

export function batchFromRow(row: Row): Batch {
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
    idempotencyKey: text(row.idempotency_key),
    version: row.version as number,
    createdAt: new Date(row.created_at as number),
    updatedAt: new Date(row.updated_at as number),
    finishedAt: date(row.finished_at),
  };
}

export function deliveryFromRow(row: Row): Delivery {
  return {
    id: row.id as string,
    event: row.event as WebhookEvent,
    jobId: text(row.job_id),
    batchId: text(row.batch_id),
    webhook: parse(row.webhook),
    payload: parse(row.payload),
    status: row.status as DeliveryStatus,
    attempts: parse<Record<string, unknown>[]>(row.attempts).map((a) => ({
      ...(a as unknown as Delivery['attempts'][number]),
      at: new Date(a.at as string),
    })),
    nextAttemptAt: new Date(row.next_attempt_at as number),
    leaseOwner: text(row.lease_owner),
    leaseUntil: date(row.lease_until),
    createdAt: new Date(row.created_at as number),
    updatedAt: new Date(row.updated_at as number),
  };
}

/** A batch's columns, named as in the `batches` table. */
export function batchColumns(batch: Batch): Row {
  return {
    id: batch.id,
    active: batch.active ? 1 : 0,
    archived: batch.archived ? 1 : 0,
    ...batch.counts,
    version: batch.version,
    updated_at: batch.updatedAt.getTime(),
    finished_at: ms(batch.finishedAt),
    status: batch.status,
    first_started_at: ms(batch.summary.firstStartedAt),
    last_finished_at: ms(batch.summary.lastFinishedAt),
    tokens: batch.summary.tokens,
    cost_usd: batch.summary.costUsd,
  };
}

export function accessColumns(owner: { teamIds: string[]; accessControl: AccessControl }) {
  return {
    team_ids: JSON.stringify(owner.teamIds),
    access: JSON.stringify(owner.accessControl),
    visibility: owner.accessControl.visibility,
    readers: JSON.stringify(readerEntries(owner.accessControl)),
  };
}

/** Columns a state change can touch (never identity, ownership or creation data), and their values. */
export const MUTABLE_JOB_COLUMNS = [
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

export function jobUpdateValues(job: Job): unknown[] {
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

export const INSERT_NEW_JOB = `INSERT INTO jobs (${NEW_JOB_COLUMNS.join(', ')}, status, attempts, lease_token, cancel_requested,
  errors, version, updated_at) VALUES (${NEW_JOB_COLUMNS.map(() => '?').join(', ')}, 'PENDING', 0, 0, 0, '[]', 1, ?)`;

/** Encodes new jobs for `INSERT_NEW_JOB`; JSON that a bulk submit's jobs share (teams, access control) is encoded once. */
export function newJobRows(jobs: readonly Job[], paused: boolean, fingerprints: readonly (string | null)[]): unknown[][] {
  const cache = new Map<unknown, string>();
  const once = (key: unknown, encode: () => string): string => {
    let encoded = cache.get(key);
    if (encoded === undefined) {
      encoded = encode();
      cache.set(key, encoded);
    }
    return encoded;
  };
  return jobs.map((job, i) => {
    if (job.status !== 'PENDING' || job.attempts !== 0 || job.leaseToken !== 0 || job.version !== 1) {
      throw new Error(`internal: job ${job.id} is not a new job`);
    }
    const access = once(job.accessControl, () => JSON.stringify(job.accessControl));
    return [
      job.id,
      job.type,
      JSON.stringify(job.parameters),
      job.priority,
      job.runAt.getTime(),
      job.maxAttempts,
      job.ownerId,
      once(job.teamIds, () => JSON.stringify(job.teamIds)),
      access,
      job.accessControl.visibility,
      once(`readers:${access}`, () => JSON.stringify(readerEntries(job.accessControl))),
      job.batchId,
      paused ? 1 : 0,
      job.track,
      json(job.webhook),
      job.idempotencyKey,
      fingerprints[i] ?? null,
      job.cacheKey,
      job.cachedFrom,
      json(job.ingest),
      job.ingest?.source ?? null,
      job.correlationId,
      job.createdAt.getTime(),
      job.updatedAt.getTime(),
    ];
  });
}

export class Where {
  readonly parts: string[] = [];
  readonly params: unknown[] = [];
  add(sql: string, ...params: unknown[]): this {
    this.parts.push(sql);
    this.params.push(...params);
    return this;
  }
  get sql(): string {
    return this.parts.length === 0 ? '' : `WHERE ${this.parts.join(' AND ')}`;
  }
}

/** "This principal may read the row" (the same rule as `can()` in domain/access.ts). */
function addVisible(where: Where, principal: Principal | undefined, table: string): void {
  if (principal === undefined || principal.admin) return;
  // Anonymous callers read nothing.
  if (principal.userId === null) {
    where.add('0 = 1');
    return;
  }
  const entries = [`user:${principal.userId}`, ...principal.teams.map((t) => `team:${t}`)];
  where.add(
    `(${table}.owner_id = ? OR ${table}.visibility = 'PUBLIC'
      OR EXISTS (SELECT 1 FROM json_each(${table}.readers) r WHERE r.value IN (SELECT value FROM json_each(?)))
      OR (${table}.visibility = 'TEAM' AND EXISTS (SELECT 1 FROM json_each(${table}.team_ids) t WHERE t.value IN (SELECT value FROM json_each(?)))))`,
    principal.userId,
    JSON.stringify(entries),
    JSON.stringify(principal.teams),
  );
}

function addStatus(where: Where, status: readonly string[] | undefined): void {
  // One status as an equality keeps the (…, status, id) indexes' order: no sort for a page.
  if (status?.length === 1) where.add('status = ?', status[0]);
  else if (status !== undefined) where.add('status IN (SELECT value FROM json_each(?))', JSON.stringify(status));
}

function addCreated(where: Where, filter: { createdAfter?: Date; createdBefore?: Date }): void {
  if (filter.createdAfter !== undefined) where.add('created_at >= ?', filter.createdAfter.getTime());
  if (filter.createdBefore !== undefined) where.add('created_at < ?', filter.createdBefore.getTime());
}

export function jobWhere(filter: JobFilter): Where {
  const where = new Where();
  addStatus(where, filter.status);
  if (filter.type !== undefined) where.add('type IN (SELECT value FROM json_each(?))', JSON.stringify(filter.type));
  if (filter.batchId !== undefined) where.add('batch_id = ?', filter.batchId);
  if (filter.ownerId !== undefined) where.add('owner_id = ?', filter.ownerId);
  if (filter.track !== undefined) where.add('track = ?', filter.track);
  if (filter.cacheKey !== undefined) where.add('cache_key = ?', filter.cacheKey);
  if (filter.cached !== undefined) where.add(filter.cached ? 'cached_from IS NOT NULL' : 'cached_from IS NULL');
  if (filter.source !== undefined) where.add('source = ?', filter.source);
  if (filter.retrying === true) where.add("status = 'PENDING' AND error IS NOT NULL");
  if (filter.retrying === false) where.add("NOT (status = 'PENDING' AND error IS NOT NULL)");
  addCreated(where, filter);
  addVisible(where, filter.visibleTo, 'jobs');
  return where;
}

export function batchWhere(filter: BatchFilter): Where {
  const where = new Where();
  if (filter.ownerId !== undefined) where.add('owner_id = ?', filter.ownerId);
  addStatus(where, filter.status);
  if (filter.archived !== undefined) where.add('archived = ?', filter.archived ? 1 : 0);
  if (filter.active !== undefined) where.add('active = ?', filter.active ? 1 : 0);
  addCreated(where, filter);
  addVisible(where, filter.visibleTo, 'batches');
  return where;
}
