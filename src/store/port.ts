/**
 * The job store's ports: small interfaces, one per kind of caller (the worker's queue,
 * jobs and batches, the webhook outbox, the change feed, ingest counters), and
 * `JobStore`, all of them together. `store.ts` implements them once over a storage
 * engine (`engine.ts`: SQLite in `sqlite/`, MongoDB in `mongodb/`). The contract suite
 * in `test/store/store.contract.test.ts` is the executable definition of these
 * semantics; every engine must pass it.
 *
 * Conventions:
 * - Every write is atomic and yields one or more change events (see `listen`).
 * - Writes by a worker on a claimed job carry a `ClaimToken`; they are refused with
 *   `LEASE_LOST` unless the token is the job's current one and its lease has not expired.
 * - Bad input is refused with `BAD_USER_INPUT` before anything is written.
 */

import type {
  AccessControl,
  Batch,
  BatchStatus,
  Delivery,
  DeliveryAttempt,
  IngestOrigin,
  Job,
  JobStatus,
  JsonObject,
  LogEntry,
  LogLevel,
  Principal,
  Progress,
  Usage,
} from '../domain/types.js';
import type { LeaseLostError } from '../errors.js';
import type { ChangeListener, Listening } from './change-stream.js';
import type { ChangeInterest } from './interest.js';

/** A job to create. Unset fields get the store's defaults (priority 0, run now, PRIVATE). */
export interface NewJob {
  type: string;
  parameters: JsonObject;
  priority?: number;
  runAt?: Date;
  maxAttempts: number;
  ownerId: string;
  teamIds?: string[];
  accessControl?: AccessControl;
  webhook?: JsonObject | null;
  /** Unique per owner: the same key and the same payload return the existing job. */
  idempotencyKey?: string | null;
  /** See `Job.cacheKey`. */
  cacheKey?: string | null;
  /** See `Job.cachedFrom`. */
  cachedFrom?: string | null;
  /** See `Job.ingest`. */
  ingest?: IngestOrigin | null;
  /** See `Job.correlationId`. */
  correlationId?: string | null;
}

/** A job inside a new batch: owner, teams and access control come from the batch. */
export type NewBatchJob = Omit<NewJob, 'ownerId' | 'teamIds' | 'accessControl' | 'idempotencyKey'>;

export interface NewBatch {
  name: string;
  ownerId: string;
  teamIds?: string[];
  accessControl?: AccessControl;
  active?: boolean;
  webhook?: JsonObject | null;
  metadata?: JsonObject | null;
  idempotencyKey?: string | null;
  jobs: NewBatchJob[];
}

export interface Created<T> {
  value: T;
  /** False when an idempotency key matched an earlier identical submit. */
  created: boolean;
}

export interface JobFilter {
  status?: JobStatus[];
  type?: string[];
  batchId?: string;
  ownerId?: string;
  track?: string;
  cacheKey?: string;
  /** Only jobs that reused another job's results (true) or did not (false). */
  cached?: boolean;
  /** Only jobs ingested from this source. */
  source?: string;
  /** Only jobs waiting for a retry (PENDING after a failed attempt), or only the others. */
  retrying?: boolean;
  createdAfter?: Date;
  createdBefore?: Date;
  /** Only jobs this principal may read. */
  visibleTo?: Principal;
}

export interface BatchFilter {
  ownerId?: string;
  /** Only batches in one of these (derived) statuses. */
  status?: BatchStatus[];
  archived?: boolean;
  active?: boolean;
  createdAfter?: Date;
  createdBefore?: Date;
  visibleTo?: Principal;
}

export interface PageRequest {
  /** At most this many items (the store caps it at 1000). */
  first: number;
  /** The `endCursor` of the previous page. */
  after?: string | null;
}

/** A page of results, newest first. */
export interface Page<T> {
  items: T[];
  endCursor: string | null;
  hasNextPage: boolean;
}

export interface StatsFilter {
  batchId?: string;
  ownerId?: string;
  type?: string;
  visibleTo?: Principal;
}

export interface CountRow {
  key: string;
  status: JobStatus;
  count: number;
}

export interface Stats {
  byStatus: Record<JobStatus, number>;
  byType: CountRow[];
  byTrack: CountRow[];
  /** Pending jobs whose `runAt` has come. */
  queueDepth: number;
  /** Jobs that finished in the last hour, and their run time (startedAt → finishedAt). */
  finishedLastHour: number;
  avgDurationMs: number | null;
  p95DurationMs: number | null;
  throughputPerMinute: number;
}

export interface ClaimRequest {
  workerId: string;
  leaseMs: number;
  /** Only claim jobs of these types (the handlers this worker has). */
  types?: string[];
  /** Never claim these types (e.g. types at their concurrency limit). */
  excludeTypes?: string[];
  /**
   * At most this many jobs of a type in this claim (the type's free slots, under its
   * concurrency limit). A claim of several jobs never takes more, and still takes them in
   * the claim order.
   */
  caps?: Record<string, number>;
  now?: Date;
}

/**
 * A worker's write about one running job, fenced by its claim token. Several go to the
 * store together (`commitWrites`): each is checked and refused on its own.
 */
export type QueueWrite =
  | {
      kind: 'complete';
      token: ClaimToken;
      results: JsonObject | null;
      report?: AttemptReport | undefined;
      /**
       * The job as the writer last saw it (its claim, or its last write's result). While the
       * stored job still has this version, an engine may complete it without reading it back.
       */
      expected?: Job | undefined;
    }
  | { kind: 'fail'; token: ClaimToken; failure: FailRequest }
  | { kind: 'cancelled'; token: ClaimToken; report?: AttemptReport | undefined }
  | { kind: 'progress'; token: ClaimToken; progress: Omit<Progress, 'updatedAt'> }
  | { kind: 'logs'; token: ClaimToken; entries: NewLogEntry[] };

/** What `commitWrites` did: each write's job as written, or why it was refused, and the jobs it claimed. */
export interface WritesCommitted {
  /** In the order of the writes: the job after the write, or its error (`LeaseLostError` for a stale token). */
  written: (Job | Error)[];
  claimed: Job[];
}

/** Proof of a claim: the fencing token. */
export interface ClaimToken {
  jobId: string;
  workerId: string;
  /** The job's `leaseToken` at claim time: increases with every claim and never repeats. */
  leaseToken: number;
}

export interface Lease {
  leaseUntil: Date;
  /** Set when someone asked to cancel the running job. */
  cancelRequested: boolean;
}

export interface FailRequest extends AttemptReport {
  code: string;
  message: string;
  /** False for permanent errors: the job fails now whatever its attempts. */
  retriable: boolean;
  /** When to try again; ignored (the job fails for good) when not retriable or out of attempts. */
  retryAt: Date | null;
  /** Facts the handler attached to its error (`JobError.details`). */
  details?: JsonObject | null;
}

/** What a worker records with an attempt's outcome, in the same transaction as the outcome. */
export interface AttemptReport {
  /** Log lines the worker still holds (the outcome's own line last). */
  logs?: NewLogEntry[];
  /** What this attempt used: added to `Job.usage` and to its batch's summary. */
  usage?: Usage | null;
}

/** A change to a waiting job (`updateJob`); unset fields stay as they are. */
export interface JobPatch {
  priority?: number;
  runAt?: Date;
  maxAttempts?: number;
  /** Validated by the caller against the job's type; `track`, `cacheKey` and `cachedFrom` follow it. */
  parameters?: JsonObject;
  cacheKey?: string | null;
}

export interface NewLogEntry {
  level: LogLevel;
  message: string;
}

export type ChangeEntity = 'job' | 'batch' | 'delivery';
export type ChangeOp = 'created' | 'updated' | 'deleted' | 'logged';

/**
 * One write, as seen by the change feed. `data` is a summary fixed at write time, so
 * a replay shows every intermediate state:
 * - job: `{ status, attempts, progress, cancelRequested }`, plus `logSeqs` when the
 *   same write added log lines (their numbers: the text is read with `listLogs`);
 *   `logged` (lines alone): `{ logSeqs }`;
 * - batch: `{ status, counts, active, archived }`;
 * - delivery: `{ status, event }`.
 */
export interface ChangeEvent {
  /** Opaque and ordered; pass it to `watch({ after })` to resume after this event. */
  cursor: string;
  entity: ChangeEntity;
  op: ChangeOp;
  id: string;
  batchId: string | null;
  /** Owner of the entity: lets the feed be filtered without loading it. */
  ownerId: string | null;
  status: string | null;
  version: number;
  at: Date;
  data: JsonObject | null;
}

export interface WatchOptions {
  /** Replay every change after this cursor (while the store still holds it), then go live. */
  after?: string | null;
  signal?: AbortSignal;
  /** Only the changes matching this (see interest.ts); the store may skip the rest unread. */
  interest?: ChangeInterest;
}

export interface DeliveryOutcome {
  attempt: DeliveryAttempt;
  /** DELIVERED, FAILED (dead letter), DISABLED (410), or PENDING with `nextAttemptAt` (retry). */
  status: 'DELIVERED' | 'FAILED' | 'DISABLED' | 'PENDING';
  nextAttemptAt?: Date;
}

export interface DeliveryFilter {
  jobId?: string;
  /** Deliveries of the batch and of its jobs. */
  batchId?: string;
  /** Only deliveries in this state. */
  status?: Delivery['status'];
}

/** One attempt to record. */
export interface DeliveryRecord {
  id: string;
  outcome: DeliveryOutcome;
  /** The record as claimed by this worker: lets the store skip reading it again. */
  claimed?: Delivery;
}

export interface PurgeRequest {
  /** Delete COMPLETED jobs (with their logs and deliveries) that finished before this; jobs of archived batches stay. */
  completedBefore?: Date;
  /** The same for FAILED and CANCELLED jobs. */
  failedBefore?: Date;
  /** Delete change events older than this; cursors before them expire. */
  changesBefore?: Date;
}

export interface PurgeResult {
  jobs: number;
  changes: number;
  /** The deleted jobs, so their result files can go too. */
  jobIds: string[];
}

/** What happened to inbound webhooks of one source (`POST /hooks/<source>`). */
export const INGEST_OUTCOMES = ['received', 'verified', 'rejected', 'accepted', 'duplicate', 'ignored'] as const;
export type IngestOutcome = (typeof INGEST_OUTCOMES)[number];
export type IngestCounts = Record<IngestOutcome, number>;

/** The worker's side of the queue: claims and fenced writes (see `ClaimToken`). */
export interface QueuePort {
  /** Claims the next runnable job: priority desc, runAt, then creation; skips paused batches. */
  claimNext(request: ClaimRequest): Promise<Job | null>;
  /** Claims up to `limit` runnable jobs in one transaction, in the claim order (see `ClaimRequest.caps`). */
  claim(request: ClaimRequest, limit: number): Promise<Job[]>;
  renewLease(token: ClaimToken, leaseMs: number): Promise<Lease>;
  /**
   * Renews the leases of several running jobs in one transaction (one statement for the
   * renewal): a token that no longer holds its job gets its `LeaseLostError` in its place.
   */
  renewLeases(tokens: readonly ClaimToken[], leaseMs: number): Promise<(Lease | LeaseLostError)[]>;
  /**
   * Group commit: several outcomes, progress and log writes, and optionally the claim of up
   * to `claim.limit` more jobs, in one transaction. Each write is fenced on its own: a stale
   * token gets its `LeaseLostError` in its place and the others commit; every job change
   * carries its change event, outbox record and batch counts in the same transaction.
   */
  commitWrites(writes: readonly QueueWrite[], claim?: { request: ClaimRequest; limit: number } | null): Promise<WritesCommitted>;
  updateProgress(token: ClaimToken, progress: Omit<Progress, 'updatedAt'>): Promise<void>;
  appendLogs(token: ClaimToken, entries: NewLogEntry[]): Promise<void>;
  complete(token: ClaimToken, results: JsonObject | null, report?: AttemptReport): Promise<Job>;
  /**
   * Completes a job and claims the next one in the same transaction (a worker with a
   * free slot saves a commit per job). `next` is null when nothing is claimable.
   */
  completeAndClaim(
    token: ClaimToken,
    results: JsonObject | null,
    claim: ClaimRequest,
    report?: AttemptReport,
  ): Promise<{ completed: Job; next: Job | null }>;
  /** Records the attempt's error; back to PENDING at `retryAt`, or FAILED for good. */
  fail(token: ClaimToken, failure: FailRequest): Promise<Job>;
  /** Records CANCELLED for a running job whose cancellation was requested. */
  markCancelled(token: ClaimToken, report?: AttemptReport): Promise<Job>;
  /** Gives a running job back (graceful shutdown): PENDING now, the attempt refunded. */
  release(token: ClaimToken): Promise<Job>;
  /** PROCESSING jobs whose lease ran out go back to PENDING (or FAILED when out of attempts). */
  recoverExpiredLeases(now?: Date): Promise<number>;
}

/** Jobs and batches: creation, reads and control. */
export interface JobsPort {
  /** Creates jobs atomically: all of them or none (the error names the failing index). */
  createJobs(jobs: NewJob[]): Promise<Created<Job>[]>;
  /** Creates a batch and all its jobs atomically. */
  createBatch(batch: NewBatch): Promise<Created<{ batch: Batch; jobs: Job[] }>>;
  /** Jobs by id, in the order asked, null where missing (DataLoader-shaped). */
  getJobs(ids: readonly string[]): Promise<(Job | null)[]>;
  listJobs(filter: JobFilter, page: PageRequest): Promise<Page<Job>>;
  countJobs(filter: JobFilter): Promise<number>;
  stats(filter: StatsFilter, now?: Date): Promise<Stats>;

  /** PENDING → CANCELLED at once; PROCESSING → `cancelRequested` for the worker. */
  cancelJob(id: string): Promise<Job>;
  /** A terminal job → PENDING with a fresh attempt budget. */
  restartJob(id: string): Promise<Job>;
  /** Changes a PENDING job (priority, runAt, maxAttempts, parameters); `CONFLICT` once it runs or ended. */
  updateJob(id: string, patch: JobPatch): Promise<Job>;
  /** Deletes a job that is not running, with its logs. */
  deleteJob(id: string): Promise<void>;
  /** Replaces a job's access control; its change event carries `data.access: true`. */
  setJobAccess(id: string, accessControl: AccessControl): Promise<Job>;
  listLogs(jobId: string, after: number | null, limit: number): Promise<LogEntry[]>;

  getBatches(ids: readonly string[]): Promise<(Batch | null)[]>;
  listBatches(filter: BatchFilter, page: PageRequest): Promise<Page<Batch>>;
  countBatches(filter: BatchFilter): Promise<number>;
  setBatchActive(id: string, active: boolean): Promise<Batch>;
  archiveBatch(id: string, archived: boolean): Promise<Batch>;
  /** Cancels every pending job and asks running ones to stop. */
  cancelBatch(id: string): Promise<Batch>;
  /** Restarts the batch's failed jobs (and cancelled ones unless `onlyFailed`). */
  restartBatch(id: string, onlyFailed: boolean): Promise<Batch>;
  /** Deletes a batch and its jobs; refused while any of them runs. */
  deleteBatch(id: string): Promise<void>;
}

/** The webhook outbox. */
export interface OutboxPort {
  /** Deliveries of a job or a batch, oldest first. */
  listDeliveries(filter: DeliveryFilter): Promise<Delivery[]>;
  getDelivery(id: string): Promise<Delivery | null>;
  /**
   * Claims up to `limit` due deliveries with a lease. A due delivery whose URL answered
   * 410 Gone for the same job (or, for a batch's deliveries, the same batch) is not
   * claimed but recorded DISABLED with an `ENDPOINT_DISABLED` attempt.
   */
  claimDeliveries(workerId: string, limit: number, leaseMs: number, now?: Date): Promise<Delivery[]>;
  recordDeliveryAttempt(id: string, workerId: string, outcome: DeliveryOutcome): Promise<Delivery>;
  /**
   * Records several attempts and claims up to `claim.limit` more, in as few commits as
   * the engine allows (one SQLite transaction): a busy dispatcher saves a commit per
   * delivery, like `completeAndClaim` for jobs. A record refused for a lost lease comes
   * back as that `LeaseLostError` in its place; the others still count.
   */
  recordDeliveryAttempts(
    workerId: string,
    outcomes: DeliveryRecord[],
    claim: { limit: number; leaseMs: number } | null,
  ): Promise<{ recorded: (Delivery | LeaseLostError)[]; claimed: Delivery[] }>;
  /**
   * Hands claimed deliveries that were never sent back to the queue (a stopping
   * dispatcher's prefetched ones), without recording an attempt. Only deliveries still
   * leased by `workerId` move; returns how many did.
   */
  releaseDeliveries(workerId: string, ids: readonly string[]): Promise<number>;
  /** Puts a delivery back in the queue (replay of a dead letter). */
  redeliver(id: string): Promise<Delivery>;
}

/**
 * The change feed: one consumer API, `listen`. `watchChanges` (change-stream.ts) turns
 * it into an async iterable.
 */
export interface ChangeFeed {
  /**
   * `listener` gets every change after `after` (undefined: from now; null: from the
   * oldest retained), then live ones, until the returned `stop()` is called or
   * `listener.error` reports the end (e.g. `CURSOR_EXPIRED`). With `keys`, only the
   * changes that carry one of these routing keys (see `routingKeys`). Live events are
   * handed over inside the fan-out, so an idle listener costs no pending promise.
   */
  listen(after: string | null | undefined, listener: ChangeListener, keys?: RoutingKeys | null): Listening;
  /** The cursor of the newest change (null when there is none). */
  headCursor(): Promise<string | null>;
}

/** Inbound webhook counters per source. */
export interface IngestCounters {
  /** Adds to the per-source counters (each process sums locally and adds now and then). */
  addIngestCounts(counts: ReadonlyMap<string, Partial<IngestCounts>>): Promise<void>;
  /** The counters of every source seen so far. */
  ingestCounts(): Promise<Map<string, IngestCounts>>;
}

/** Every port of the store together, for callers that use several (the composition root, tests). */
export interface JobStore extends QueuePort, JobsPort, OutboxPort, ChangeFeed, IngestCounters {
  /** `sqlite` or `mongodb`. */
  readonly driver: string;
  /** `watchChanges` over `listen`: ordered change events, replays after `after`, then live until the signal aborts. */
  watch(options?: WatchOptions): AsyncIterable<ChangeEvent>;

  purge(request: PurgeRequest): Promise<PurgeResult>;
  /** Throws when the store is unreachable (used by /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type { BatchStatus };

/** One routing key, or several (`job:<id>`, `batch:<id>`: see `routingKeys`); one is a string, not an array of one. */
export type RoutingKeys = string | readonly string[];
