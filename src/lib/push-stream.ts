/**
 * Streams without a chain of async generators. A consumer waiting for its next value
 * holds one small object (and, while it waits, one promise), not a suspended generator
 * frame per layer: with thousands of idle subscribers per process, those frames were
 * most of their memory. A producer pushes in order; the consumer either pulls (`for
 * await`) or hands the stream a sink (`consume`), which is called with each value and
 * holds nothing while it waits.
 */
/** What a promise pushed into a stream resolves to when its value is to be left out. */
export const SKIP: unique symbol = Symbol('skip');

/** A value, or a promise of one (or of SKIP) that keeps its place in the order. */
export type StreamEntry<T> = T | Promise<T | typeof SKIP>;

function runHook(hook: CloseHook): void {
  if (typeof hook === 'function') hook();
  else hook.stop();
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

type Step<T> = IteratorResult<T> | Promise<IteratorResult<T>>;

/** A consumer that is called with each value instead of pulling (see `PushStream.consume`). */
export interface StreamSink<T> {
  /** The next value, in order. */
  next(value: T): void;
  /** The stream ended after its last value. */
  complete(): void;
  /** The stream failed (and `lastValue` gave no last value for it); nothing follows. */
  error(error: unknown): void;
}

/** Runs when a stream closes: a function, or an object whose `stop()` is called (no closure needed). */
export type CloseHook = (() => void) | { stop(): void };

/** Maps a stream's values (see `mapValues`): a function, or an object whose `map` is called (no closure needed). */
export type ValueMapper<T, U> = ((value: T) => U | Promise<U>) | { map(value: T): U | Promise<U> };

export interface PushStreamOptions<T> {
  /** Turns an error into the stream's last value; without one (or when it returns undefined) `next()` rejects. */
  lastValue?: (error: unknown) => T | undefined;
}

/**
 * An async iterator fed by `push()`. One `next()` at a time (as `for await` does).
 * `end()` and `fail()` come from the producer, `return()` from the consumer; either
 * way the close hooks run once, at once.
 */
export class PushStream<T> implements AsyncIterableIterator<T> {
  private queue: StreamEntry<T>[] | null = null;
  private waiter: ((step: Step<T>) => void) | null = null;
  private closing = false;
  private returned = false;
  private failure: { error: unknown } | null = null;
  /** The first close hook; streams commonly have two, so the second has a field too (an array cost 64 bytes). */
  private closeHook: CloseHook | null = null;
  /** The second close hook, or an array of the second and later ones. */
  private closeHooks: CloseHook | CloseHook[] | null = null;
  private mapper: ValueMapper<T, unknown> | null = null;
  /** The consumer given to `consume`, until the stream has ended for it. */
  private sink: StreamSink<T> | null = null;
  /** A sink's entry (or its mapped value) is a promise not yet settled: later entries wait behind it. */
  private pending = false;
  /** Inside `pump`: a push made from a sink's call is queued, not delivered out of order. */
  private pumping = false;
  /** Called when the consumer has taken everything that was queued. */
  onDrain: (() => void) | null = null;

  constructor(private readonly options: PushStreamOptions<T> = {}) {}

  /** Entries queued and not yet taken by the consumer. */
  get backlog(): number {
    return this.queue?.length ?? 0;
  }

  /** True once the producer ended or the consumer returned: pushes are ignored. */
  get closed(): boolean {
    return this.closing;
  }

  push(entry: StreamEntry<T>): void {
    if (this.closing) return;
    if (this.sink !== null) {
      // A sink that is not waiting on anything takes the entry at once, without a queue.
      if (!this.pending && !this.pumping && this.queue === null) this.deliver(entry);
      else {
        if (this.queue === null) this.queue = [entry];
        else this.queue.push(entry);
        this.pump();
      }
      return;
    }
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter(this.take(entry));
      return;
    }
    if (this.queue === null) this.queue = [entry];
    else this.queue.push(entry);
  }

  /** No more values: the consumer gets what is queued, then done. */
  end(): void {
    this.close(null);
  }

  /** Ends with an error after what is queued (see `lastValue`). */
  fail(error: unknown): void {
    this.close({ error });
  }

  /** Runs `hook` once when the stream closes (at once when it already has). */
  onClose(hook: CloseHook): void {
    const hooks = this.closeHooks;
    if (this.closing) runHook(hook);
    else if (this.closeHook === null) this.closeHook = hook;
    else if (hooks === null) this.closeHooks = hook;
    else if (!Array.isArray(hooks)) this.closeHooks = [hooks, hook];
    else hooks.push(hook);
  }

  /**
   * Delivers `map(value)` instead of each value (awaited when it is a promise). Values
   * keep their order; set once, before the first `next()`.
   */
  mapValues<U>(map: ValueMapper<T, U>): AsyncIterableIterator<U> {
    this.mapper = map;
    return this as unknown as AsyncIterableIterator<U>;
  }

  /**
   * Calls `sink` with every value (mapped, see `mapValues`) in order, then `complete`
   * or `error`, instead of being pulled with `next()`. A value that is a promise holds
   * back the ones behind it until it settles; a mapped value that rejects ends the
   * stream with that error. After `return()` the sink hears nothing more. Set once,
   * instead of calling `next()`.
   */
  /** The oldest queued entry (there is one: `backlog > 0`); the queue is dropped (and `onDrain` called) once it is empty. */
  private dequeue(): StreamEntry<T> {
    const queue = this.queue as StreamEntry<T>[];
    const entry = queue.shift() as StreamEntry<T>;
    if (queue.length === 0) {
      this.queue = null;
      this.onDrain?.();
    }
    return entry;
  }

  consume(sink: StreamSink<T>): void {
    if (this.sink !== null || this.waiter !== null) throw new Error('PushStream: consumed twice');
    this.sink = sink;
    this.pump();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.sink !== null) return Promise.reject(new Error('PushStream: next() called on a stream given to consume()'));
    if (this.returned) return Promise.resolve(DONE);
    if (this.backlog > 0) return Promise.resolve(this.take(this.dequeue()));
    if (this.closing) return Promise.resolve(this.finish());
    if (this.waiter !== null) return Promise.reject(new Error('PushStream: next() called before the previous one settled'));
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.returned) {
      this.returned = true;
      this.queue = null;
      this.failure = null;
      this.close(null);
    }
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  private close(failure: { error: unknown } | null): void {
    if (this.closing) return;
    this.closing = true;
    if (!this.returned) this.failure = failure;
    const first = this.closeHook;
    const hooks = this.closeHooks;
    this.closeHook = null;
    this.closeHooks = null;
    if (first !== null) runHook(first);
    if (Array.isArray(hooks)) for (const hook of hooks) runHook(hook);
    else if (hooks !== null) runHook(hooks);
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter(this.returned ? DONE : this.finish());
    }
    if (this.sink !== null) this.pump();
  }

  /** Hands the sink what is queued, in order, and the end once the stream has closed. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.sink !== null && !this.pending) {
        if (this.returned) {
          // The consumer ended it: it expects nothing more.
          this.sink = null;
          return;
        }
        if (this.backlog > 0) {
          this.deliver(this.dequeue());
          continue;
        }
        if (!this.closing) return;
        const failure = this.failure;
        if (failure !== null) {
          this.failure = null;
          const last = this.options.lastValue?.(failure.error);
          if (last !== undefined) {
            this.queue = [last];
            continue;
          }
        }
        const sink = this.sink;
        this.sink = null;
        if (failure === null) sink.complete();
        else sink.error(failure.error);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** One entry to the sink: at once, or once it (and its mapped value) have settled. */
  private deliver(entry: StreamEntry<T>): void {
    if (entry instanceof Promise) {
      this.wait(
        entry.then(
          (value) => (value === SKIP ? SKIP : this.mapped(value)),
          (error: unknown) => {
            // A failed entry ends the stream, as for a pulling consumer: what was queued behind it is dropped.
            this.queue = null;
            this.close({ error });
            return SKIP;
          },
        ),
      );
      return;
    }
    const value = this.mapped(entry);
    if (value instanceof Promise) this.wait(value);
    else (this.sink as StreamSink<T>).next(value);
  }

  private mapped(value: T): T | Promise<T> {
    const mapper = this.mapper;
    if (mapper === null) return value;
    return (typeof mapper === 'function' ? mapper(value) : mapper.map(value)) as T | Promise<T>;
  }

  private wait(value: Promise<T | typeof SKIP>): void {
    this.pending = true;
    value.then(
      (settled) => {
        this.pending = false;
        if (settled !== SKIP && !this.returned) this.sink?.next(settled);
        this.pump();
      },
      (error: unknown) => {
        // Only a mapped value rejects here: the stream ends with its error.
        this.pending = false;
        const sink = this.sink;
        this.sink = null;
        this.return();
        sink?.error(error);
      },
    );
  }

  /** The step after the last queued entry: the failure (once), else done. */
  private finish(): Step<T> {
    const failure = this.failure;
    if (failure === null) return DONE;
    this.failure = null;
    const last = this.options.lastValue?.(failure.error);
    return last === undefined ? Promise.reject(failure.error) : this.emit(last);
  }

  private take(entry: StreamEntry<T>): Step<T> {
    if (!(entry instanceof Promise)) return this.emit(entry);
    return entry.then(
      (value) => (value === SKIP ? this.next() : this.emit(value)),
      (error: unknown) => {
        // A failed entry ends the stream: what was queued behind it is dropped.
        this.queue = null;
        this.close({ error });
        return this.returned ? DONE : this.finish();
      },
    );
  }

  private emit(value: T): Step<T> {
    if (this.returned) return DONE;
    if (this.mapper === null) return { done: false, value };
    const mapped = this.mapped(value);
    if (mapped instanceof Promise) return mapped.then((resolved) => ({ done: false, value: resolved as T }));
    return { done: false, value: mapped as T };
  }
}
