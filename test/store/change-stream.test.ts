/**
 * PushStream (the queue behind every subscription and `watch()`) and followChanges'
 * pause and resume for consumers that fall behind, the latter on a real SQLite store.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { PushStream, SKIP, type StreamSink } from '../../src/lib/push-stream.js';
import { ChangeHub, type ChangeSource } from '../../src/store/change-hub.js';
import { followChanges, type Listen } from '../../src/store/change-stream.js';
import type { ChangeEvent, RoutingKeys } from '../../src/store/port.js';
import { sqliteAdapter } from '../helpers/adapters.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

async function drain<T>(stream: AsyncIterator<T>): Promise<T[]> {
  const out: T[] = [];
  for (;;) {
    const step = await stream.next();
    if (step.done === true) return out;
    out.push(step.value);
  }
}

describe('PushStream', () => {
  it('keeps the order of values and promises, leaves out SKIP, and ends after what was queued', async () => {
    const stream = new PushStream<number>();
    let release: (value: number | typeof SKIP) => void = () => {};
    stream.push(1);
    stream.push(new Promise((resolve) => (release = resolve)));
    stream.push(Promise.resolve(SKIP));
    stream.push(4);
    stream.end();
    stream.push(5); // after end: ignored
    const all = drain(stream);
    await tick();
    release(2);
    expect(await all).toEqual([1, 2, 4]);
  });

  it('hands a value to a waiting consumer at once, and mapValues maps (also asynchronously) in order', async () => {
    const stream = new PushStream<number>();
    const mapped = stream.mapValues((value) => (value % 2 === 0 ? Promise.resolve(`even ${value}`) : `odd ${value}`));
    const first = mapped.next();
    stream.push(1);
    expect(await first).toEqual({ done: false, value: 'odd 1' });
    stream.push(2);
    stream.push(3);
    stream.end();
    expect(await drain(mapped)).toEqual(['even 2', 'odd 3']);
  });

  it('turns an error into its last value with lastValue, else rejects next()', async () => {
    const soft = new PushStream<string>({ lastValue: (error) => (error instanceof RangeError ? `last: ${error.message}` : undefined) });
    soft.push('a');
    soft.fail(new RangeError('gone'));
    expect(await drain(soft)).toEqual(['a', 'last: gone']);

    const hard = new PushStream<string>({ lastValue: () => undefined });
    hard.push('a');
    hard.push(Promise.reject(new Error('read failed')));
    hard.push('never');
    expect(await hard.next()).toEqual({ done: false, value: 'a' });
    await expect(hard.next()).rejects.toThrow('read failed');
    expect(await hard.next()).toEqual({ done: true, value: undefined });
  });

  it('runs its close hooks once, when the producer ends or the consumer returns, and wakes a waiting consumer', async () => {
    const closed: string[] = [];
    const stream = new PushStream<number>();
    stream.onClose(() => closed.push('first'));
    stream.onClose(() => closed.push('second'));
    stream.onClose(() => closed.push('third'));
    const waiting = stream.next();
    await stream.return();
    expect(await waiting).toEqual({ done: true, value: undefined });
    stream.end();
    expect(closed).toEqual(['first', 'second', 'third']);
    stream.onClose(() => closed.push('late'));
    expect(closed.at(-1)).toBe('late');
    expect(stream.closed).toBe(true);
  });

  /** A sink that records what it is called with. */
  const recorder = <T>() => {
    const calls: unknown[] = [];
    let ended: () => void = () => {};
    const done = new Promise<void>((resolve) => (ended = resolve));
    const sink: StreamSink<T> = {
      next: (value) => calls.push(value),
      complete: () => {
        calls.push('complete');
        ended();
      },
      error: (error) => {
        calls.push(`error: ${(error as Error).message}`);
        ended();
      },
    };
    return { calls, done, sink };
  };

  it('consume: calls the sink in order (promises and mapped promises keep their place, SKIP is left out), then complete', async () => {
    const stream = new PushStream<number>();
    const { calls, done, sink } = recorder<string>();
    let release: (value: number | typeof SKIP) => void = () => {};
    stream.push(1);
    const mapped = stream.mapValues((value) => (value === 4 ? Promise.resolve(`four`) : String(value)));
    (mapped as unknown as PushStream<string>).consume(sink);
    // Taken at once, without waiting for a tick.
    expect(calls).toEqual(['1']);
    await expect(stream.next()).rejects.toThrow('consume');
    stream.push(new Promise((resolve) => (release = resolve)));
    stream.push(Promise.resolve(SKIP));
    stream.push(4);
    stream.push(5);
    stream.end();
    await tick();
    expect(calls).toEqual(['1']);
    release(2);
    await done;
    expect(calls).toEqual(['1', '2', 'four', '5', 'complete']);
  });

  it('consume: a failure becomes the last value with lastValue, else the sink hears error; a rejected mapped value ends the stream', async () => {
    const soft = new PushStream<string>({ lastValue: (error) => `last: ${(error as Error).message}` });
    const first = recorder<string>();
    soft.consume(first.sink);
    soft.push('a');
    soft.push(Promise.reject(new Error('read failed')));
    soft.push('dropped');
    await first.done;
    expect(first.calls).toEqual(['a', 'last: read failed', 'complete']);

    const hard = new PushStream<string>();
    const second = recorder<string>();
    hard.consume(second.sink);
    hard.fail(new Error('gone'));
    await second.done;
    expect(second.calls).toEqual(['error: gone']);

    const closed: string[] = [];
    const mapping = new PushStream<number>();
    mapping.onClose(() => closed.push('closed'));
    const third = recorder<number>();
    (
      mapping.mapValues((value) => (value === 2 ? Promise.reject(new Error('map failed')) : value)) as unknown as PushStream<number>
    ).consume(third.sink);
    mapping.push(1);
    mapping.push(2);
    mapping.push(3);
    await third.done;
    expect(third.calls).toEqual([1, 'error: map failed']);
    expect(closed).toEqual(['closed']);
  });

  it('consume: after return() the sink hears nothing, not even a value that was being awaited', async () => {
    const stream = new PushStream<number>();
    const { calls, sink } = recorder<number>();
    let release: (value: number) => void = () => {};
    stream.consume(sink);
    stream.push(1);
    stream.push(new Promise((resolve) => (release = resolve)));
    stream.push(3);
    await stream.return();
    release(2);
    await tick();
    stream.push(4);
    stream.end();
    expect(calls).toEqual([1]);
    expect(stream.closed).toBe(true);
  });

  it('refuses a second next() while one is pending', async () => {
    const stream = new PushStream<number>();
    const first = stream.next();
    await expect(stream.next()).rejects.toThrow('before the previous one settled');
    stream.push(7);
    expect(await first).toEqual({ done: false, value: 7 });
  });
});

/**
 * A change source whose `head()` answers only when the test says so, so that two
 * listeners can be held at exactly the interleaving a race needs.
 */
class GatedSource implements ChangeSource {
  readonly events: ChangeEvent[] = [];
  readonly heads: ((cursor: string | null) => void)[] = [];
  live = false;
  head(): Promise<string | null> {
    return new Promise((resolve) => this.heads.push(resolve));
  }
  async readAfter(cursor: string | null, limit: number): Promise<ChangeEvent[]> {
    return this.events.filter((event) => cursor === null || Number(event.cursor) > Number(cursor)).slice(0, limit);
  }
  compare(a: string, b: string): number {
    return Number(a) - Number(b);
  }
  startLive(): void {
    this.live = true;
  }
  stopLive(): void {
    this.live = false;
  }
  /** Stores an event and, while live, publishes it (the live tail). */
  write(hub: ChangeHub, n: number): void {
    const event = { cursor: String(n), entity: 'job', op: 'created', id: `job_${n}` } as ChangeEvent;
    this.events.push(event);
    if (this.live) hub.publish([event]);
  }
}

describe('ChangeHub', () => {
  it('a listener that starts while another restarts the live tail keeps the position the tail reached', async () => {
    const source = new GatedSource();
    const hub = new ChangeHub(source);
    const a: string[] = [];
    const b: string[] = [];
    const errors: Error[] = [];
    // Both start with nobody listening, so both ask for the head to restart the tail from.
    const first = hub.listen(null, { event: (event) => a.push(event.cursor), error: (error) => errors.push(error) });
    const second = hub.listen(null, { event: (event) => b.push(event.cursor), error: (error) => errors.push(error) });
    await tick();
    expect(source.heads).toHaveLength(2);
    // The first gets its head (empty store) and starts the tail, which publishes two events…
    source.heads[0]?.(null);
    await tick();
    expect(source.live).toBe(true);
    source.write(hub, 1);
    source.write(hub, 2);
    // …before the second's (now stale) head arrives: it must not move the tail back.
    source.heads[1]?.(null);
    await tick();
    source.write(hub, 3);
    await tick();
    expect(a).toEqual(['1', '2', '3']);
    expect(b).toEqual(['1', '2', '3']);
    expect(hub.livePosition).toBe('3');
    expect(errors).toEqual([]);
    first.stop();
    second.stop();
    expect(source.live).toBe(false);
  });
});

describe('followChanges on SQLite', () => {
  const adapter = sqliteAdapter();
  afterAll(() => adapter.cleanup());

  it('pauses listening while the consumer is behind and resumes after the last change seen: every change once, in order', async () => {
    const store = await adapter.open();
    try {
      let listens = 0;
      const listen: Listen = (after, listener) => {
        listens++;
        return store.listen(after, listener);
      };
      const stream = new PushStream<ChangeEvent>();
      followChanges(listen, stream, null, (event) => stream.push(event), { maxQueue: 5 });
      for (let i = 0; i < 8; i++)
        await store.createJobs(Array.from({ length: 5 }, () => ({ type: 'noop', parameters: {}, maxAttempts: 1, ownerId: 'alice' })));
      const seen: ChangeEvent[] = [];
      const iterator = stream[Symbol.asyncIterator]();
      while (seen.length < 40) {
        const step = await iterator.next();
        if (step.done === true) throw new Error('ended early');
        seen.push(step.value);
        await tick(); // a slow consumer
      }
      await iterator.return?.();
      expect(listens).toBeGreaterThan(1);
      expect(new Set(seen.map((event) => event.id)).size).toBe(40);
      const cursors = seen.map((event) => Number(event.cursor));
      expect(cursors).toEqual([...cursors].sort((a, b) => a - b));
    } finally {
      await store.close();
    }
  });
});

describe('ChangeHub routing by key, on SQLite', () => {
  const adapter = sqliteAdapter();
  afterAll(() => adapter.cleanup());

  it('gives a keyed listener only the changes of its job or batch, live and in replay, each once', async () => {
    const store = await adapter.open();
    try {
      const start = await store.headCursor();
      const job = (ownerId: string) => ({ type: 'noop', parameters: {}, maxAttempts: 1, ownerId });
      const [lone] = await store.createJobs([job('alice')]);
      const loneId = lone?.value.id as string;
      const created = await store.createBatch({ name: 'b', ownerId: 'alice', jobs: [{ type: 'noop', parameters: {}, maxAttempts: 1 }] });
      const batchId = created.value.batch.id;
      const batchJobId = created.value.jobs[0]?.id as string;
      const others = await store.createJobs(Array.from({ length: 20 }, () => job('bob')));

      type Seen = { events: ChangeEvent[]; calls: number; errors: Error[] };
      const follow = (after: string | null | undefined, keys: RoutingKeys | null): Seen & { stop(): void } => {
        const seen: Seen = { events: [], calls: 0, errors: [] };
        const listening = store.listen(
          after,
          {
            event: (event) => {
              seen.calls++;
              seen.events.push(event);
            },
            error: (error) => seen.errors.push(error),
          },
          keys,
        );
        return Object.assign(seen, { stop: () => listening.stop() });
      };
      // Replay from before everything, and live from now; one key as a string or in an array.
      const replayJob = follow(start, `job:${loneId}`);
      const replayBatch = follow(start, [`batch:${batchId}`]);
      const liveJob = follow(undefined, `job:${loneId}`);
      const liveBatch = follow(undefined, [`batch:${batchId}`]);
      const both = follow(undefined, [`job:${batchJobId}`, `batch:${batchId}`]);
      const everything = follow(undefined, null);
      await expect.poll(() => replayBatch.events.length).toBeGreaterThan(0);

      await store.cancelJob(loneId);
      await store.cancelJob(batchJobId);
      for (const other of others) await store.cancelJob(other.value.id);
      // The lone job, the batch job and its batch, twenty others.
      await expect.poll(() => everything.events.length).toBe(1 + 2 + 20);

      const ids = (seen: Seen) => seen.events.map((event) => `${event.entity}:${event.id}`);
      expect(ids(liveJob)).toEqual([`job:${loneId}`]);
      // A batch's key carries its jobs' changes and the batch's own (its counts).
      expect(ids(liveBatch)).toEqual([`job:${batchJobId}`, `batch:${batchId}`]);
      // Two keys of one event: delivered once.
      expect(ids(both)).toEqual([`job:${batchJobId}`, `batch:${batchId}`]);
      expect(both.calls).toBe(2);
      // Replay is filtered the same way: creation, then the cancellation.
      await expect.poll(() => replayJob.events.length).toBe(2);
      expect(ids(replayJob)).toEqual([`job:${loneId}`, `job:${loneId}`]);
      expect(replayJob.events.map((event) => event.op)).toEqual(['created', 'updated']);
      await expect.poll(() => replayBatch.events.filter((event) => event.entity === 'job').length).toBe(2);
      expect(replayBatch.events.every((event) => event.id === batchId || event.id === batchJobId)).toBe(true);
      for (const seen of [replayJob, replayBatch, liveJob, liveBatch, both, everything]) {
        expect(seen.errors).toEqual([]);
        seen.stop();
      }
    } finally {
      await store.close();
    }
  });
});
