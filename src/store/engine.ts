/**
 * The storage engine port: what SQLite and MongoDB each implement, and nothing more.
 * Every queue operation (`operations/`) is written once over these primitives.
 *
 * Glossary:
 * - **unit of work** (`Engine.unit`): one transaction. The engine begins it, takes
 *   `tx.now` from its clock inside it, runs the work, commits, and retries the whole
 *   work on its own transient conflicts (MongoDB); the work only reads and writes.
 * - **Op**: a step of work as a generator. Operations compose primitives with
 *   `yield*`; the engine drives them. SQLite's primitives never wait, so SQLite drives
 *   an operation synchronously inside a better-sqlite3 transaction (no lock held across
 *   event-loop turns, no other caller sees a half-done write); MongoDB awaits each
 *   promise its primitives yield. The same operation code runs on both.
 * - **fast path**: an engine may do the claim (always, `Tx.claim`) and the completion
 *   (`Tx.completeFenced`, optional) in one statement, provided it writes exactly what the
 *   general operation writes (checked by test/store/fast-path.test.ts).
 * - **hold**: a batch held until a time is skipped by claims, whatever its jobs say: batch
 *   control flags the batch first, then changes its jobs in chunks (`operations/batch-control.ts`).
 */
import type { Batch, Delivery, Job, JobStatus, JsonObject, LogEntry } from '../domain/types.js';
import type { ChangeListener, Listening } from './change-stream.js';
import type {
  BatchFilter,
  ChangeEvent,
  ClaimRequest,
  ClaimToken,
  DeliveryFilter,
  IngestCounts,
  JobFilter,
  NewLogEntry,
  Page,
  PageRequest,
  Stats,
  StatsFilter,
} from './port.js';
import type { BatchMove } from './transitions.js';

/** A step of work: yields what it waits for (MongoDB only), returns its result. */
export type Op<T> = Generator<Promise<unknown>, T, unknown>;

/** A record found by its idempotency key, with the fingerprint of the submit that made it. */
export interface Keyed<T> {
  value: T;
  fingerprint: string | null;
}

/** A change event before the engine gives it its cursor. */
export type NewChange = Omit<ChangeEvent, 'cursor'>;

/** Primitives inside one unit of work. Each is one small read or write. */
export interface Tx {
  /** The engine's clock, read inside this transaction (MongoDB: the server's). */
  readonly now: Date;
  /**
   * True when job changes record their batch count moves (`insertBatchMoves`) instead of
   * rewriting the batch, which `operations/batch-counts.ts` applies after the commit
   * (MongoDB: workers finishing jobs of one batch do not conflict on its document).
   */
  readonly deferBatchCounts: boolean;
  /** Batches this unit recorded moves for (filled by `operations/commit.ts`). */
  readonly movedBatches: Set<string>;

  getJob(id: string): Op<Job | null>;
  /** Several jobs by id, in the order asked, null where missing (one read). */
  loadJobs(ids: readonly string[]): Op<(Job | null)[]>;
  jobByKey(ownerId: string, key: string): Op<Keyed<Job> | null>;
  /** New jobs (PENDING, version 1), `paused` when their batch is inactive. */
  insertJobs(jobs: readonly Job[], paused: boolean, fingerprints: readonly (string | null)[]): Op<void>;
  /**
   * Writes each `after` over its `before`: its state, and its parameters or access control
   * when those changed (MongoDB: one `bulkWrite`).
   */
  saveJobs(pairs: readonly { before: Job; after: Job }[]): Op<void>;
  /** Deletes a job with its log lines and deliveries. */
  deleteJob(job: Job): Op<void>;
  /** Jobs of a batch by id, after `afterId`, optionally only in some statuses. */
  jobsOfBatch(batchId: string, page: { statuses?: readonly JobStatus[]; afterId: string | null; limit: number }): Op<Job[]>;
  /** Sets `paused` on the next `limit` jobs of a batch after `afterId`; returns the last id set, or null when none was left. */
  pauseJobs(batchId: string, paused: boolean, afterId: string | null, limit: number): Op<string | null>;
  /**
   * Claims up to `limit` due jobs in the claim order (priority desc, runAt, id), skipping
   * paused jobs and held batches, and returns them as `transitions.claimed()` makes them.
   */
  claim(request: ClaimRequest, now: Date, limit: number): Op<Job[]>;
  /**
   * The fenced completion in one statement, as `transitions.completed()` without usage
   * makes it; null when the token is stale. Engines without it leave it out.
   */
  completeFenced?(token: ClaimToken, results: JsonObject | null, now: Date): Op<Job | null>;
  /**
   * The fenced completion of a job still stored at `job.version`, as
   * `transitions.completed(job)` without usage makes it, without reading the job back;
   * false (nothing written) when its version or lease differ. Engines without it leave it out.
   */
  completeExpected?(job: Job, token: ClaimToken, results: JsonObject | null, now: Date): Op<boolean>;
  /**
   * Extends the leases of jobs the operation has checked (`transitions.checkFence`) to
   * `until`, as `transitions.renewed()` makes them, in one statement.
   */
  extendLeases(ids: readonly string[], until: Date, now: Date): Op<void>;
  /** PROCESSING jobs whose lease ended before `now`. */
  expiredLeases(now: Date, limit: number): Op<Job[]>;
  /** Appends log lines to each job's current attempt; returns their sequence numbers, per item. */
  insertLogs(items: readonly { job: Job; entries: readonly NewLogEntry[] }[]): Op<number[][]>;

  getBatch(id: string): Op<Batch | null>;
  batchByKey(ownerId: string, key: string): Op<Keyed<Batch> | null>;
  insertBatch(batch: Batch, fingerprint: string | null): Op<void>;
  /** Writes a batch's counts, summary, flags, version and times. */
  saveBatch(batch: Batch): Op<void>;
  /** Claims skip the batch's jobs until `until` (null: no longer held). */
  holdBatch(id: string, until: Date | null): Op<void>;
  /** Deletes a batch record, its batch-level deliveries and its recorded moves (its jobs go first, one by one). */
  deleteBatch(id: string): Op<void>;
  /** Records count moves of a batch's jobs, to apply later (deferred engines). */
  insertBatchMoves(batchId: string, moves: readonly BatchMove[]): Op<void>;
  /** The oldest recorded moves of a batch, with their ids. */
  batchMoves(batchId: string, limit: number): Op<{ ids: string[]; moves: BatchMove[] }>;
  deleteBatchMoves(ids: readonly string[]): Op<void>;

  insertChanges(changes: readonly NewChange[]): Op<void>;

  insertDeliveries(deliveries: readonly Delivery[]): Op<void>;
  getDelivery(id: string): Op<Delivery | null>;
  /** Writes a delivery's state; with `owner`, only while that worker holds it SENDING (false otherwise). */
  saveDelivery(after: Delivery, owner: string | null): Op<boolean>;
  /** Leases until `leaseUntil` up to `limit` PENDING deliveries due at `now`, oldest due first. */
  claimDeliveries(workerId: string, limit: number, now: Date, leaseUntil: Date): Op<Delivery[]>;
  /** True when the delivery's URL answered 410 for its job (or, for a batch's deliveries, its batch). */
  disabledTarget(delivery: Delivery): Op<boolean>;
  /** SENDING deliveries whose lease ended before `now` go back to PENDING; returns how many. */
  resetExpiredDeliveries(now: Date): Op<number>;
  /** The worker's SENDING deliveries among `ids` go back to PENDING; returns how many. */
  releaseDeliveries(workerId: string, ids: readonly string[]): Op<number>;
}

/** Reads outside a unit of work: their query translation is the engine's own. */
export interface EngineReads {
  getJobs(ids: readonly string[]): Promise<(Job | null)[]>;
  listJobs(filter: JobFilter, page: PageRequest): Promise<Page<Job>>;
  countJobs(filter: JobFilter): Promise<number>;
  stats(filter: StatsFilter, now: Date): Promise<Stats>;
  getBatches(ids: readonly string[]): Promise<(Batch | null)[]>;
  listBatches(filter: BatchFilter, page: PageRequest): Promise<Page<Batch>>;
  countBatches(filter: BatchFilter): Promise<number>;
  listLogs(jobId: string, after: number | null, limit: number): Promise<LogEntry[]>;
  listDeliveries(filter: DeliveryFilter): Promise<Delivery[]>;
  getDelivery(id: string): Promise<Delivery | null>;
  ingestCounts(): Promise<Map<string, IngestCounts>>;
  /** Batches with moves recorded before `before` (left by a process that stopped between commit and apply). */
  batchesWithMoves(before: Date, limit: number): Promise<string[]>;
  /** Ids of jobs retention may delete (it checks each again inside its unit of work). */
  retentionCandidates(cutoffs: { completedBefore?: Date; failedBefore?: Date }, limit: number): Promise<string[]>;
}

/** Runs units of work (an engine, or the store, which also applies deferred batch moves after each). */
export interface Units {
  /** Runs `work` as one transaction (see the glossary); `work` may run more than once. */
  unit<T>(work: (tx: Tx) => Op<T>): Promise<T>;
}

export interface Engine extends EngineReads, Units {
  readonly driver: 'sqlite' | 'mongodb';
  /** See `Tx.deferBatchCounts`. */
  readonly deferBatchCounts: boolean;
  /** The engine's clock outside a unit of work (throttles, defaults). */
  now(): Date;
  /** The change source, fanned out in memory (`keys`: only events with one of these routing keys). */
  listen(after: string | null | undefined, listener: ChangeListener, keys?: readonly string[] | null): Listening;
  headCursor(): Promise<string | null>;
  /** Deletes change events older than `before`; cursors before them expire. Returns how many. */
  purgeChanges(before: Date): Promise<number>;
  /** Adds to the per-source ingest counters (increments, no read). */
  addIngestCounts(counts: ReadonlyMap<string, Partial<IngestCounts>>): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Runs an Op whose primitives never wait (SQLite). */
export function runNow<T>(op: Op<T>): T {
  const step = op.next();
  if (step.done !== true) throw new Error('internal: a synchronous engine was asked to wait');
  return step.value;
}

/** Runs an Op, awaiting what it yields and handing back results and rejections (MongoDB). */
export async function runAsync<T>(op: Op<T>): Promise<T> {
  let step = op.next();
  while (step.done !== true) {
    let value: unknown;
    try {
      value = await step.value;
    } catch (error) {
      step = op.throw(error);
      continue;
    }
    step = op.next(value);
  }
  return step.value;
}

/** An Op that runs `read` when driven: SQLite's primitives, which never wait. */
// biome-ignore lint/correctness/useYield: a synchronous primitive has nothing to wait for.
export function* sync<T>(read: () => T): Op<T> {
  return read();
}

/** An Op that waits for `promise` (MongoDB's primitives). */
export function* wait<T>(promise: Promise<T>): Op<T> {
  return (yield promise) as T;
}
