/**
 * One change source per process, fanned out in memory to every subscriber.
 *
 * The adapter owns the live tail (SQLite: a poll of the `changes` table plus an
 * in-process nudge after each local write; MongoDB: one change stream) and calls
 * `publish()` with events in order. Subscribers that start behind the live position
 * (an `after` cursor, or a queue that overflowed) replay from the store with
 * `readAfter` until they reach the position they attached at, then take live events.
 * Each subscriber remembers its last cursor and drops anything not after it, so the
 * hand-over from replay to live can neither skip nor repeat an event.
 *
 * Live events reach listeners by a plain call inside `publish()`: an idle subscriber
 * costs a small record here, not a waiting async generator.
 */
import { coerceError } from '../errors.js';
import { type ChangeListener, type Listening, watchChanges } from './change-stream.js';
import { type ChangeInterest, checkInterest, InterestCount, interested } from './interest.js';
import type { ChangeEvent, RoutingKeys } from './port.js';

export interface ChangeSource {
  /** Events strictly after `cursor` (null: from the oldest retained), in order, at most `limit`. */
  readAfter(cursor: string | null, limit: number): Promise<ChangeEvent[]>;
  /** The newest cursor in the store, or null when there is no change yet. */
  head(): Promise<string | null>;
  /** Orders two cursors of this source. */
  compare(a: string, b: string): number;
  /** Begins the live tail (first subscriber). */
  startLive(): void;
  /** Ends the live tail (last subscriber left). */
  stopLive(): void;
}

export interface ChangeHubOptions {
  /** Events read per replay query. */
  pageSize?: number;
  /**
   * Live events held for a subscriber still replaying, and entries a `subscribe()`
   * consumer may fall behind, before it falls back to replay from the store.
   */
  maxQueue?: number;
}

/**
 * The routing keys of an event: `<entity>:<id>`, plus `batch:<id>` for the changes of a
 * batch's jobs and deliveries and `job:<id>` for a job's deliveries. A listener that
 * names keys gets only the events carrying one of them.
 */
export function routingKeys(event: ChangeEvent): string[] {
  const keys = [`${event.entity}:${event.id}`];
  if (event.batchId !== null && event.entity !== 'batch') keys.push(`batch:${event.batchId}`);
  const jobId = event.entity === 'delivery' ? event.data?.jobId : undefined;
  if (typeof jobId === 'string') keys.push(`job:${jobId}`);
  return keys;
}

function keyList(keys: RoutingKeys): readonly string[] {
  return typeof keys === 'string' ? [keys] : keys;
}

class Subscriber implements Listening {
  /** Live events held while the subscriber replays from the store; null once it is live. */
  held: ChangeEvent[] | null = [];
  /** Held events were dropped (too many): replay further before going live. */
  overflowed = false;
  stopped = false;
  /** Only events matching this (the listener's `interest`; null: every event). */
  readonly interest: ChangeInterest | null;

  constructor(
    private readonly hub: ChangeHub,
    readonly listener: ChangeListener,
    /** The cursor of the last event given to the listener. */
    public last: string | null,
    /** Only events with this routing key or one of these (null: every event). */
    readonly keys: RoutingKeys | null,
  ) {
    this.interest = listener.interest ?? null;
  }

  wants(event: ChangeEvent): boolean {
    if (this.interest !== null && !interested(this.interest, event)) return false;
    const keys = this.keys;
    if (keys === null) return true;
    for (const key of routingKeys(event)) if (typeof keys === 'string' ? key === keys : keys.includes(key)) return true;
    return false;
  }

  stop(): void {
    this.hub.remove(this);
  }
}

export class ChangeHub {
  /** Every subscriber, replaying or live. */
  private readonly subscribers = new Set<Subscriber>();
  /** Subscribers still replaying from the store (their live events are held). */
  private readonly replaying = new Set<Subscriber>();
  /** Live subscribers of every event. */
  private readonly everything = new Set<Subscriber>();
  /**
   * Live subscribers by routing key: a change reaches the few that follow its job or
   * batch, not every open subscription (with thousands of subscribers, matching each
   * event against all of them was most of the fan-out's time).
   */
  private readonly byKey = new Map<string, Set<Subscriber>>();
  private position: string | null = null;
  /** What the subscribers want, for sources that can skip the rest unread. */
  private readonly interests = new InterestCount();
  private readonly pageSize: number;
  private readonly maxQueue: number;

  constructor(
    private readonly source: ChangeSource,
    options: ChangeHubOptions = {},
  ) {
    this.pageSize = options.pageSize ?? 500;
    this.maxQueue = options.maxQueue ?? 10_000;
  }

  /** The cursor of the last published event. */
  get livePosition(): string | null {
    return this.position;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /**
   * Every clause the subscribers want, or null when some subscriber wants every change
   * (or none listens). While it is not null, a source may publish only the events that
   * match it and `advance()` past the rest.
   */
  get interest(): ChangeInterest | null {
    return this.interests.union;
  }

  /** Moves the live position to `cursor` without events: the source skipped what lies between (see `interest`). */
  advance(cursor: string): void {
    if (this.position === null || this.source.compare(cursor, this.position) > 0) this.position = cursor;
  }

  /** Sets where the live tail starts (before the first publish). */
  seek(cursor: string | null): void {
    this.position = cursor;
  }

  /** Called by the adapter's live tail with new events, in order. */
  publish(events: readonly ChangeEvent[]): void {
    const last = events.at(-1);
    if (last === undefined) return;
    this.position = last.cursor;
    for (const sub of this.replaying) {
      const held = sub.held;
      if (held === null || sub.overflowed) continue;
      const wanted = sub.keys === null ? events : events.filter((event) => sub.wants(event));
      if (held.length + wanted.length > this.maxQueue) {
        // Too far behind: let it catch up from the store instead.
        sub.overflowed = true;
        sub.held = [];
      } else {
        for (const event of wanted) held.push(event);
      }
    }
    for (const event of events) {
      // Listeners of every event first (the access cache among them), then the keyed ones.
      for (const sub of this.everything) if (!sub.stopped) this.deliver(sub, event);
      if (this.byKey.size === 0) continue;
      for (const key of routingKeys(event)) {
        const subs = this.byKey.get(key);
        if (subs === undefined) continue;
        // A subscriber of two of the event's keys gets it once: deliver() skips what is not after its last cursor.
        for (const sub of subs) if (!sub.stopped) this.deliver(sub, event);
      }
    }
  }

  /** Ends every subscription with an error (the live tail failed for good). */
  failAll(error: unknown): void {
    for (const sub of [...this.subscribers]) this.fail(sub, error);
  }

  /**
   * Gives `listener` every change after `after` (undefined: from now; null: from the
   * oldest retained), then live ones, until its `stop()` is called or the
   * feed fails (`listener.error`, e.g. `CURSOR_EXPIRED`). With `keys`, only the changes
   * carrying one of those routing keys (see `routingKeys`), during replay too.
   */
  listen(after: string | null | undefined, listener: ChangeListener, keys?: RoutingKeys | null): Listening {
    if (listener.interest !== undefined) checkInterest(listener.interest);
    const sub = new Subscriber(this, listener, after ?? null, keys ?? null);
    void this.start(sub, after);
    return sub;
  }

  /** Every change after `after` (null or undefined: from now), then live ones, until `signal` aborts. */
  subscribe(after: string | null | undefined, signal?: AbortSignal): AsyncIterableIterator<ChangeEvent> {
    return watchChanges(
      (from, listener) => this.listen(from, listener),
      { after: after ?? null, ...(signal ? { signal } : {}) },
      this.maxQueue,
    );
  }

  private async start(sub: Subscriber, after: string | null | undefined): Promise<void> {
    try {
      let last = after === undefined ? await this.source.head() : after;
      // The live tail only runs while someone listens: when it (re)starts, it starts at the head
      // (unless another listener started it meanwhile: then it is already on its way from there).
      if (!sub.stopped && this.subscribers.size === 0) {
        const head = await this.source.head();
        if (this.subscribers.size === 0) this.position = head;
      }
      if (sub.stopped) return;
      this.attach(sub);
      let attachedAt = this.position;
      for (;;) {
        // Replay what the store holds between our position and the live position we attached at.
        while (attachedAt !== null && (last === null || this.source.compare(last, attachedAt) < 0)) {
          const page = await this.source.readAfter(last, this.pageSize);
          let reachedLive = false;
          for (const event of page) {
            if (sub.stopped) return;
            if (this.source.compare(event.cursor, attachedAt) > 0) {
              reachedLive = true;
              break;
            }
            last = event.cursor;
            sub.last = last;
            if (sub.wants(event)) sub.listener.event(event);
          }
          if (reachedLive || page.length < this.pageSize) break;
        }
        if (sub.stopped) return;
        if (!sub.overflowed) break;
        sub.overflowed = false;
        sub.held = [];
        attachedAt = this.position;
      }
      // Live from here: hand over what arrived during the replay, then take events as published.
      const held = sub.held ?? [];
      sub.held = null;
      sub.last = last;
      this.goLive(sub);
      for (const event of held) {
        if (sub.stopped) return;
        this.deliver(sub, event);
      }
    } catch (error) {
      this.fail(sub, error);
    }
  }

  private deliver(sub: Subscriber, event: ChangeEvent): void {
    if (sub.last !== null && this.source.compare(event.cursor, sub.last) <= 0) return;
    if (sub.interest !== null && !interested(sub.interest, event)) return;
    sub.last = event.cursor;
    try {
      sub.listener.event(event);
    } catch (error) {
      this.fail(sub, error);
    }
  }

  private fail(sub: Subscriber, error: unknown): void {
    if (sub.stopped) return;
    this.remove(sub);
    sub.listener.error(coerceError(error));
  }

  /** Ends a subscriber (its `stop()`). */
  remove(sub: Subscriber): void {
    sub.stopped = true;
    sub.held = null;
    if (!this.subscribers.delete(sub)) return;
    this.interests.remove(sub.interest);
    this.replaying.delete(sub);
    if (sub.keys === null) this.everything.delete(sub);
    else {
      for (const key of keyList(sub.keys)) {
        const subs = this.byKey.get(key);
        subs?.delete(sub);
        if (subs?.size === 0) this.byKey.delete(key);
      }
    }
    if (this.subscribers.size === 0) this.source.stopLive();
  }

  private attach(sub: Subscriber): void {
    this.subscribers.add(sub);
    this.interests.add(sub.interest);
    this.replaying.add(sub);
    if (this.subscribers.size === 1) this.source.startLive();
  }

  /** From replay to live: events reach it from `publish()` directly. */
  private goLive(sub: Subscriber): void {
    this.replaying.delete(sub);
    if (sub.keys === null) {
      this.everything.add(sub);
      return;
    }
    for (const key of keyList(sub.keys)) {
      let subs = this.byKey.get(key);
      if (subs === undefined) {
        subs = new Set();
        this.byKey.set(key, subs);
      }
      subs.add(sub);
    }
  }
}
