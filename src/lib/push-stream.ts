/**
 * Streams without a chain of async generators. A consumer waiting for its next value
 * holds one small object (and, while it waits, one promise), not a suspended generator
 * frame per layer: with thousands of idle subscribers per process, those frames were
 * most of their memory. A producer pushes in order; the consumer pulls with `for await`.
 */
/** What a promise pushed into a stream resolves to when its value is to be left out. */
export const SKIP: unique symbol = Symbol('skip');

/** A value, or a promise of one (or of SKIP) that keeps its place in the order. */
export type StreamEntry<T> = T | Promise<T | typeof SKIP>;

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

type Step<T> = IteratorResult<T> | Promise<IteratorResult<T>>;

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
  private closeHooks: (() => void) | (() => void)[] | null = null;
  private mapper: ((value: T) => unknown) | null = null;
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
  onClose(hook: () => void): void {
    const hooks = this.closeHooks;
    if (this.closing) hook();
    else if (hooks === null) this.closeHooks = hook;
    else if (typeof hooks === 'function') this.closeHooks = [hooks, hook];
    else hooks.push(hook);
  }

  /**
   * Delivers `map(value)` instead of each value (awaited when it is a promise). Values
   * keep their order; set once, before the first `next()`.
   */
  mapValues<U>(map: (value: T) => U | Promise<U>): AsyncIterableIterator<U> {
    this.mapper = map;
    return this as unknown as AsyncIterableIterator<U>;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.returned) return Promise.resolve(DONE);
    const queue = this.queue;
    if (queue !== null && queue.length > 0) {
      const entry = queue.shift() as StreamEntry<T>;
      if (queue.length === 0) {
        this.queue = null;
        this.onDrain?.();
      }
      return Promise.resolve(this.take(entry));
    }
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
    const hooks = this.closeHooks;
    this.closeHooks = null;
    if (typeof hooks === 'function') hooks();
    else for (const hook of hooks ?? []) hook();
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter(this.returned ? DONE : this.finish());
    }
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
    const mapped = this.mapper(value);
    if (mapped instanceof Promise) return mapped.then((resolved) => ({ done: false, value: resolved as T }));
    return { done: false, value: mapped as T };
  }
}
