/**
 * The change feed's consumer API: `listen` (calls into a listener, the one primitive),
 * and two helpers over it: `followChanges` (a listener feeding a `PushStream`, pausing
 * while its consumer is far behind) and `watchChanges` (the feed as an async iterable).
 */
import { PushStream } from '../lib/push-stream.js';
import type { ChangeInterest } from './interest.js';
import type { ChangeEvent, RoutingKeys, WatchOptions } from './port.js';

/** Receives a subscriber's changes, in cursor order. Both calls come from the store's fan-out. */
export interface ChangeListener {
  event(event: ChangeEvent): void;
  /** The feed failed for this listener (e.g. `CURSOR_EXPIRED`); nothing follows. */
  error(error: Error): void;
  /** Only the changes matching this (see interest.ts); read when the listener is added. */
  readonly interest?: ChangeInterest | undefined;
}

/** A listener's place in the fan-out. */
export interface Listening {
  /** No more calls to the listener. */
  stop(): void;
}

/**
 * `store.listen`: changes after `after` to `listener` until `stop()`. `after`
 * undefined: from now; null: from the oldest change retained. With `keys`, only the
 * changes with one of these routing keys (`job:<id>`, `batch:<id>`).
 */
export type Listen = (after: string | null | undefined, listener: ChangeListener, keys?: RoutingKeys) => Listening;

/** Takes each change a follower hears: a function, or an object whose `event` is called (no closure needed). */
export type ChangeHandler = ((event: ChangeEvent) => void) | { event(event: ChangeEvent): void };

export interface FollowOptions {
  /** Entries the consumer may fall behind before listening pauses (default 10,000). */
  maxQueue?: number;
  /** The feed failed (default: the stream fails with the error). */
  onError?: (error: Error) => void;
  /** Only the changes with one of these routing keys (passed to `listen`). */
  keys?: RoutingKeys;
  /** Only the changes matching this (the listener's `interest`). */
  interest?: ChangeInterest;
}

/**
 * Hands the changes after `after` to `onEvent`, which pushes what it wants into
 * `stream`, until the stream closes. While the consumer is more than `maxQueue` entries
 * behind, listening pauses; once it has caught up, listening resumes after the last
 * change seen, so a slow consumer costs a replay from the store, not unbounded memory.
 */
export function followChanges<T>(
  listen: Listen,
  stream: PushStream<T>,
  after: string | null | undefined,
  onEvent: ChangeHandler,
  options: FollowOptions = {},
): void {
  if (stream.closed) return;
  stream.onClose(new Follower(listen, stream, after, onEvent, options));
}

/** followChanges' state: a class, so that each of thousands of idle followers is one object. */
class Follower<T> implements ChangeListener {
  private listening: Listening | null;
  readonly interest: ChangeInterest | undefined;

  constructor(
    private readonly listen: Listen,
    private readonly stream: PushStream<T>,
    private last: string | null | undefined,
    private readonly onEvent: ChangeHandler,
    private readonly options: FollowOptions,
  ) {
    this.interest = options.interest;
    this.listening = listen(last, this, options.keys);
  }

  event(event: ChangeEvent): void {
    this.last = event.cursor;
    const onEvent = this.onEvent;
    if (typeof onEvent === 'function') onEvent(event);
    else onEvent.event(event);
    if (this.listening !== null && this.stream.backlog > (this.options.maxQueue ?? 10_000)) {
      this.stop();
      this.stream.onDrain = () => {
        this.stream.onDrain = null;
        if (!this.stream.closed) this.listening = this.listen(this.last, this, this.options.keys);
      };
    }
  }

  error(error: Error): void {
    this.listening = null;
    if (this.options.onError !== undefined) this.options.onError(error);
    else this.stream.fail(error);
  }

  stop(): void {
    this.listening?.stop();
    this.listening = null;
  }
}

/**
 * The feed as an async iterable: every change after `options.after` (null or
 * undefined: from now), then live ones, until `options.signal` aborts or the consumer
 * returns. A consumer more than `maxQueue` changes behind stops listening and catches
 * up from the store (see `followChanges`).
 */
export function watchChanges(listen: Listen, options: WatchOptions = {}, maxQueue = 10_000): AsyncIterableIterator<ChangeEvent> {
  const stream = new PushStream<ChangeEvent>();
  const signal = options.signal;
  if (signal?.aborted === true) {
    stream.end();
    return stream;
  }
  if (signal !== undefined) {
    const onAbort = () => void stream.return();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.onClose(() => signal.removeEventListener('abort', onAbort));
  }
  const interest = options.interest === undefined ? {} : { interest: options.interest };
  followChanges(listen, stream, options.after ?? undefined, (event) => stream.push(event), { maxQueue, ...interest });
  return stream;
}
