/**
 * The SQLite engine: one file (better-sqlite3), WAL mode, shared safely by several
 * processes on one machine. A unit of work is one IMMEDIATE transaction, driven
 * synchronously (its primitives never wait), so claims are exclusive across processes
 * and no other caller in this process sees a half-done write. The `changes` table is the
 * change source, tailed by sequence (poll) and nudged at once after local commits.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { LRUCache } from 'lru-cache';
import type { Batch, Delivery, Job, JsonObject, LogEntry } from '../../domain/types.js';
import { CursorExpiredError, ValidationError } from '../../errors.js';
import { ChangeHub } from '../change-hub.js';
import type { ChangeListener, Listening } from '../change-stream.js';
import { type Engine, type Keyed, type NewChange, type Op, runNow, sync, type Tx } from '../engine.js';
import { type ChangeInterest, checkInterest } from '../interest.js';
import {
  type BatchFilter,
  type ChangeEvent,
  type ClaimRequest,
  type ClaimToken,
  type DeliveryFilter,
  INGEST_OUTCOMES,
  type IngestCounts,
  type JobFilter,
  type NewLogEntry,
  type Page,
  type PageRequest,
  type RoutingKeys,
  type Stats,
  type StatsFilter,
} from '../port.js';
import { pageSize } from '../prepare.js';
import { decodePageCursor, decodeSeqCursor, encodeSeqCursor, statsJobFilter, summarizeStats, toPage } from '../query.js';
import type { BatchMove } from '../transitions.js';
import { MIGRATIONS } from './migrations.js';
import {
  AFTER_JOB_COLUMNS,
  accessColumns,
  batchColumns,
  batchFromRow,
  batchWhere,
  deliveryFromRow,
  INSERT_NEW_JOB,
  JOB_COLUMNS,
  jobFromValues,
  jobUpdateValues,
  jobWhere,
  json,
  MUTABLE_JOB_COLUMNS,
  ms,
  newJobRows,
  parse,
  type Row,
  Where,
} from './rows.js';

export interface SqliteEngineOptions {
  /** The database file; its folder is created. `:memory:` works for one process. */
  path: string;
  /** How long a write waits for another process's lock before failing. Default 5000. */
  busyTimeoutMs?: number;
  /** How often the change feed looks for other processes' writes. Default 50. */
  changePollMs?: number;
  /**
   * Record batch count moves and apply them after the commit, as MongoDB does (see
   * `Tx.deferBatchCounts`). Default false: SQLite serialises writers anyway, so counts
   * are moved in the job's own transaction. True only to run the deferred path in tests.
   */
  deferBatchCounts?: boolean;
}

/** Columns of a change row as written by `flushChanges` and read back (in this order), and rows per INSERT (SQLite allows 32,766 values). */
const CHANGE_COLUMNS = 'at, entity, op, entity_id, batch_id, owner_id, status, version, data';
const CHANGE_FIELDS = 9;
const CHANGES_PER_INSERT = 32;
/** Columns of a log line as inserted by `insertLogs`, and lines per INSERT. */
const LOG_COLUMNS = 'job_id, attempt, at, level, message';
const LOGS_PER_INSERT = 32;

/** A name used in SQL as a literal (`checkInterest` allows only plain names). */
const literal = (name: string): string => `'${name}'`;

/** `interest` (see interest.ts) as a condition on the `changes` table, equal to `interested()`. */
export function interestSql(interest: ChangeInterest): string {
  // The hub checked it when the listener came; checked again here, as its names go into SQL.
  checkInterest(interest);
  if (interest.length === 0) return '0';
  return interest
    .map((clause) => {
      const parts = [`entity = ${literal(clause.entity)}`];
      if (clause.ops !== undefined) parts.push(`op IN (${clause.ops.map(literal).join(', ') || 'NULL'})`);
      if (clause.statuses !== undefined) parts.push(`status IN (${clause.statuses.map(literal).join(', ') || 'NULL'})`);
      // JSON `true` only, as `interested()` asks (json_extract would give 1 for true, 1 and 1.0 alike).
      if (clause.flag !== undefined) parts.push(`json_type(data, '$.${clause.flag}') = 'true'`);
      return `(${parts.join(' AND ')})`;
    })
    .join(' OR ');
}

/**
 * A change event from a row's values in `CHANGE_COLUMNS` order from `at`: the values
 * `flushChanges` inserted (with the sequence numbers they were given), or a row read back.
 */
function changeFromValues(v: readonly unknown[], at: number, seq: number): ChangeEvent {
  return {
    cursor: encodeSeqCursor(seq),
    entity: v[at + 1] as ChangeEvent['entity'],
    op: v[at + 2] as ChangeEvent['op'],
    id: v[at + 3] as string,
    batchId: (v[at + 4] as string | null) ?? null,
    ownerId: (v[at + 5] as string | null) ?? null,
    status: (v[at + 6] as string | null) ?? null,
    version: v[at + 7] as number,
    at: new Date(v[at] as number),
    data: parse(v[at + 8]),
  };
}

/** A change this process wrote, as published to its own listeners (equal to `changeFromValues` of its row). */
function publishedChange(c: NewChange, seq: number): ChangeEvent {
  return {
    cursor: encodeSeqCursor(seq),
    entity: c.entity,
    op: c.op,
    id: c.id,
    batchId: c.batchId ?? null,
    ownerId: c.ownerId ?? null,
    status: c.status ?? null,
    version: c.version,
    at: c.at,
    data: c.data ?? null,
  };
}

const seqOf = (event: ChangeEvent | undefined): number => (event === undefined ? 0 : decodeSeqCursor(event.cursor));

/** How a list page is selected and mapped. */
interface Read<T> {
  columns: string;
  raw: boolean;
  // biome-ignore lint/suspicious/noExplicitAny: a row is an array in raw mode and an object otherwise.
  map: (row: any) => T;
}
const JOB_READ: Read<Job> = { columns: JOB_COLUMNS, raw: true, map: jobFromValues };
const BATCH_READ: Read<Batch> = { columns: '*', raw: false, map: batchFromRow };

/** The moved-batches set of engines that never defer: never written to. */
const NONE: Set<string> = new Set();

const BATCH_COLUMNS = `id, name, owner_id, team_ids, access, visibility, readers, active, archived, webhook, metadata, total, pending,
  processing, completed, failed, cancelled, idempotency_key, idempotency_hash, version, created_at, updated_at, finished_at, status,
  first_started_at, last_finished_at, tokens, cost_usd`;

type Statements = ReturnType<typeof statements>;

function statements(db: Database.Database) {
  /** Job reads: `JOB_COLUMNS` in raw mode (see rows.ts). */
  const jobs = (sql: string) => db.prepare(sql).raw(true);
  const claimed = `SET status = 'PROCESSING', attempts = attempts + 1, lease_token = lease_token + 1, lease_owner = @worker,
    worker_id = @worker, lease_until = @until, started_at = @now, finished_at = NULL, version = version + 1, updated_at = @now`;
  return {
    insertJob: db.prepare(INSERT_NEW_JOB),
    updateJob: db.prepare(`UPDATE jobs SET ${MUTABLE_JOB_COLUMNS.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`),
    editJob: db.prepare('UPDATE jobs SET parameters = ?, track = ?, cache_key = ?, cached_from = ? WHERE id = ?'),
    accessJob: db.prepare('UPDATE jobs SET access = ?, visibility = ?, readers = ? WHERE id = ?'),
    getJob: jobs(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?`),
    getJobs: jobs(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id IN (SELECT value FROM json_each(?))`),
    jobByKey: jobs(`SELECT ${JOB_COLUMNS}, idempotency_hash FROM jobs WHERE owner_id = ? AND idempotency_key = ?`),
    // The same state change as transitions.completed() without usage, fenced in the WHERE clause (the hot path).
    completeJob: jobs(`UPDATE jobs SET status = 'COMPLETED', results = ?, error = NULL, cancel_requested = 0,
        finished_at = ?, lease_owner = NULL, lease_until = NULL, version = version + 1, updated_at = ?
      WHERE id = ? AND status = 'PROCESSING' AND lease_token = ? AND lease_owner = ? AND lease_until >= ? RETURNING ${JOB_COLUMNS}`),
    completeExpected: db.prepare(`UPDATE jobs SET status = 'COMPLETED', results = ?, error = NULL, cancel_requested = 0,
        finished_at = ?, lease_owner = NULL, lease_until = NULL, version = version + 1, updated_at = ?
      WHERE id = ? AND version = ? AND status = 'PROCESSING' AND lease_token = ? AND lease_owner = ? AND lease_until >= ?`),
    // As transitions.renewed() makes it, for jobs the operation has checked.
    extendLeases: db.prepare(
      'UPDATE jobs SET lease_until = ?, version = version + 1, updated_at = ? WHERE id IN (SELECT value FROM json_each(?))',
    ),
    expiredLeases: jobs(`SELECT ${JOB_COLUMNS} FROM jobs WHERE status = 'PROCESSING' AND lease_until < ? LIMIT ?`),
    deleteJob: db.prepare('DELETE FROM jobs WHERE id = ?'),
    deleteLogs: db.prepare('DELETE FROM job_logs WHERE job_id = ?'),
    deleteJobDeliveries: db.prepare('DELETE FROM deliveries WHERE job_id = ?'),
    batchJobs: jobs(`SELECT ${JOB_COLUMNS} FROM jobs WHERE batch_id = ? AND id > ? ORDER BY id LIMIT ?`),
    batchJobsIn: jobs(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE batch_id = ? AND id > ? AND status IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?`,
    ),
    pauseJobs: db.prepare(
      'UPDATE jobs SET paused = ? WHERE id IN (SELECT id FROM jobs WHERE batch_id = ? AND id > ? ORDER BY id LIMIT ?) RETURNING id',
    ),
    listLogs: db.prepare('SELECT * FROM job_logs WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?'),
    insertBatch: db.prepare(`INSERT INTO batches (${BATCH_COLUMNS}) VALUES (${BATCH_COLUMNS.split(',').map((c) => `@${c.trim()}`)})`),
    updateBatch: db.prepare(`UPDATE batches SET active = @active, archived = @archived, total = @total, pending = @pending,
      processing = @processing, completed = @completed, failed = @failed, cancelled = @cancelled, version = @version,
      updated_at = @updated_at, finished_at = @finished_at, status = @status, first_started_at = @first_started_at,
      last_finished_at = @last_finished_at, tokens = @tokens, cost_usd = @cost_usd WHERE id = @id`),
    holdBatch: db.prepare('UPDATE batches SET held_until = ? WHERE id = ?'),
    getBatch: db.prepare('SELECT * FROM batches WHERE id = ?'),
    getBatches: db.prepare('SELECT * FROM batches WHERE id IN (SELECT value FROM json_each(?))'),
    batchByKey: db.prepare('SELECT * FROM batches WHERE owner_id = ? AND idempotency_key = ?'),
    deleteBatch: db.prepare('DELETE FROM batches WHERE id = ?'),
    deleteBatchDeliveries: db.prepare('DELETE FROM deliveries WHERE batch_id = ?'),
    insertMove: db.prepare('INSERT INTO batch_moves (batch_id, at, move) VALUES (?, ?, ?)'),
    batchMoves: db.prepare('SELECT seq, move FROM batch_moves WHERE batch_id = ? ORDER BY seq LIMIT ?'),
    deleteMoves: db.prepare('DELETE FROM batch_moves WHERE seq IN (SELECT value FROM json_each(?))'),
    deleteBatchMoves: db.prepare('DELETE FROM batch_moves WHERE batch_id = ?'),
    batchesWithMoves: db.prepare('SELECT DISTINCT batch_id FROM batch_moves WHERE at < ? LIMIT ?'),
    insertDelivery: db.prepare(`INSERT INTO deliveries (id, event, job_id, batch_id, webhook, payload, status, attempts,
        next_attempt_at, lease_owner, lease_until, created_at, updated_at)
      VALUES (@id, @event, @job_id, @batch_id, @webhook, @payload, @status, @attempts, @next_attempt_at, @lease_owner,
        @lease_until, @created_at, @updated_at)`),
    getDelivery: db.prepare('SELECT * FROM deliveries WHERE id = ?'),
    updateDelivery: db.prepare(`UPDATE deliveries SET status = @status, attempts = @attempts, next_attempt_at = @next_attempt_at,
      lease_owner = @lease_owner, lease_until = @lease_until, updated_at = @updated_at WHERE id = @id`),
    // Fenced like job writes: only the dispatcher that holds the delivery's lease may record.
    updateOwnedDelivery: db.prepare(`UPDATE deliveries SET status = @status, attempts = @attempts, next_attempt_at = @next_attempt_at,
      lease_owner = @lease_owner, lease_until = @lease_until, updated_at = @updated_at
      WHERE id = @id AND status = 'SENDING' AND lease_owner = @owner`),
    claimDeliveries: db.prepare(`UPDATE deliveries SET status = 'SENDING', lease_owner = @worker, lease_until = @until, updated_at = @now
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
    changesAfter: db.prepare(`SELECT ${CHANGE_COLUMNS}, seq FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`).raw(true),
    headSeq: db.prepare('SELECT seq FROM changes ORDER BY seq DESC LIMIT 1'),
    addIngestCounts: db.prepare(`INSERT INTO ingest_counts (source, ${INGEST_OUTCOMES.join(', ')})
      VALUES (?, ${INGEST_OUTCOMES.map(() => '?').join(', ')})
      ON CONFLICT (source) DO UPDATE SET ${INGEST_OUTCOMES.map((o) => `${o} = ${o} + excluded.${o}`).join(', ')}`),
    getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
    setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    claimed,
  };
}

/** SQLite's primitives: each one runs its statements when the operation drives it. */
class SqliteTx implements Tx {
  readonly movedBatches: Set<string>;
  constructor(
    private readonly engine: SqliteEngine,
    private readonly s: Statements,
    readonly now: Date,
    readonly deferBatchCounts: boolean,
  ) {
    this.movedBatches = deferBatchCounts ? new Set() : NONE;
  }

  getJob(id: string): Op<Job | null> {
    return sync(() => this.engine.jobById(id));
  }
  jobByKey(ownerId: string, key: string): Op<Keyed<Job> | null> {
    return sync(() => {
      const row = this.s.jobByKey.get(ownerId, key) as unknown[] | undefined;
      return row === undefined ? null : { value: jobFromValues(row), fingerprint: (row[AFTER_JOB_COLUMNS] as string | null) ?? null };
    });
  }
  insertJobs(jobs: readonly Job[], paused: boolean, fingerprints: readonly (string | null)[]): Op<void> {
    return sync(() => {
      for (const row of newJobRows(jobs, paused, fingerprints)) this.s.insertJob.run(row);
    });
  }
  loadJobs(ids: readonly string[]): Op<(Job | null)[]> {
    return sync(() => this.engine.jobsById(ids));
  }
  saveJobs(pairs: readonly { before: Job; after: Job }[]): Op<void> {
    return sync(() => {
      for (const { before, after } of pairs) {
        this.s.updateJob.run(jobUpdateValues(after));
        if (after.parameters !== before.parameters || after.cacheKey !== before.cacheKey || after.cachedFrom !== before.cachedFrom) {
          this.s.editJob.run(JSON.stringify(after.parameters), after.track, after.cacheKey, after.cachedFrom, after.id);
        }
        if (after.accessControl !== before.accessControl) {
          const access = accessColumns(after);
          this.s.accessJob.run(access.access, access.visibility, access.readers, after.id);
        }
      }
    });
  }
  deleteJob(job: Job): Op<void> {
    return sync(() => {
      this.s.deleteJob.run(job.id);
      this.s.deleteLogs.run(job.id);
      this.s.deleteJobDeliveries.run(job.id);
    });
  }
  jobsOfBatch(batchId: string, page: { statuses?: readonly string[]; afterId: string | null; limit: number }): Op<Job[]> {
    return sync(() => {
      const rows = (
        page.statuses === undefined
          ? this.s.batchJobs.all(batchId, page.afterId ?? '', page.limit)
          : this.s.batchJobsIn.all(batchId, page.afterId ?? '', JSON.stringify(page.statuses), page.limit)
      ) as unknown[][];
      return rows.map(jobFromValues);
    });
  }
  pauseJobs(batchId: string, paused: boolean, afterId: string | null, limit: number): Op<string | null> {
    return sync(() => {
      const ids = (this.s.pauseJobs.all(paused ? 1 : 0, batchId, afterId ?? '', limit) as { id: string }[]).map((r) => r.id);
      return ids.length === 0 ? null : ids.reduce((a, b) => (a > b ? a : b));
    });
  }
  claim(request: ClaimRequest, now: Date, limit: number): Op<Job[]> {
    return sync(() => {
      const t = now.getTime();
      const params = { worker: request.workerId, until: t + request.leaseMs, now: t, limit, ...claimFilterParams(request) };
      const rows = this.engine.claimStatement(request, limit).all(params) as unknown[][];
      const jobs = rows.map(jobFromValues);
      // RETURNING order is unspecified: put the claims back in the claim order.
      if (jobs.length > 1) jobs.sort((a, b) => b.priority - a.priority || a.runAt.getTime() - b.runAt.getTime() || (a.id < b.id ? -1 : 1));
      return jobs;
    });
  }
  completeFenced(token: ClaimToken, results: JsonObject | null, now: Date): Op<Job | null> {
    return sync(() => {
      const t = now.getTime();
      const row = this.s.completeJob.get(json(results), t, t, token.jobId, token.leaseToken, token.workerId, t) as unknown[] | undefined;
      return row === undefined ? null : jobFromValues(row);
    });
  }
  completeExpected(job: Job, token: ClaimToken, results: JsonObject | null, now: Date): Op<boolean> {
    return sync(() => {
      const t = now.getTime();
      const args = [json(results), t, t, token.jobId, job.version, token.leaseToken, token.workerId, t];
      return job.id === token.jobId && this.s.completeExpected.run(...args).changes === 1;
    });
  }
  extendLeases(ids: readonly string[], until: Date, now: Date): Op<void> {
    return sync(() => void this.s.extendLeases.run(until.getTime(), now.getTime(), JSON.stringify(ids)));
  }
  expiredLeases(now: Date, limit: number): Op<Job[]> {
    return sync(() => (this.s.expiredLeases.all(now.getTime(), limit) as unknown[][]).map(jobFromValues));
  }
  /**
   * Log lines in multi-row INSERTs (up to `LOGS_PER_INSERT` a statement). The unit holds
   * the write lock, so one statement's rows get consecutive sequence numbers ending at
   * its last rowid.
   */
  insertLogs(items: readonly { job: Job; entries: readonly NewLogEntry[] }[]): Op<number[][]> {
    return sync(() => {
      const at = this.now.getTime();
      const seqs = items.map((): number[] => []);
      let values: unknown[] = [];
      let owners: number[] = [];
      const flush = () => {
        const rows = owners.length;
        const last = Number(this.engine.multiInsert('job_logs', rows).run(values).lastInsertRowid);
        for (let i = 0; i < rows; i++) seqs[owners[i] as number]?.push(last - rows + 1 + i);
        values = [];
        owners = [];
      };
      items.forEach(({ job, entries }, item) => {
        for (const e of entries) {
          values.push(job.id, job.attempts, at, e.level, e.message);
          owners.push(item);
          if (owners.length === LOGS_PER_INSERT) flush();
        }
      });
      if (owners.length > 0) flush();
      return seqs;
    });
  }
  getBatch(id: string): Op<Batch | null> {
    return sync(() => {
      const row = this.s.getBatch.get(id) as Row | undefined;
      return row === undefined ? null : batchFromRow(row);
    });
  }
  batchByKey(ownerId: string, key: string): Op<Keyed<Batch> | null> {
    return sync(() => {
      const row = this.s.batchByKey.get(ownerId, key) as Row | undefined;
      return row === undefined ? null : { value: batchFromRow(row), fingerprint: (row.idempotency_hash as string | null) ?? null };
    });
  }
  insertBatch(batch: Batch, fingerprint: string | null): Op<void> {
    return sync(() => {
      this.s.insertBatch.run({
        ...batchColumns(batch),
        name: batch.name,
        owner_id: batch.ownerId,
        ...accessColumns(batch),
        webhook: json(batch.webhook),
        metadata: json(batch.metadata),
        idempotency_key: batch.idempotencyKey,
        idempotency_hash: fingerprint,
        created_at: batch.createdAt.getTime(),
      });
    });
  }
  saveBatch(batch: Batch): Op<void> {
    return sync(() => void this.s.updateBatch.run(batchColumns(batch)));
  }
  holdBatch(id: string, until: Date | null): Op<void> {
    return sync(() => void this.s.holdBatch.run(ms(until), id));
  }
  deleteBatch(id: string): Op<void> {
    return sync(() => {
      this.s.deleteBatch.run(id);
      this.s.deleteBatchDeliveries.run(id);
      this.s.deleteBatchMoves.run(id);
    });
  }
  insertBatchMoves(batchId: string, moves: readonly BatchMove[]): Op<void> {
    return sync(() => {
      for (const move of moves) this.s.insertMove.run(batchId, this.now.getTime(), JSON.stringify(move));
    });
  }
  batchMoves(batchId: string, limit: number): Op<{ ids: string[]; moves: BatchMove[] }> {
    return sync(() => {
      const rows = this.s.batchMoves.all(batchId, limit) as { seq: number; move: string }[];
      return { ids: rows.map((r) => String(r.seq)), moves: rows.map((r) => JSON.parse(r.move) as BatchMove) };
    });
  }
  deleteBatchMoves(ids: readonly string[]): Op<void> {
    return sync(() => void this.s.deleteMoves.run(JSON.stringify(ids.map(Number))));
  }
  /** Changes are held and written together when the work is done (`flushChanges`), in their order. */
  insertChanges(changes: readonly NewChange[]): Op<void> {
    return sync(() => {
      // Changes of a bulk write often share one summary object: encode it once.
      for (const c of changes) {
        if (c.data !== this.lastData || this.lastEncoded === undefined) {
          this.lastData = c.data;
          this.lastEncoded = json(c.data);
        }
        this.changeValues.push(c.at.getTime(), c.entity, c.op, c.id, c.batchId, c.ownerId, c.status, c.version, this.lastEncoded);
        this.changeSources.push(c);
      }
    });
  }
  private changeValues: unknown[] = [];
  /** The changes `changeValues` holds, published as they are (their summaries are not parsed back). */
  private changeSources: NewChange[] = [];
  private lastData: JsonObject | null = null;
  private lastEncoded: string | null | undefined;

  /**
   * Writes the held changes, up to `CHANGES_PER_INSERT` rows a statement. With `events`,
   * returns them as the feed will read them back (their sequence numbers are the rowids
   * the inserts were given: consecutive, as the unit holds the write lock), so that this
   * process can publish its own changes without reading them again.
   */
  flushChanges(events: boolean): ChangeEvent[] | null {
    const values = this.changeValues;
    const written: ChangeEvent[] | null = events ? [] : null;
    for (let at = 0; at < values.length; at += CHANGE_FIELDS * CHANGES_PER_INSERT) {
      const chunk = values.slice(at, at + CHANGE_FIELDS * CHANGES_PER_INSERT);
      const rows = chunk.length / CHANGE_FIELDS;
      const last = Number(this.engine.multiInsert('changes', rows).run(chunk).lastInsertRowid);
      if (written !== null) {
        const first = at / CHANGE_FIELDS;
        for (let i = 0; i < rows; i++) written.push(publishedChange(this.changeSources[first + i] as NewChange, last - rows + 1 + i));
      }
    }
    this.changeValues = [];
    this.changeSources = [];
    return written;
  }
  insertDeliveries(deliveries: readonly Delivery[]): Op<void> {
    return sync(() => {
      for (const d of deliveries) {
        this.s.insertDelivery.run({
          ...deliveryColumns(d),
          event: d.event,
          job_id: d.jobId,
          batch_id: d.batchId,
          webhook: json(d.webhook),
          payload: json(d.payload),
          created_at: d.createdAt.getTime(),
        });
      }
    });
  }
  getDelivery(id: string): Op<Delivery | null> {
    return sync(() => this.engine.deliveryById(id));
  }
  saveDelivery(after: Delivery, owner: string | null): Op<boolean> {
    return sync(() => {
      const values = deliveryColumns(after);
      const result = owner === null ? this.s.updateDelivery.run(values) : this.s.updateOwnedDelivery.run({ ...values, owner });
      return result.changes > 0;
    });
  }
  claimDeliveries(workerId: string, limit: number, now: Date, leaseUntil: Date): Op<Delivery[]> {
    return sync(() => {
      const rows = this.s.claimDeliveries.all({ worker: workerId, until: leaseUntil.getTime(), now: now.getTime(), limit }) as Row[];
      // RETURNING order is unspecified, so sort.
      return rows.map(deliveryFromRow).sort((a, b) => a.nextAttemptAt.getTime() - b.nextAttemptAt.getTime() || a.id.localeCompare(b.id));
    });
  }
  disabledTarget(d: Delivery): Op<boolean> {
    return sync(
      () =>
        (d.batchId !== null
          ? this.s.disabledInBatch.get(d.batchId, d.id, d.webhook.url)
          : this.s.disabledForJob.get(d.jobId, d.id, d.webhook.url)) !== undefined,
    );
  }
  resetExpiredDeliveries(now: Date): Op<number> {
    return sync(() => this.s.expiredDeliveries.run(now.getTime()).changes);
  }
  releaseDeliveries(workerId: string, ids: readonly string[]): Op<number> {
    return sync(() => this.s.releaseDeliveries.run(workerId, JSON.stringify(ids)).changes);
  }
}

function deliveryColumns(d: Delivery): Row {
  return {
    id: d.id,
    status: d.status,
    attempts: JSON.stringify(d.attempts),
    next_attempt_at: d.nextAttemptAt.getTime(),
    lease_owner: d.leaseOwner,
    lease_until: ms(d.leaseUntil),
    updated_at: d.updatedAt.getTime(),
  };
}

function claimFilterParams(request: Pick<ClaimRequest, 'types' | 'excludeTypes'>): Row {
  const params: Row = {};
  if (request.types !== undefined) params.types = JSON.stringify(request.types);
  if (request.excludeTypes !== undefined && request.excludeTypes.length > 0) params.exclude = JSON.stringify(request.excludeTypes);
  return params;
}

export class SqliteEngine implements Engine {
  readonly driver = 'sqlite';
  readonly deferBatchCounts: boolean;
  readonly db: Database.Database;
  private readonly stmt: Statements;
  private readonly hub: ChangeHub;
  private readonly changePollMs: number;
  private readonly claimStatements = new Map<string, Database.Statement>();
  /** Multi-row INSERTs by table and row count (at most 32 of each). */
  private readonly multiInserts = new Map<string, Database.Statement>();
  /** Prepared list queries, one per filter shape (bounded: shapes come from callers' filters). */
  private readonly listStatements = new LRUCache<string, Database.Statement>({ max: 500 });
  private readonly transaction: Database.Transaction<(fn: () => unknown) => unknown>;
  private pollTimer: NodeJS.Timeout | null = null;
  private readonly busyTimeoutMs: number;
  /** Changes this process committed and has not published yet, unit by unit, in commit order. */
  private local: ChangeEvent[][] = [];
  private nudgeScheduled = false;
  private closed = false;
  /** The change poll for the listeners' interest (see `interestPoll`), with the interest it was made for. */
  private filteredPoll: { interest: ChangeInterest; statement: Database.Statement } | null = null;
  /** Change rows the live tail has read from the table (a diagnostic: see `feedRowsRead`). */
  private rowsRead = 0;

  constructor(options: SqliteEngineOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    // Opening waits in SQLite's busy handler (migrations); writes afterwards wait in `write`.
    this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
    this.changePollMs = options.changePollMs ?? 50;
    this.deferBatchCounts = options.deferBatchCounts ?? false;
    this.db
      .transaction(() => {
        const version = this.db.pragma('user_version', { simple: true }) as number;
        for (let i = version; i < MIGRATIONS.length; i++) this.db.exec(MIGRATIONS[i] as string);
        if (version < MIGRATIONS.length) this.db.pragma(`user_version = ${MIGRATIONS.length}`);
      })
      .immediate();
    this.db.pragma('busy_timeout = 0');
    this.stmt = statements(this.db);
    // One transaction wrapper for every unit of work (building one per call is measurably slower).
    this.transaction = this.db.transaction((fn: () => unknown) => fn());
    this.hub = new ChangeHub({
      readAfter: async (cursor, limit) => this.changesAfter(cursor === null ? 0 : decodeSeqCursor(cursor), limit, cursor),
      head: async () => encodeSeqCursor(this.headSeq() ?? this.purgedThrough()),
      compare: (a, b) => decodeSeqCursor(a) - decodeSeqCursor(b),
      startLive: () => {
        this.pollTimer = setInterval(() => this.pump(false), this.changePollMs);
        this.pollTimer.unref();
      },
      stopLive: () => {
        if (this.pollTimer !== null) clearInterval(this.pollTimer);
        this.pollTimer = null;
      },
    });
  }

  async unit<T>(work: (tx: Tx) => Op<T>): Promise<T> {
    const [result, written] = await this.write(() => {
      const tx = new SqliteTx(this, this.stmt, new Date(), this.deferBatchCounts);
      const value = runNow(work(tx));
      return [value, tx.flushChanges(this.hub.subscriberCount > 0)] as const;
    });
    // Committed: this process's subscribers get these from memory (see `pump`).
    if (written !== null && written.length > 0) this.local.push(written);
    this.nudge();
    return result;
  }

  /**
   * Runs `fn` in an IMMEDIATE transaction. While another process holds the write lock,
   * it waits here, off the event loop, and tries again (for up to `busyTimeoutMs`):
   * SQLite's own busy handler sleeps inside the call, blocking the process (HTTP,
   * websockets, timers) for up to 100 ms a time, and wakes late after the lock is free.
   * Nothing is written by a try that found the lock taken (BEGIN IMMEDIATE fails first).
   */
  private async write<T>(fn: () => T): Promise<T> {
    const deadline = Date.now() + this.busyTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return this.transaction.immediate(fn) as T;
      } catch (error) {
        if (!String((error as { code?: unknown }).code).startsWith('SQLITE_BUSY') || Date.now() >= deadline) throw error;
      }
      // The first waits are a turn of the event loop, then a millisecond or two (jittered, so waiting processes do not wake in step).
      if (attempt < 3) await new Promise((resolve) => setImmediate(resolve));
      else await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * Math.min(attempt, 10)));
    }
  }

  /**
   * The INSERT of `rows` rows into `table` (`CHANGE_COLUMNS` or the log columns), one
   * statement per table and row count, prepared once.
   */
  multiInsert(table: 'changes' | 'job_logs', rows: number): Database.Statement {
    const key = `${table}:${rows}`;
    let statement = this.multiInserts.get(key);
    if (statement === undefined) {
      const columns = table === 'changes' ? CHANGE_COLUMNS : LOG_COLUMNS;
      const row = `(${columns.split(',').fill('?').join(', ')})`;
      statement = this.db.prepare(`INSERT INTO ${table} (${columns}) VALUES ${Array(rows).fill(row).join(', ')}`);
      this.multiInserts.set(key, statement);
    }
    return statement;
  }

  now(): Date {
    return new Date();
  }

  jobById(id: string): Job | null {
    const row = this.stmt.getJob.get(id) as unknown[] | undefined;
    return row === undefined ? null : jobFromValues(row);
  }

  deliveryById(id: string): Delivery | null {
    const row = this.stmt.getDelivery.get(id) as Row | undefined;
    return row === undefined ? null : deliveryFromRow(row);
  }

  /**
   * The claim for a request's type filters, prepared once per shape. It is pinned to the
   * partial claim index: without statistics the planner may prefer the status index and
   * sort every pending job. Held batches are a few at most: their ids are looked up once.
   */
  claimStatement(request: Pick<ClaimRequest, 'types' | 'excludeTypes'>, limit = 1): Database.Statement {
    const filters = claimFilterParams(request);
    // One job: `id = (…)`. SQLite runs `id IN (…)` through an ephemeral table, which
    // halved the single claim's speed (measured: ~8,000 against ~16,000 claims a second).
    const single = limit === 1;
    const key = `${single}:${Object.keys(filters).join()}`;
    let statement = this.claimStatements.get(key);
    if (statement === undefined) {
      statement = this.db
        .prepare(`UPDATE jobs ${this.stmt.claimed}
        WHERE id ${single ? '=' : 'IN'} (SELECT id FROM jobs INDEXED BY jobs_claim
          WHERE status = 'PENDING' AND paused = 0 AND run_at <= @now
          ${filters.types === undefined ? '' : 'AND type IN (SELECT value FROM json_each(@types))'}
          ${filters.exclude === undefined ? '' : 'AND type NOT IN (SELECT value FROM json_each(@exclude))'}
          AND (batch_id IS NULL OR batch_id NOT IN (SELECT id FROM batches WHERE held_until > @now))
          ORDER BY priority DESC, run_at, id LIMIT @limit)
        RETURNING ${JOB_COLUMNS}`)
        .raw(true);
      this.claimStatements.set(key, statement);
    }
    return statement;
  }

  private list(sql: string): Database.Statement {
    let statement = this.listStatements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.listStatements.set(sql, statement);
    }
    return statement;
  }

  async getJobs(ids: readonly string[]): Promise<(Job | null)[]> {
    return this.jobsById(ids);
  }

  /** Jobs by id, in the order asked, null where missing (one statement; one job by its key). */
  jobsById(ids: readonly string[]): (Job | null)[] {
    if (ids.length === 1) return [this.jobById(ids[0] as string)];
    const byId = new Map(
      (this.stmt.getJobs.all(JSON.stringify(ids)) as unknown[][]).map((row) => {
        const job = jobFromValues(row);
        return [job.id, job] as const;
      }),
    );
    return ids.map((id) => byId.get(id) ?? null);
  }

  /** A page of `table` newest first, read as `read` says (jobs: raw `JOB_COLUMNS`; batches: row objects). */
  private page<T extends { id: string }>(table: string, where: Where, page: PageRequest, read: Read<T>): Page<T> {
    if (page.after) where.add('id < ?', decodePageCursor(page.after));
    const limit = pageSize(page.first);
    const statement = this.list(`SELECT ${read.columns} FROM ${table} ${where.sql} ORDER BY id DESC LIMIT ?`);
    const rows = statement.raw(read.raw).all(...where.params, limit + 1);
    return toPage(rows.map(read.map), limit);
  }

  private count(table: string, where: Where): number {
    return (this.list(`SELECT count(*) AS n FROM ${table} ${where.sql}`).get(...where.params) as { n: number }).n;
  }

  async listJobs(filter: JobFilter, page: PageRequest): Promise<Page<Job>> {
    return this.page('jobs', jobWhere(filter), page, JOB_READ);
  }

  async countJobs(filter: JobFilter): Promise<number> {
    return this.count('jobs', jobWhere(filter));
  }

  async stats(filter: StatsFilter, now: Date): Promise<Stats> {
    const where = jobWhere(statsJobFilter(filter));
    const and = where.parts.length === 0 ? 'WHERE' : `${where.sql} AND`;
    const byType = this.list(`SELECT type AS key, status, count(*) AS count FROM jobs ${where.sql} GROUP BY type, status`).all(
      ...where.params,
    ) as Stats['byType'];
    const byTrack = this.list(
      `SELECT track AS key, status, count(*) AS count FROM jobs ${and} track IS NOT NULL GROUP BY track, status`,
    ).all(...where.params) as Stats['byTrack'];
    const depth = this.list(`SELECT count(*) AS n FROM jobs ${and} status = 'PENDING' AND paused = 0 AND run_at <= ?`).get(
      ...where.params,
      now.getTime(),
    ) as { n: number };
    const durations = this.list(
      `SELECT finished_at - started_at AS d FROM jobs ${and} finished_at >= ? AND started_at IS NOT NULL AND status IN ('COMPLETED', 'FAILED')`,
    )
      .pluck()
      .all(...where.params, now.getTime() - 3_600_000) as number[];
    return summarizeStats(byType, byTrack, depth.n, durations);
  }

  async getBatches(ids: readonly string[]): Promise<(Batch | null)[]> {
    const byId = new Map((this.stmt.getBatches.all(JSON.stringify(ids)) as Row[]).map((row) => [row.id as string, batchFromRow(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async listBatches(filter: BatchFilter, page: PageRequest): Promise<Page<Batch>> {
    return this.page('batches', batchWhere(filter), page, BATCH_READ);
  }

  async countBatches(filter: BatchFilter): Promise<number> {
    return this.count('batches', batchWhere(filter));
  }

  async listLogs(jobId: string, after: number | null, limit: number): Promise<LogEntry[]> {
    return (this.stmt.listLogs.all(jobId, after ?? 0, pageSize(limit)) as Row[]).map((row) => ({
      seq: row.seq as number,
      jobId: row.job_id as string,
      attempt: row.attempt as number,
      at: new Date(row.at as number),
      level: row.level as LogEntry['level'],
      message: row.message as string,
    }));
  }

  async listDeliveries(filter: DeliveryFilter): Promise<Delivery[]> {
    const where = new Where();
    if (filter.jobId !== undefined) where.add('job_id = ?', filter.jobId);
    if (filter.batchId !== undefined) where.add('batch_id = ?', filter.batchId);
    if (where.parts.length === 0) throw new ValidationError('listDeliveries needs a jobId or a batchId');
    if (filter.status !== undefined) where.add('status = ?', filter.status);
    return (this.list(`SELECT * FROM deliveries ${where.sql} ORDER BY id`).all(...where.params) as Row[]).map(deliveryFromRow);
  }

  async getDelivery(id: string): Promise<Delivery | null> {
    return this.deliveryById(id);
  }

  async ingestCounts(): Promise<Map<string, IngestCounts>> {
    const rows = this.list('SELECT * FROM ingest_counts ORDER BY source').all() as Row[];
    return new Map(
      rows.map((row) => [row.source as string, Object.fromEntries(INGEST_OUTCOMES.map((o) => [o, row[o] as number])) as IngestCounts]),
    );
  }

  async addIngestCounts(counts: ReadonlyMap<string, Partial<IngestCounts>>): Promise<void> {
    await this.write(() => {
      for (const [source, delta] of counts) this.stmt.addIngestCounts.run(source, ...INGEST_OUTCOMES.map((o) => delta[o] ?? 0));
    });
  }

  async batchesWithMoves(before: Date, limit: number): Promise<string[]> {
    return this.stmt.batchesWithMoves.pluck().all(before.getTime(), limit) as string[];
  }

  async retentionCandidates(cutoffs: { completedBefore?: Date; failedBefore?: Date }, limit: number): Promise<string[]> {
    return this.list(`SELECT id FROM jobs
      WHERE ((status = 'COMPLETED' AND finished_at < ?) OR (status IN ('FAILED', 'CANCELLED') AND finished_at < ?))
        AND (batch_id IS NULL OR batch_id NOT IN (SELECT id FROM batches WHERE archived = 1))
      LIMIT ?`)
      .pluck()
      .all(
        cutoffs.completedBefore?.getTime() ?? Number.MIN_SAFE_INTEGER,
        cutoffs.failedBefore?.getTime() ?? Number.MIN_SAFE_INTEGER,
        limit,
      ) as string[];
  }

  private headSeq(): number | null {
    return (this.stmt.headSeq.get() as { seq: number } | undefined)?.seq ?? null;
  }

  private purgedThrough(): number {
    const row = this.stmt.getMeta.get('changes_purged_through') as { value: string } | undefined;
    return row === undefined ? 0 : Number(row.value);
  }

  private changesAfter(seq: number, limit: number, cursor: string | null): ChangeEvent[] {
    if (cursor !== null && seq < this.purgedThrough()) throw new CursorExpiredError(cursor);
    return (this.stmt.changesAfter.all(seq, limit) as unknown[][]).map((row) => changeFromValues(row, 0, row[CHANGE_FIELDS] as number));
  }

  /**
   * Publishes committed changes past the hub's position to local subscribers, in order.
   * This process's own changes come from memory (`local`) when they follow the position
   * directly; anything between (another process's changes) is read from the table first.
   * After a local write (`nudged`) that is all; the poll also reads what other processes
   * wrote after this one's last change.
   */
  private pump(nudged: boolean): void {
    if (this.closed || this.hub.subscriberCount === 0) {
      this.local = [];
      return;
    }
    try {
      for (;;) {
        const position = this.hub.livePosition === null ? 0 : decodeSeqCursor(this.hub.livePosition);
        while (this.local.length > 0 && seqOf(this.local[0]?.at(-1)) <= position) this.local.shift();
        const next = this.local[0];
        if (next !== undefined && seqOf(next[0]) === position + 1) {
          this.local.shift();
          this.hub.publish(next);
          continue;
        }
        if (nudged && next === undefined) return;
        const interest = this.hub.interest;
        if (interest !== null) {
          // Every listener said what it wants: read only that, then move past the rest.
          const head = this.headSeq();
          if (head === null || head <= position) return;
          const events = this.interestPoll(interest, position, head);
          this.hub.publish(events);
          if (events.length === 1000) continue;
          this.hub.advance(encodeSeqCursor(head));
          continue;
        }
        const events = this.changesAfter(position, 1000, null);
        this.rowsRead += events.length;
        this.hub.publish(events);
        if (events.length < 1000 && (next === undefined || events.length === 0)) return;
      }
    } catch (error) {
      this.local = [];
      this.hub.failAll(error);
    }
  }

  /**
   * The changes after `after` up to `head` that match `interest`, at most 1,000. The
   * filter runs inside SQLite, so the rows nobody wants (in a worker-only process: the
   * other processes' claims, progress and completions) never become events.
   */
  private interestPoll(interest: ChangeInterest, after: number, head: number): ChangeEvent[] {
    if (this.filteredPoll?.interest !== interest) {
      // The hub makes a new union whenever a listener comes or goes; the statement is kept while its SQL stays the same.
      const sql = `SELECT ${CHANGE_COLUMNS}, seq FROM changes WHERE seq > ? AND seq <= ? AND (${interestSql(interest)}) ORDER BY seq LIMIT 1000`;
      const statement = this.filteredPoll?.statement.source === sql ? this.filteredPoll.statement : this.db.prepare(sql).raw(true);
      this.filteredPoll = { interest, statement };
    }
    const rows = this.filteredPoll.statement.all(after, head) as unknown[][];
    this.rowsRead += rows.length;
    return rows.map((row) => changeFromValues(row, 0, row[CHANGE_FIELDS] as number));
  }

  /** Change rows the live tail has read from the table since the store opened (tests and diagnostics). */
  get feedRowsRead(): number {
    return this.rowsRead;
  }

  private nudge(): void {
    if (this.nudgeScheduled || this.hub.subscriberCount === 0) return;
    this.nudgeScheduled = true;
    setImmediate(() => {
      this.nudgeScheduled = false;
      this.pump(true);
    });
  }

  listen(after: string | null | undefined, listener: ChangeListener, keys?: RoutingKeys | null): Listening {
    return this.hub.listen(after, listener, keys);
  }

  async headCursor(): Promise<string | null> {
    const seq = this.headSeq();
    return seq === null ? null : encodeSeqCursor(seq);
  }

  /**
   * Deletes changes older than `before`. The newest change is never deleted: keeping it
   * keeps `max(seq)`, so sequence numbers are never reused.
   */
  async purgeChanges(before: Date): Promise<number> {
    return this.write(() => {
      const last = this.lastChangeBefore(before.getTime());
      if (last === null) return 0;
      const deleted = this.db.prepare('DELETE FROM changes WHERE seq <= ?').run(last).changes;
      this.stmt.setMeta.run('changes_purged_through', String(last));
      return deleted;
    });
  }

  /** The newest change older than `cutoff` but the newest of all, by binary search on the sequence (times grow with it). */
  private lastChangeBefore(cutoff: number): number | null {
    const first = this.db.prepare('SELECT seq FROM changes ORDER BY seq LIMIT 1').pluck().get() as number | undefined;
    const newest = this.headSeq();
    if (first === undefined || newest === null) return null;
    const atOrAfter = this.db.prepare('SELECT seq, at FROM changes WHERE seq >= ? ORDER BY seq LIMIT 1');
    let lo = first;
    let hi = newest - 1;
    let found: number | null = null;
    while (lo <= hi) {
      const mid = Math.floor((lo + hi) / 2);
      const row = atOrAfter.get(mid) as { seq: number; at: number } | undefined;
      if (row === undefined || row.seq > hi || row.at >= cutoff) hi = mid - 1;
      else {
        found = row.seq;
        lo = row.seq + 1;
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
}
