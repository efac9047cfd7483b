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
 */
import { coerceError } from '../errors.js';
import type { ChangeEvent } from './port.js';

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
  /** A subscriber further behind than this many events falls back to replay from the store. */
  maxQueue?: number;
}

interface Subscriber {
  queue: ChangeEvent[];
  overflowed: boolean;
  wake: (() => void) | null;
  failure: Error | null;
}

export class ChangeHub {
  private readonly subscribers = new Set<Subscriber>();
  private position: string | null = null;
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

  /** Sets where the live tail starts (before the first publish). */
  seek(cursor: string | null): void {
    this.position = cursor;
  }

  /** Called by the adapter's live tail with new events, in order. */
  publish(events: readonly ChangeEvent[]): void {
    const last = events.at(-1);
    if (last === undefined) return;
    this.position = last.cursor;
    for (const sub of this.subscribers) {
      if (sub.overflowed) continue;
      if (sub.queue.length + events.length > this.maxQueue) {
        // Too far behind: drop its queue and let it catch up from the store instead.
        sub.overflowed = true;
        sub.queue = [];
      } else {
        sub.queue.push(...events);
      }
      sub.wake?.();
    }
  }

  /** Ends every subscription with an error (the live tail failed for good). */
  failAll(error: unknown): void {
    for (const sub of this.subscribers) {
      sub.failure = coerceError(error);
      sub.wake?.();
    }
  }

  private attach(sub: Subscriber): void {
    this.subscribers.add(sub);
    if (this.subscribers.size === 1) this.source.startLive();
  }

  private detach(sub: Subscriber): void {
    if (!this.subscribers.delete(sub)) return;
    if (this.subscribers.size === 0) this.source.stopLive();
  }

  /** Every change after `after` (or from now), then live ones, until `signal` aborts. */
  async *subscribe(after: string | null | undefined, signal?: AbortSignal): AsyncGenerator<ChangeEvent> {
    const sub: Subscriber = { queue: [], overflowed: false, wake: null, failure: null };
    let last = after ?? (await this.source.head());
    const newer = (event: ChangeEvent) => last === null || this.source.compare(event.cursor, last) > 0;
    const onAbort = () => sub.wake?.();
    signal?.addEventListener('abort', onAbort);
    // The live tail only runs while someone listens: when it (re)starts, it starts at the head.
    if (this.subscribers.size === 0) this.position = await this.source.head();
    this.attach(sub);
    try {
      let attachedAt = this.position;
      for (;;) {
        if (signal?.aborted) return;
        if (sub.failure !== null) throw sub.failure;
        if (sub.overflowed) {
          sub.overflowed = false;
          attachedAt = this.position;
        }
        // Replay what the store holds between our position and the live position we attached at.
        while (attachedAt !== null && (last === null || this.source.compare(last, attachedAt) < 0)) {
          const page = await this.source.readAfter(last, this.pageSize);
          let reachedLive = false;
          for (const event of page) {
            if (this.source.compare(event.cursor, attachedAt) > 0) {
              reachedLive = true;
              break;
            }
            if (signal?.aborted) return;
            last = event.cursor;
            yield event;
          }
          if (reachedLive || page.length < this.pageSize) break;
        }
        attachedAt = null;
        while (sub.queue.length > 0 && !sub.overflowed) {
          const event = sub.queue.shift() as ChangeEvent;
          if (!newer(event)) continue;
          if (signal?.aborted) return;
          last = event.cursor;
          yield event;
        }
        if (sub.overflowed || sub.failure !== null) continue;
        if (signal?.aborted) return;
        await new Promise<void>((resolve) => {
          sub.wake = resolve;
        });
        sub.wake = null;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.detach(sub);
    }
  }
}
