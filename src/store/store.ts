/**
 * The job store: every port of `port.ts`, implemented once over a storage engine.
 * Writes run the operations of `operations/` in the engine's units of work; reads and
 * the change feed go to the engine's own queries. Nothing here knows which engine runs.
 */
import type { AccessControl, Batch, Delivery, Job, JsonObject, LogEntry, Progress } from '../domain/types.js';
import { coerceError, type LeaseLostError } from '../errors.js';
import { type ChangeListener, type Listening, watchChanges } from './change-stream.js';
import type { Engine, Op, Tx, Units } from './engine.js';
import * as batches from './operations/batch-control.js';
import { applyBatchMoves } from './operations/commit.js';
import * as create from './operations/create.js';
import * as deliveries from './operations/deliveries.js';
import * as control from './operations/job-control.js';
import * as queue from './operations/queue.js';
import { purge } from './operations/retention.js';
import type {
  AttemptReport,
  BatchFilter,
  ChangeEvent,
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
  QueueWrite,
  Stats,
  StatsFilter,
  WatchOptions,
  WritesCommitted,
} from './port.js';
import { prepareBatch, prepareJobs } from './prepare.js';

export interface StoreOptions {
  /** How often claims first recover expired leases (and delivery claims expired delivery leases). Default 1000. */
  leaseCheckMs?: number;
  /**
   * Use the engine's one-statement completion where it has one. Default true; false
   * runs the general operation everywhere (the fast-path test compares the two).
   */
  fastPaths?: boolean;
}

/** Expired leases taken back per unit of work. */
const RECOVER_PAGE = 500;
/** Recorded batch moves older than this are applied by the lease check (their writer stopped before applying them). */
const STALE_MOVES_MS = 5000;

export class Store implements JobStore, Units {
  readonly driver: string;
  private readonly leaseCheckMs: number;
  private readonly fast: boolean;
  private lastLeaseCheck = 0;
  private lastDeliveryLeaseCheck = 0;
  /** Batches whose recorded moves this process is applying; `again`: more were recorded meanwhile. */
  private readonly applying = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();

  constructor(
    /** The engine underneath (tests and benchmarks only). */
    readonly engine: Engine,
    options: StoreOptions = {},
  ) {
    this.driver = engine.driver;
    this.leaseCheckMs = options.leaseCheckMs ?? 1000;
    this.fast = options.fastPaths ?? true;
  }

  /**
   * Runs `work` in one unit of work; on an engine that defers batch counts, then applies
   * the batch moves the unit recorded (a later lease check applies what a failure here
   * leaves: the unit itself has committed, so its caller gets its result).
   */
  async unit<T>(work: (tx: Tx) => Op<T>): Promise<T> {
    let last: Tx | null = null;
    const result = await this.engine.unit((tx) => {
      last = tx;
      return work(tx);
    });
    const moved = (last as Tx | null)?.movedBatches;
    if (moved !== undefined && moved.size > 0) await Promise.all([...moved].map((id) => this.applyMoves(id).catch(() => undefined)));
    return result;
  }

  /** Applies a batch's recorded moves; one run per batch at a time in this process, repeated when more arrive meanwhile. */
  private applyMoves(batchId: string): Promise<void> {
    const running = this.applying.get(batchId);
    if (running !== undefined) {
      this.again.add(batchId);
      return running;
    }
    const run = (async () => {
      do {
        this.again.delete(batchId);
        await this.engine.unit((tx) => applyBatchMoves(tx, batchId));
      } while (this.again.has(batchId));
    })().finally(() => this.applying.delete(batchId));
    this.applying.set(batchId, run);
    return run;
  }

  async createJobs(inputs: NewJob[]): Promise<Created<Job>[]> {
    const prepared = prepareJobs(inputs, this.engine.now());
    return this.unit((tx) => create.createJobs(tx, prepared));
  }

  async createBatch(input: NewBatch): Promise<Created<{ batch: Batch; jobs: Job[] }>> {
    const prepared = prepareBatch(input, this.engine.now());
    return this.unit((tx) => create.createBatch(tx, prepared));
  }

  getJobs(ids: readonly string[]): Promise<(Job | null)[]> {
    return this.engine.getJobs(ids);
  }

  listJobs(filter: JobFilter, page: PageRequest): Promise<Page<Job>> {
    return this.engine.listJobs(filter, page);
  }

  countJobs(filter: JobFilter): Promise<number> {
    return this.engine.countJobs(filter);
  }

  stats(filter: StatsFilter, now?: Date): Promise<Stats> {
    return this.engine.stats(filter, now ?? this.engine.now());
  }

  /**
   * Recovers expired leases first when `leaseCheckMs` has passed since the last look; null
   * when it is not due (no promise to wait for on the hot path).
   */
  private leaseCheck(now: Date | undefined): Promise<number> | null {
    const at = (now ?? this.engine.now()).getTime();
    return at - this.lastLeaseCheck >= this.leaseCheckMs ? this.recoverExpiredLeases(now) : null;
  }

  async claimNext(request: ClaimRequest): Promise<Job | null> {
    const [job] = await this.claim(request, 1);
    return job ?? null;
  }

  async claim(request: ClaimRequest, limit: number): Promise<Job[]> {
    const check = this.leaseCheck(request.now);
    if (check !== null) await check;
    return this.unit((tx) => queue.claim(tx, request, limit));
  }

  renewLease(token: ClaimToken, leaseMs: number): Promise<Lease> {
    return this.unit((tx) => queue.renewLease(tx, token, leaseMs));
  }

  async renewLeases(tokens: readonly ClaimToken[], leaseMs: number): Promise<(Lease | LeaseLostError)[]> {
    if (tokens.length === 0) return [];
    return this.unit((tx) => queue.renewLeases(tx, tokens, leaseMs));
  }

  /**
   * One unit of work for the group. A write that makes the whole unit fail (anything but a
   * lost lease, which is answered in its place) must not fail the others: the writes are
   * then committed one by one, each with its own result, and the claim is left to the
   * caller's next one.
   */
  async commitWrites(
    writes: readonly QueueWrite[],
    claim: { request: ClaimRequest; limit: number } | null = null,
  ): Promise<WritesCommitted> {
    const check = claim === null ? null : this.leaseCheck(claim.request.now);
    if (check !== null) await check;
    try {
      return await this.unit((tx) => queue.commitWrites(tx, writes, claim, this.fast));
    } catch (error) {
      if (writes.length <= 1 && claim === null) throw error;
      const written: (Job | Error)[] = [];
      for (const write of writes) {
        written.push(await this.unit((tx) => queue.commitWrite(tx, write, this.fast)).catch(coerceError));
      }
      return { written, claimed: [] };
    }
  }

  updateProgress(token: ClaimToken, progress: Omit<Progress, 'updatedAt'>): Promise<void> {
    return this.unit((tx) => queue.updateProgress(tx, token, progress));
  }

  async appendLogs(token: ClaimToken, entries: NewLogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.unit((tx) => queue.appendLogs(tx, token, entries));
  }

  complete(token: ClaimToken, results: JsonObject | null, report?: AttemptReport): Promise<Job> {
    return this.unit((tx) => queue.complete(tx, token, results, report, this.fast));
  }

  async completeAndClaim(
    token: ClaimToken,
    results: JsonObject | null,
    claim: ClaimRequest,
    report?: AttemptReport,
  ): Promise<{ completed: Job; next: Job | null }> {
    const check = this.leaseCheck(claim.now);
    if (check !== null) await check;
    return this.unit((tx) => queue.completeAndClaim(tx, token, results, claim, report, this.fast));
  }

  fail(token: ClaimToken, failure: FailRequest): Promise<Job> {
    return this.unit((tx) => queue.fail(tx, token, failure));
  }

  markCancelled(token: ClaimToken, report?: AttemptReport): Promise<Job> {
    return this.unit((tx) => queue.markCancelled(tx, token, report));
  }

  release(token: ClaimToken): Promise<Job> {
    return this.unit((tx) => queue.release(tx, token));
  }

  /** Takes back every job whose lease ended before `now` (default: the engine's clock), a page per unit of work. */
  async recoverExpiredLeases(now?: Date): Promise<number> {
    const at = now ?? this.engine.now();
    this.lastLeaseCheck = at.getTime();
    if (this.engine.deferBatchCounts) {
      for (const batchId of await this.engine.batchesWithMoves(new Date(at.getTime() - STALE_MOVES_MS), 100))
        await this.applyMoves(batchId);
    }
    let total = 0;
    for (;;) {
      const count = await this.unit((tx) => queue.recoverExpiredLeases(tx, now ?? tx.now, RECOVER_PAGE));
      total += count;
      if (count < RECOVER_PAGE) return total;
    }
  }

  cancelJob(id: string): Promise<Job> {
    return this.unit((tx) => control.cancelJob(tx, id));
  }

  restartJob(id: string): Promise<Job> {
    return this.unit((tx) => control.restartJob(tx, id));
  }

  updateJob(id: string, patch: JobPatch): Promise<Job> {
    return this.unit((tx) => control.updateJob(tx, id, patch));
  }

  deleteJob(id: string): Promise<void> {
    return this.unit((tx) => control.deleteJob(tx, id));
  }

  setJobAccess(id: string, accessControl: AccessControl): Promise<Job> {
    return this.unit((tx) => control.setJobAccess(tx, id, accessControl));
  }

  listLogs(jobId: string, after: number | null, limit: number): Promise<LogEntry[]> {
    return this.engine.listLogs(jobId, after, limit);
  }

  getBatches(ids: readonly string[]): Promise<(Batch | null)[]> {
    return this.engine.getBatches(ids);
  }

  listBatches(filter: BatchFilter, page: PageRequest): Promise<Page<Batch>> {
    return this.engine.listBatches(filter, page);
  }

  countBatches(filter: BatchFilter): Promise<number> {
    return this.engine.countBatches(filter);
  }

  setBatchActive(id: string, active: boolean): Promise<Batch> {
    return batches.setBatchActive(this, id, active);
  }

  archiveBatch(id: string, archived: boolean): Promise<Batch> {
    return this.unit((tx) => batches.archiveBatch(tx, id, archived));
  }

  cancelBatch(id: string): Promise<Batch> {
    return batches.cancelBatch(this, id);
  }

  restartBatch(id: string, onlyFailed: boolean): Promise<Batch> {
    return batches.restartBatch(this, id, onlyFailed);
  }

  deleteBatch(id: string): Promise<void> {
    return batches.deleteBatch(this, id);
  }

  listDeliveries(filter: DeliveryFilter): Promise<Delivery[]> {
    return this.engine.listDeliveries(filter);
  }

  getDelivery(id: string): Promise<Delivery | null> {
    return this.engine.getDelivery(id);
  }

  /** True (and the clock reset) when expired delivery leases are due for a look. */
  private deliveryLeaseCheck(now: Date): boolean {
    if (now.getTime() - this.lastDeliveryLeaseCheck < this.leaseCheckMs) return false;
    this.lastDeliveryLeaseCheck = now.getTime();
    return true;
  }

  claimDeliveries(workerId: string, limit: number, leaseMs: number, now?: Date): Promise<Delivery[]> {
    const reset = this.deliveryLeaseCheck(now ?? this.engine.now());
    return this.unit((tx) => deliveries.claimDeliveries(tx, workerId, limit, leaseMs, reset, now ?? tx.now));
  }

  recordDeliveryAttempt(id: string, workerId: string, outcome: DeliveryOutcome): Promise<Delivery> {
    return this.unit((tx) => deliveries.recordAttempt(tx, id, workerId, outcome));
  }

  recordDeliveryAttempts(
    workerId: string,
    outcomes: DeliveryRecord[],
    claim: { limit: number; leaseMs: number } | null,
  ): Promise<{ recorded: (Delivery | LeaseLostError)[]; claimed: Delivery[] }> {
    const reset = claim !== null && this.deliveryLeaseCheck(this.engine.now());
    return this.unit((tx) => deliveries.recordAttempts(tx, workerId, outcomes, claim, reset));
  }

  async releaseDeliveries(workerId: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.unit((tx) => tx.releaseDeliveries(workerId, ids));
  }

  redeliver(id: string): Promise<Delivery> {
    return this.unit((tx) => deliveries.redeliver(tx, id));
  }

  listen(after: string | null | undefined, listener: ChangeListener, keys?: readonly string[] | null): Listening {
    return this.engine.listen(after, listener, keys);
  }

  watch(options: WatchOptions = {}): AsyncIterable<ChangeEvent> {
    return watchChanges((after, listener) => this.engine.listen(after, listener), options);
  }

  headCursor(): Promise<string | null> {
    return this.engine.headCursor();
  }

  addIngestCounts(counts: ReadonlyMap<string, Partial<IngestCounts>>): Promise<void> {
    return counts.size === 0 ? Promise.resolve() : this.engine.addIngestCounts(counts);
  }

  ingestCounts(): Promise<Map<string, IngestCounts>> {
    return this.engine.ingestCounts();
  }

  purge(request: PurgeRequest): Promise<PurgeResult> {
    return purge(this.engine, this, request);
  }

  ping(): Promise<void> {
    return this.engine.ping();
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}

/** The job store over `engine`. */
export function createStore(engine: Engine, options: StoreOptions = {}): Store {
  return new Store(engine, options);
}
