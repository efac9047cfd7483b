/**
 * The MongoDB change source: every write inserts its change events into the `changes`
 * collection inside its transaction, and change streams on that collection (inserts
 * only) are the feed. A cursor is a resume token.
 *
 * - **Cursors** are `m` + the token's `_data` in lowercase hex. `_data` is a KeyString,
 *   whose bytes sort in stream order, so equal-case hex strings compare like the
 *   tokens (the server writes uppercase; a mix of cases would not compare).
 *   Cursors are accepted in either case and compared in one.
 * - **Replay** (`readAfter`) opens a stream with `startAfter` and reads until the page
 *   is full or a batch comes back empty: on a replica set an empty batch means the
 *   server scanned the oplog to its (majority-committed) end, so nothing before that
 *   point is left. A page that reaches neither within `replayDeadlineMs` fails with
 *   `STORE_UNAVAILABLE`, so the subscriber resumes from its last cursor; a cut page is
 *   never passed off as "caught up".
 * - **Retention**: the replay window is the oplog window (`ChangeStreamHistoryLost`,
 *   code 286, is `CURSOR_EXPIRED`), and a cursor also expires when the first change
 *   after it is no longer in `changes` (deleted by the retention sweep or the TTL
 *   index, see `ensureChangeIndexes`), as on SQLite. `readAfter(null)` starts at the
 *   oldest change still in `changes`.
 * - **Topology**: this is written for replica sets. Through mongos (a sharded cluster) an
 *   empty batch can come before every shard has answered, so a replay there may end early.
 * - **Live**: one stream per process, from the fan-out's live position. An `invalidate`
 *   (the collection or database dropped or renamed), or the stream ending, fails every
 *   subscriber instead of leaving them waiting.
 *
 * The engine constructs `new MongoChangeSource(db, () => hub)` and hands it to its
 * `ChangeHub`; it calls `ensureChangeIndexes` at start-up.
 */
import {
  type ChangeStream,
  type ChangeStreamDocument,
  type ChangeStreamOptions,
  type Collection,
  type Db,
  MongoError,
  MongoServerError,
  type ObjectId,
  Timestamp,
} from 'mongodb';
import type { JsonObject } from '../../domain/types.js';
import { CursorExpiredError, StoreUnavailableError, ValidationError } from '../../errors.js';
import type { ChangeSource } from '../change-hub.js';
import type { ChangeEntity, ChangeEvent, ChangeOp } from '../port.js';

/** One change as the engine inserts it into `changes` (the event minus its cursor). */
export interface MongoChangeDoc {
  _id?: ObjectId;
  at: Date;
  entity: ChangeEntity;
  op: ChangeOp;
  entityId: string;
  batchId: string | null;
  ownerId: string | null;
  status: string | null;
  version: number;
  data: JsonObject | null;
}

/** What the live tail needs from the fan-out (`ChangeHub`). */
export interface LiveSink {
  readonly livePosition: string | null;
  publish(events: readonly ChangeEvent[]): void;
  failAll(error: unknown): void;
}

export interface MongoChangeSourceOptions {
  /** How long one replay page may take to reach a full page or the end of the history. Default 10000. */
  replayDeadlineMs?: number;
  /**
   * How far before the oldest retained change's `at` (the writer's clock) a replay from
   * the start begins reading the oplog, for clocks that run ahead of the cluster's.
   * Default 300000 (5 minutes).
   */
  clockMarginMs?: number;
}

const PIPELINE = [{ $match: { operationType: 'insert' } }];
/** Server codes for a resume point the oplog no longer holds. */
const HISTORY_LOST = new Set([286 /* ChangeStreamHistoryLost */, 136 /* CappedPositionLost */]);
/**
 * Server codes for a resume token it cannot use: not hex (9), not a KeyString or not a
 * resume token (40647, 40649, 50796, 50811, 50854, 2), or not a token of this
 * collection (280, "the resume token was not found"; 40585 and 40615 on older servers).
 */
const BAD_TOKEN = new Set([2, 9, 280, 40585, 40615, 40647, 40649, 50796, 50811, 50854]);
const NAMESPACE_NOT_FOUND = 26;
const INDEX_NOT_FOUND = 27;
const CANONICAL = /^m82(?:[0-9a-f]{2}){8,2047}$/;
const ANY_CASE = /^m82(?:[0-9a-f]{2}){8,2047}$/i;

/** The cursor of a resume token. */
export function encodeCursor(token: unknown): string {
  const data = (token as { _data?: unknown } | null)?._data;
  if (typeof data !== 'string' || !ANY_CASE.test(`m${data}`)) {
    throw new StoreUnavailableError('the change stream returned a resume token that is not a hex KeyString');
  }
  return `m${data.toLowerCase()}`;
}

/**
 * A cursor in its one comparable form (lowercase). Anything that cannot be a resume
 * token (a KeyString starting with its timestamp, byte 0x82) is `BAD_USER_INPUT`.
 */
export function canonicalCursor(cursor: string): string {
  if (CANONICAL.test(cursor)) return cursor;
  if (typeof cursor !== 'string' || !ANY_CASE.test(cursor)) {
    throw new ValidationError('after: not a valid change cursor', { field: 'after' });
  }
  return cursor.toLowerCase();
}

/** The resume token of a cursor, uppercase as the server writes it. */
export function decodeCursor(cursor: string): { _data: string } {
  return { _data: canonicalCursor(cursor).slice(1).toUpperCase() };
}

/** Orders two cursors of this source (throws `BAD_USER_INPUT` for a malformed one). */
export function compareCursors(a: string, b: string): number {
  const x = canonicalCursor(a);
  const y = canonicalCursor(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Why a stream over `changes` cannot go on, as an `AppError` (others pass through).
 * `given`: the stream started at a cursor a caller gave, so a token the server refuses is theirs.
 */
function streamError(error: unknown, cursor: string | null, what: string, given = false): unknown {
  if (error instanceof MongoServerError && typeof error.code === 'number') {
    if (HISTORY_LOST.has(error.code)) return new CursorExpiredError(cursor ?? 'oldest');
    if (given && BAD_TOKEN.has(error.code)) {
      return new ValidationError('after: not a change cursor of this store', { field: 'after' });
    }
  }
  if (error instanceof MongoError) return new StoreUnavailableError(`${what}: ${error.message}`, { cause: error });
  return error;
}

type InsertChange = ChangeStreamDocument<MongoChangeDoc>;

/** The event of one stream document; anything but an insert ends the stream. */
function eventOf(change: InsertChange): { event: ChangeEvent; docId: ObjectId | undefined } {
  if (change.operationType !== 'insert') {
    throw new StoreUnavailableError(
      `the change stream on "changes" reported "${change.operationType}" (the collection or database was dropped or renamed); ` +
        'subscribers must start again',
    );
  }
  const doc = change.fullDocument;
  return {
    docId: doc._id,
    event: {
      cursor: encodeCursor(change._id),
      entity: doc.entity,
      op: doc.op,
      id: doc.entityId,
      batchId: doc.batchId,
      ownerId: doc.ownerId,
      status: doc.status,
      version: doc.version,
      at: doc.at,
      data: doc.data,
    },
  };
}

export class MongoChangeSource implements ChangeSource {
  private readonly changes: Collection<MongoChangeDoc>;
  private readonly replayDeadlineMs: number;
  private readonly clockMarginMs: number;
  private live: ChangeStream<MongoChangeDoc, InsertChange> | null = null;
  private closed = false;

  constructor(
    db: Db,
    /** The fan-out this source publishes to (a function: the hub is built with this source). */
    private readonly sink: () => LiveSink,
    options: MongoChangeSourceOptions = {},
  ) {
    this.changes = db.collection<MongoChangeDoc>('changes');
    this.replayDeadlineMs = options.replayDeadlineMs ?? 10_000;
    this.clockMarginMs = options.clockMarginMs ?? 300_000;
  }

  compare(a: string, b: string): number {
    return compareCursors(a, b);
  }

  /** The stream's position now: the post-batch resume token of an empty read from the present. */
  async head(): Promise<string> {
    const stream = this.changes.watch<MongoChangeDoc, InsertChange>(PIPELINE, { maxAwaitTimeMS: 1 });
    try {
      // Every insert it returns is after the moment it opened; only the token matters.
      await stream.tryNext();
      return encodeCursor(stream.resumeToken);
    } catch (error) {
      throw streamError(error, null, 'reading the change stream position failed');
    } finally {
      await stream.close();
    }
  }

  async readAfter(cursor: string | null, limit: number): Promise<ChangeEvent[]> {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
    if (cursor !== null) return this.replay(cursor, { startAfter: decodeCursor(cursor) }, limit, null);
    // From the oldest change still retained: its `at` comes from its writer's clock, so the
    // oplog is read from a margin before it, skipping what precedes it. A margin reaching
    // before the oplog's start is retried with smaller ones.
    const oldest = await this.changes.findOne({}, { sort: { at: 1 }, projection: { at: 1 } });
    if (oldest === null) return [];
    const from = oldest.at.getTime();
    const margins = [this.clockMarginMs, 2000, 0];
    for (const [i, margin] of margins.entries()) {
      try {
        return await this.replay(null, { startAtOperationTime: timestampAt(from - margin) }, limit, oldest.at);
      } catch (error) {
        if (!(error instanceof CursorExpiredError) || i === margins.length - 1) throw error;
      }
    }
    return [];
  }

  /**
   * Reads up to `limit` events from a stream opened at `start`; a short page means the
   * stream reached the end of the history. `skipBefore`: events written before this
   * time are skipped until the first one that is not (a replay from the oldest).
   */
  private async replay(cursor: string | null, start: ChangeStreamOptions, limit: number, skipBefore: Date | null): Promise<ChangeEvent[]> {
    const stream = this.changes.watch<MongoChangeDoc, InsertChange>(PIPELINE, { ...start, maxAwaitTimeMS: 1, batchSize: limit });
    const events: ChangeEvent[] = [];
    const deadline = Date.now() + this.replayDeadlineMs;
    try {
      while (events.length < limit) {
        if (Date.now() > deadline) {
          throw new StoreUnavailableError(
            `replaying the change history did not reach its end within ${this.replayDeadlineMs} ms; resume from the last cursor received`,
          );
        }
        const change = await stream.tryNext();
        // An empty batch: the server read the oplog to its end.
        if (change === null) break;
        const { event, docId } = eventOf(change);
        if (skipBefore !== null) {
          if (event.at < skipBefore) continue;
          skipBefore = null;
        }
        // The first change after the cursor is gone from `changes`: the history the cursor needs has expired.
        if (events.length === 0 && cursor !== null && docId !== undefined && !(await this.retained(docId))) {
          throw new CursorExpiredError(cursor);
        }
        events.push(event);
      }
    } catch (error) {
      throw streamError(error, cursor, 'replaying the change history failed', cursor !== null);
    } finally {
      await stream.close().catch(() => undefined);
    }
    return events;
  }

  private async retained(id: ObjectId): Promise<boolean> {
    return (await this.changes.findOne({ _id: id }, { projection: { _id: 1 } })) !== null;
  }

  startLive(): void {
    void this.runLive();
  }

  stopLive(): void {
    const stream = this.live;
    this.live = null;
    void stream?.close().catch(() => undefined);
  }

  /** Ends the live stream for good (the store closes). */
  async close(): Promise<void> {
    this.closed = true;
    const stream = this.live;
    this.live = null;
    await stream?.close().catch(() => undefined);
  }

  /** The one live stream of this process, from the fan-out's position; the driver resumes it on transient errors. */
  private async runLive(): Promise<void> {
    if (this.closed) return;
    const sink = this.sink();
    const position = sink.livePosition;
    const stream = this.changes.watch<MongoChangeDoc, InsertChange>(
      PIPELINE,
      position === null ? {} : { startAfter: decodeCursor(position) },
    );
    this.live = stream;
    try {
      for await (const change of stream) {
        if (this.live !== stream) return;
        sink.publish([eventOf(change).event]);
      }
      if (this.live === stream) throw new StoreUnavailableError('the change stream on "changes" ended; subscribers must start again');
    } catch (error) {
      if (this.live === stream && !this.closed) sink.failAll(streamError(error, position, 'the change stream failed'));
    } finally {
      if (this.live === stream) this.live = null;
    }
  }
}

/** The cluster time at the start of the second that holds `ms` (never before 1970). */
function timestampAt(ms: number): Timestamp {
  return new Timestamp({ t: Math.max(1, Math.floor(ms / 1000)), i: 0 });
}

/**
 * Creates the indexes of `changes`: `at`, which is also its TTL index when
 * `retentionHours` > 0 (documents expire that long after they were written; the TTL
 * monitor runs about once a minute), or a plain one with 0 (kept until the retention
 * sweep purges them). An existing index is switched in place (`collMod`, MongoDB 5.1+),
 * so every start-up applies the configured retention.
 */
export async function ensureChangeIndexes(db: Db, options: { retentionHours: number }): Promise<void> {
  const changes = db.collection<MongoChangeDoc>('changes');
  const expireAfterSeconds = Math.round(options.retentionHours * 3600);
  const existing = (await changes.indexes().catch((error: unknown) => {
    if (error instanceof MongoServerError && error.code === NAMESPACE_NOT_FOUND) return [];
    throw error;
  })) as { name?: string; key: Record<string, unknown>; expireAfterSeconds?: number }[];
  const at = existing.find((index) => Object.keys(index.key).length === 1 && index.key.at === 1);
  if (at === undefined) {
    await changes.createIndex({ at: 1 }, { name: 'at', ...(expireAfterSeconds > 0 ? { expireAfterSeconds } : {}) });
    return;
  }
  if (expireAfterSeconds > 0) {
    if (at.expireAfterSeconds !== expireAfterSeconds) {
      await db.command({ collMod: 'changes', index: { keyPattern: { at: 1 }, expireAfterSeconds } });
    }
  } else if (at.expireAfterSeconds !== undefined) {
    // A TTL cannot be taken off an index: replace it with a plain one.
    await changes.dropIndex(at.name ?? 'at').catch((error: unknown) => {
      if (!(error instanceof MongoServerError && error.code === INDEX_NOT_FOUND)) throw error;
    });
    await changes.createIndex({ at: 1 }, { name: 'at' });
  }
}
