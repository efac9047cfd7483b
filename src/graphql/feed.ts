/**
 * Subscriptions on top of the store's change feed. The store already fans one change
 * source per process out to every listener (see store/change-hub.ts), so no
 * subscriber holds a database cursor of its own; this module turns the raw events into
 * what each subscription promises: the current state first (op SNAPSHOT), then every
 * change, each checked against the subscriber's read access.
 *
 * Each subscription is one `PushStream` fed by a `store.listen()` callback, so an idle
 * subscriber holds a few small objects, not a chain of waiting async generators.
 *
 * Access checks need a job's owner, teams and ACL: see access-cache.ts for how they are
 * cached and kept right. Every stream that follows one job (jobUpdated, jobLogs,
 * deliveryUpdated) checks access again on that job's access changes and ends with
 * FORBIDDEN once it is withdrawn; jobEvents and batchUpdated leave out what the
 * subscriber may no longer read.
 */
import { can } from '../domain/access.js';
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
import { PushStream, type PushStreamOptions, SKIP } from '../lib/push-stream.js';
import { type FollowOptions, followChanges, type Listen } from '../store/change-stream.js';
import type { ChangeEvent, JobStore } from '../store/port.js';
import { JobAccessCache } from './access-cache.js';

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

/** The log lines numbered `seqs` (ascending) of a job, read page by page; a line deleted since is missing. */
async function logLines(store: Pick<JobStore, 'listLogs'>, jobId: string, seqs: readonly number[]): Promise<Map<number, LogEntry>> {
  const wanted = new Set(seqs);
  const last = seqs.at(-1) as number;
  const found = new Map<number, LogEntry>();
  let after = (seqs[0] as number) - 1;
  for (;;) {
    const page = await store.listLogs(jobId, after, LOG_PAGE);
    for (const entry of page) if (wanted.has(entry.seq)) found.set(entry.seq, entry);
    const end = page.at(-1)?.seq;
    if (page.length < LOG_PAGE || end === undefined || end >= last) return found;
    after = end;
  }
}

/** Log lines read per page before a `jobLogs` subscriber goes live. */
const LOG_PAGE = 500;

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

/** An expected error becomes the stream's last message; anything else is the server's. */
const streamErrorOf = (error: unknown): StreamError | undefined => (error instanceof AppError ? new StreamError(error) : undefined);

/** Every subscription's stream options: one object, not one per stream. */
const STREAM_OPTIONS: PushStreamOptions<unknown> = { lastValue: streamErrorOf };

/**
 * What the snapshot followers of one feed share (built once per feed): the store, its
 * keyed `listen`, the access cache and the helpers that turn changes into models.
 */
interface FeedParts {
  store: JobStore;
  listen: Listen;
  access: JobAccessCache;
  jobModel(event: ChangeEvent): JobChangeModel;
  batchModel(event: ChangeEvent, job: JobChangeModel | null): BatchChangeModel;
  batchModelWithoutJob(event: ChangeEvent): BatchChangeModel;
  owns(principal: Principal, ownerId: string | null): boolean;
  mayRead(principal: Principal, jobId: string, ownerId: string | null): Promise<boolean>;
  recheck<T>(principal: Principal, id: string, event: ChangeEvent, value: T): Promise<T>;
  readableJob(principal: Principal, id: string): Promise<Job>;
  readableBatch(principal: Principal, id: string): Promise<Batch>;
}

/**
 * A subscription that follows one job or batch (routing key `key`): the changes after
 * `after` to `event`, or — without a cursor, or when it has expired — first the
 * snapshot `read()` makes and then the changes after the head it was read at. Reading
 * the head before the snapshot means a write in between shows up twice (in the
 * snapshot and as a change) but is never lost. Classes rather than closures: every
 * idle subscriber keeps one, and it is the follower's change handler and options too.
 */
abstract class SnapshotFollow<S> implements FollowOptions {
  constructor(
    protected readonly feed: FeedParts,
    protected readonly stream: PushStream<S | StreamError>,
    /** The one routing key followed (a string, not an array of one: see RoutingKeys). */
    readonly keys: string,
  ) {}

  /** The current state, read at change cursor `head`. */
  protected abstract read(head: string): Promise<S[]>;

  /** A change of the followed job or batch (or of a job of the batch). */
  abstract event(event: ChangeEvent): void;

  async start(after: string | null | undefined): Promise<void> {
    // "" is the cursor of a snapshot taken before the first change ever: from the start.
    let from: string | null = after === '' ? null : (after ?? null);
    if (after === null || after === undefined) {
      from = await this.feed.store.headCursor();
      for (const snapshot of await this.read(from ?? '')) this.stream.push(snapshot);
    }
    followChanges(this.feed.listen, this.stream, from, this, this);
  }

  onError(error: Error): void {
    if (error instanceof CursorExpiredError) this.start(null).catch((failure: unknown) => this.stream.fail(failure));
    else this.stream.fail(error);
  }
}

/** `jobUpdated`: one job's changes; ends when it is deleted, or with FORBIDDEN when read access is withdrawn. */
class JobUpdates extends SnapshotFollow<JobChangeModel> {
  constructor(
    feed: FeedParts,
    stream: PushStream<JobChangeModel | StreamError>,
    private readonly principal: Principal,
    private readonly id: string,
  ) {
    super(feed, stream, `job:${id}`);
  }

  protected async read(head: string): Promise<JobChangeModel[]> {
    return [jobSnapshot(await this.feed.readableJob(this.principal, this.id), head)];
  }

  event(event: ChangeEvent): void {
    const feed = this.feed;
    feed.access.note(event);
    if (event.entity !== 'job' || event.id !== this.id || event.op === 'logged') return;
    if (event.data?.access === true) {
      this.stream.push(feed.recheck(this.principal, this.id, event, feed.jobModel(event)));
      return;
    }
    this.stream.push(feed.jobModel(event));
    if (event.op === 'deleted') this.stream.end();
  }
}

/** `batchUpdated`: a batch's changes, each with the job change that moved its counts (for those who may read that job). */
class BatchUpdates extends SnapshotFollow<BatchChangeModel> {
  // The job change that moved the counts comes just before the batch change, in the same transaction.
  private lastJob: JobChangeModel | null = null;
  private lastJobEvent: ChangeEvent | null = null;

  constructor(
    feed: FeedParts,
    stream: PushStream<BatchChangeModel | StreamError>,
    private readonly principal: Principal,
    private readonly id: string,
  ) {
    super(feed, stream, `batch:${id}`);
  }

  protected async read(head: string): Promise<BatchChangeModel[]> {
    return [batchSnapshot(await this.feed.readableBatch(this.principal, this.id), head)];
  }

  event(event: ChangeEvent): void {
    const feed = this.feed;
    feed.access.note(event);
    if (event.entity === 'job' && event.batchId === this.id && event.op !== 'logged') {
      this.lastJob = feed.jobModel(event);
      this.lastJobEvent = event;
    } else if (event.entity === 'batch' && event.id === this.id) {
      const job = this.lastJob;
      const jobEvent = this.lastJobEvent;
      if (job === null || jobEvent === null || feed.owns(this.principal, jobEvent.ownerId)) this.stream.push(feed.batchModel(event, job));
      else {
        // The counts are the batch's; which job moved them, and its status, only for those who may read that job.
        this.stream.push(
          feed
            .mayRead(this.principal, jobEvent.id, jobEvent.ownerId)
            .then((readable) => (readable ? feed.batchModel(event, job) : feed.batchModelWithoutJob(event))),
        );
      }
      this.lastJob = null;
      this.lastJobEvent = null;
      if (event.op === 'deleted') this.stream.end();
    }
  }
}

/** `deliveryUpdated`: the webhook deliveries of one job or one batch. */
class DeliveryUpdates extends SnapshotFollow<DeliveryChangeModel> {
  constructor(
    feed: FeedParts,
    stream: PushStream<DeliveryChangeModel | StreamError>,
    private readonly principal: Principal,
    private readonly jobId: string | null,
    private readonly batchId: string | null,
  ) {
    super(feed, stream, jobId !== null ? `job:${jobId}` : `batch:${batchId}`);
  }

  protected async read(head: string): Promise<DeliveryChangeModel[]> {
    const filter = this.jobId !== null ? { jobId: this.jobId } : { batchId: this.batchId as string };
    return (await this.feed.store.listDeliveries(filter)).map(
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
  }

  event(event: ChangeEvent): void {
    const { feed, principal, jobId, batchId } = this;
    feed.access.note(event);
    if (event.op === 'deleted' && (event.entity === 'job' ? event.id === jobId : event.entity === 'batch' && event.id === batchId)) {
      this.stream.end();
      return;
    }
    if (jobId !== null && accessChangeOf(event, jobId)) {
      this.stream.push(feed.recheck(principal, jobId, event, SKIP));
      return;
    }
    if (event.entity !== 'delivery') return;
    const eventJobId = typeof event.data?.jobId === 'string' ? event.data.jobId : null;
    if (jobId !== null ? eventJobId !== jobId : event.batchId !== batchId) return;
    const change: DeliveryChangeModel = {
      cursor: event.cursor,
      op: OPS[event.op] ?? 'UPDATED',
      deliveryId: event.id,
      jobId: eventJobId,
      batchId: event.batchId,
      event: typeof event.data?.event === 'string' ? event.data.event : null,
      status: event.status,
      snapshot: null,
    };
    // A batch's stream shows the deliveries of its jobs only to those who may read the job.
    if (jobId === null && eventJobId !== null && !feed.owns(principal, event.ownerId)) {
      this.stream.push(feed.mayRead(principal, eventJobId, event.ownerId).then((readable) => (readable ? change : SKIP)));
    } else this.stream.push(change);
  }
}

/** The access change of the job a stream follows. */
const accessChangeOf = (event: ChangeEvent, jobId: string): boolean =>
  event.entity === 'job' && event.id === jobId && event.data?.access === true;

export function createSubscriptionFeed(store: JobStore, options: { cacheSize?: number } = {}): SubscriptionFeed {
  const cacheSize = options.cacheSize ?? 50_000;
  const count = { active: 0 };
  const access = new JobAccessCache(store, cacheSize);
  /** Log reads under way, by job and line numbers: subscribers of one job given the same change share one read. */
  const logReads = new Map<string, Promise<Map<number, LogEntry>>>();
  const sharedLogLines = (jobId: string, seqs: readonly number[]): Promise<Map<number, LogEntry>> => {
    const key = `${jobId}:${seqs[0]}:${seqs.at(-1)}:${seqs.length}`;
    let read = logReads.get(key);
    if (read === undefined) {
      read = logLines(store, jobId, seqs);
      logReads.set(key, read);
      const done = () => logReads.delete(key);
      read.then(done, done);
    }
    return read;
  };
  // Live subscribers receive the same event objects from the store's fan-out; giving them
  // the same models too lets shared-execution.ts execute each change once for all of them.
  const jobModels = new WeakMap<ChangeEvent, JobChangeModel>();
  const batchModels = new WeakMap<ChangeEvent, BatchChangeModel>();
  /** Batch changes shown without the job that moved them (a job the subscriber may not read). */
  const batchModelsWithoutJob = new WeakMap<ChangeEvent, BatchChangeModel>();
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

  const batchModelWithoutJob = (event: ChangeEvent): BatchChangeModel => {
    let model = batchModelsWithoutJob.get(event);
    if (model === undefined) {
      model = batchChangeOf(event, null);
      batchModelsWithoutJob.set(event, model);
    }
    return model;
  };

  /** Owners and admins read without a lookup. */
  const owns = (principal: Principal, ownerId: string | null): boolean =>
    principal.admin || (principal.userId !== null && ownerId === principal.userId);

  /** May `principal` read job `jobId` (owned by `ownerId`) now? */
  async function mayRead(principal: Principal, jobId: string, ownerId: string | null): Promise<boolean> {
    if (owns(principal, ownerId)) return true;
    const info = await access.get(jobId);
    return info !== null && can(principal, 'read', info);
  }

  /** After an access change of job `id`: `value` while still readable, else the stream ends with FORBIDDEN. */
  function recheck<T>(principal: Principal, id: string, event: ChangeEvent, value: T): Promise<T> {
    return mayRead(principal, id, event.ownerId).then((readable) => {
      if (!readable) throw new ForbiddenError(`read access to job ${id} was withdrawn`, { jobId: id });
      return value;
    });
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

  /** With keys, only the changes of one job (`job:<id>`) or one batch and its jobs (`batch:<id>`): see routingKeys. */
  const listen: Listen = (after, listener, keys) => store.listen(after, listener, keys);
  const parts: FeedParts = {
    store,
    listen,
    access,
    jobModel,
    batchModel,
    batchModelWithoutJob,
    owns,
    mayRead,
    recheck,
    readableJob,
    readableBatch,
  };

  /** One hook for every stream (not a closure each): a subscription ended. */
  const closed = (): void => {
    count.active--;
    access.close();
  };

  /** A new subscription's stream, counted while open; `start` feeds it and its failure ends it. */
  function open<T>(start: (stream: PushStream<T | StreamError>) => Promise<void>): PushStream<T | StreamError> {
    const stream = new PushStream<T | StreamError>(STREAM_OPTIONS as PushStreamOptions<T | StreamError>);
    count.active++;
    access.open();
    stream.onClose(closed);
    start(stream).catch((error: unknown) => stream.fail(error));
    return stream;
  }

  return {
    activeSubscriptions: () => count.active,
    jobUpdated(principal, id, after) {
      return open<JobChangeModel>(async (stream) => {
        // Checked up front so that a resuming subscriber without access gets NOT_FOUND too.
        if (after !== null && after !== undefined) await readableJob(principal, id);
        await new JobUpdates(parts, stream, principal, id).start(after);
      });
    },

    batchUpdated(principal, id, after) {
      return open<BatchChangeModel>(async (stream) => {
        if (after !== null && after !== undefined) await readableBatch(principal, id);
        await new BatchUpdates(parts, stream, principal, id).start(after);
      });
    },

    jobEvents(principal, filter, after) {
      return open<JobChangeModel>(async (stream) => {
        const byInfo = filter.type != null || filter.source != null;
        /** Read access and the type/source filter, which need the job's access info. */
        const check = async (event: ChangeEvent): Promise<JobChangeModel | typeof SKIP> => {
          if (!(await mayRead(principal, event.id, event.ownerId))) return SKIP;
          if (byInfo) {
            const info = await access.get(event.id);
            if (info === null) return SKIP;
            if (filter.type != null && (info.type === null || !filter.type.includes(info.type))) return SKIP;
            if (filter.source != null && info.source !== filter.source) return SKIP;
          }
          return jobModel(event);
        };
        // "" (a snapshot taken before the first change): from the start.
        const options = filter.batchId != null ? { keys: [`batch:${filter.batchId}`] } : {};
        followChanges(
          listen,
          stream,
          after === '' ? null : (after ?? undefined),
          (event) => {
            // Before any filter: an access change this subscriber does not see still counts.
            access.note(event);
            if (event.entity !== 'job' || event.op === 'logged') return;
            if (filter.batchId != null && event.batchId !== filter.batchId) return;
            if (filter.ownerId != null && event.ownerId !== filter.ownerId) return;
            if (filter.status != null && !filter.status.includes(event.status as JobStatus)) return;
            stream.push(owns(principal, event.ownerId) && !byInfo ? jobModel(event) : check(event));
          },
          options,
        );
      });
    },

    deliveryUpdated(principal, target, after) {
      return open<DeliveryChangeModel>(async (stream) => {
        const jobId = target.jobId ?? null;
        const batchId = target.batchId ?? null;
        if ((jobId === null) === (batchId === null)) throw new ValidationError('give exactly one of jobId and batchId', { field: 'jobId' });
        if (jobId !== null) await readableJob(principal, jobId);
        else await readableBatch(principal, batchId as string);
        await new DeliveryUpdates(parts, stream, principal, jobId, batchId).start(after);
      });
    },

    jobLogs(principal, id, after) {
      return open<LogEntry>(async (stream) => {
        await readableJob(principal, id);
        let lastSeq = after ?? 0;
        const head = await store.headCursor();
        for (;;) {
          const page = await store.listLogs(id, lastSeq, LOG_PAGE);
          for (const entry of page) {
            lastSeq = entry.seq;
            stream.push(entry);
          }
          if (page.length < LOG_PAGE || stream.closed) break;
          // Read the next page when the consumer has taken this one.
          if (stream.backlog > 0) {
            await new Promise<void>((resolve) => {
              stream.onDrain = resolve;
              stream.onClose(resolve);
            });
            stream.onDrain = null;
          }
        }
        followChanges(
          listen,
          stream,
          head,
          (event) => {
            access.note(event);
            if (event.entity !== 'job' || event.id !== id) return;
            if (event.data?.access === true) {
              stream.push(recheck(principal, id, event, SKIP));
              return;
            }
            if (event.op === 'deleted') {
              stream.end();
              return;
            }
            const data = event.data;
            if (data === null) return;
            // A change written by a process of an earlier version: one line, with its text.
            if (event.op === 'logged' && typeof data.seq === 'number' && typeof data.message === 'string') {
              if (data.seq <= lastSeq) return;
              lastSeq = data.seq;
              stream.push({
                seq: data.seq,
                jobId: id,
                attempt: data.attempt as number,
                at: event.at,
                level: data.level as LogLevel,
                message: data.message,
              });
              return;
            }
            // A write's new lines are announced by its change (`logSeqs`); their text is read from the log, once per change.
            const seqs = data.logSeqs;
            if (!Array.isArray(seqs)) return;
            const fresh = (seqs as number[]).filter((seq) => seq > lastSeq);
            if (fresh.length === 0) return;
            lastSeq = fresh.at(-1) as number;
            // A failed read fails the stream once (after the lines before it); its entries are left out.
            const lines = sharedLogLines(id, fresh).catch((error: unknown) => {
              stream.fail(error);
              return new Map<number, LogEntry>();
            });
            for (const seq of fresh) stream.push(lines.then((found) => found.get(seq) ?? SKIP));
          },
          { keys: [`job:${id}`] },
        );
      });
    },
  };
}
