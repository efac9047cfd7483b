import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import type { Job } from '../../src/domain/types.js';
import { JobFailure, PermanentJobError } from '../../src/errors.js';
import { defineHandler, type HandlerDefinition } from '../../src/handlers/registry.js';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { retryDelay } from '../../src/worker/backoff.js';
import { GROUP_WRITES } from '../../src/worker/worker.js';
import { createHarness, deferred, type Harness, observeCalls, observeClaims } from '../helpers/worker-harness.js';

const anyParams = z.looseObject({});

/** Lets queued callbacks (timers due now, I/O, microtasks) run once; not a wait for time. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** Resolves once the wall clock has passed `at` (lease expiry is measured in real time). */
function clockPast(at: Date): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (Date.now() > at.getTime() ? resolve() : setTimeout(check, at.getTime() - Date.now() + 1));
    check();
  });
}

function handler(type: string, run: HandlerDefinition['run'], defaults?: HandlerDefinition['defaults']): HandlerDefinition {
  return defineHandler({ type, parameters: anyParams, run, ...(defaults === undefined ? {} : { defaults }) }) as HandlerDefinition;
}

async function submit(h: Harness, type: string, count: number, extra: { maxAttempts?: number; batch?: boolean } = {}): Promise<string[]> {
  const jobs = Array.from({ length: count }, (_, i) => ({
    type,
    parameters: { i },
    maxAttempts: extra.maxAttempts ?? 3,
    ownerId: 'alice',
  }));
  const created = await h.store.createJobs(jobs);
  return created.map((c) => c.value.id);
}

describe('worker', () => {
  let h: Harness;
  beforeEach(() => {
    h = createHarness();
  });
  afterEach(async () => {
    vi.useRealTimers();
    await h.close();
  });

  it('never runs more than `concurrency` handlers at once, and completes all 100 jobs', async () => {
    let current = 0;
    let peak = 0;
    const seen = new Set<string>();
    // The first handlers wait until five run at once: the slots fill up (else this times out).
    const full = deferred();
    const worker = h.worker(
      [
        handler('work', async (_p, ctx) => {
          current++;
          peak = Math.max(peak, current);
          seen.add(ctx.job.id);
          if (current === 5) full.resolve();
          await full.promise;
          await turn();
          current--;
          return { ok: true };
        }),
      ],
      { concurrency: 5 },
    );
    const ids = await submit(h, 'work', 100);
    worker.start();
    const jobs = await h.waitForStatus(ids, ['COMPLETED']);
    expect(jobs.every((j) => j.results?.ok === true && j.attempts === 1)).toBe(true);
    expect(peak).toBe(5);
    expect(seen.size).toBe(100);
  });

  it('honours per-type limits inside the global one', async () => {
    const running = { slow: 0, fast: 0 };
    const peaks = { slow: 0, fast: 0 };
    // Handlers hold their slots until 2 slow and 4 fast run at once (the most the limits allow).
    const full = deferred();
    const track = (type: 'slow' | 'fast') =>
      handler(type, async () => {
        running[type]++;
        peaks[type] = Math.max(peaks[type], running[type]);
        if (running.slow === 2 && running.fast === 4) full.resolve();
        await full.promise;
        await turn();
        running[type]--;
        return {};
      });
    const worker = h.worker([track('slow'), track('fast')], { concurrency: 6, perType: { slow: { concurrency: 2 } } });
    const ids = [...(await submit(h, 'slow', 20)), ...(await submit(h, 'fast', 20))];
    worker.start();
    await h.waitForStatus(ids, ['COMPLETED']);
    expect(peaks.slow).toBe(2);
    expect(peaks.fast).toBe(4);
  });

  it('claims its free slots with one store call and commits the outcomes of one turn together', async () => {
    const claims: number[] = [];
    const groups: string[][] = [];
    const store = observeCalls(h.store, ['claim', 'claimNext', 'commitWrites', 'complete', 'completeAndClaim'], (method, args, result) => {
      if (method === 'claim') claims.push((result as Job[]).length);
      else if (method === 'commitWrites') groups.push((args[0] as { kind: string }[]).map((w) => w.kind));
      else claims.push(-1);
    });
    const ids = await submit(h, 'work', 10);
    const worker = h.worker([handler('work', async () => ({}))], { concurrency: 10 }, { store });
    worker.start();
    await h.waitForStatus(ids, ['COMPLETED']);
    // The ten free slots are filled by one claim of ten jobs, not ten claims.
    expect(claims[0]).toBe(10);
    expect(claims).not.toContain(-1);
    // Handlers that finish in the same turn are committed together: fewer commits than jobs.
    expect(groups.flat().filter((kind) => kind === 'complete')).toHaveLength(10);
    expect(groups.length).toBeLessThan(10);
  });

  it(`commits more than ${GROUP_WRITES} outcomes of one turn in consecutive groups of at most ${GROUP_WRITES}, every job completed once`, async () => {
    const groups: number[] = [];
    const store = observeCalls(h.store, ['commitWrites'], (_method, args) => {
      groups.push((args[0] as unknown[]).length);
    });
    const count = GROUP_WRITES * 2 + 22;
    const all = deferred();
    let running = 0;
    const ids = await submit(h, 'wave', count);
    const worker = h.worker(
      [
        handler('wave', async () => {
          if (++running === count) all.resolve();
          // Every handler returns in the same turn, once all of them run.
          await all.promise;
          return {};
        }),
      ],
      { concurrency: count },
      { store },
    );
    worker.start();
    const jobs = await h.waitForStatus(ids, ['COMPLETED']);
    expect(jobs.every((job) => job.attempts === 1)).toBe(true);
    expect(groups.reduce((sum, n) => sum + n, 0)).toBe(count);
    expect(Math.max(...groups)).toBe(GROUP_WRITES);
    expect(groups.length).toBeGreaterThanOrEqual(3);
  });

  it('stop() waits for a claim under way and gives its jobs back, so nothing is claimed after it returns', async () => {
    const ids = await submit(h, 'work', 5);
    // The worker's first claim is held at the store's door until the test opens it.
    const door = deferred();
    let claims = 0;
    const store = new Proxy(h.store, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (typeof value !== 'function') return value;
        if (key !== 'claim') return value.bind(target);
        return async (...args: Parameters<typeof target.claim>) => {
          claims++;
          await door.promise;
          return target.claim(...args);
        };
      },
    });
    const worker = h.worker([handler('work', async () => ({}))], { concurrency: 5 }, { store });
    worker.start();
    await expect.poll(() => claims).toBe(1);
    let stopped = false;
    const stopping = worker.stop().then(() => {
      stopped = true;
    });
    for (let i = 0; i < 5; i++) await turn();
    expect(stopped).toBe(false);
    door.resolve();
    await stopping;
    // The claim committed after stop() began; its jobs were given back before stop() returned.
    const jobs = (await h.store.getJobs(ids)) as Job[];
    expect(jobs.map((job) => job.status)).toEqual(ids.map(() => 'PENDING'));
    expect(jobs.every((job) => job.attempts === 0 && job.leaseOwner === null)).toBe(true);
    expect(claims).toBe(1);
  });

  it("renews every running job's lease with one store call per tick, not one per job", async () => {
    const renewals: number[] = [];
    let single = 0;
    const store = observeCalls(h.store, ['renewLeases', 'renewLease'], (method, args) => {
      if (method === 'renewLeases') renewals.push((args[0] as unknown[]).length);
      else single++;
    });
    const allRunning = deferred();
    const mayFinish = deferred();
    let started = 0;
    const worker = h.worker(
      [
        handler('hold', async () => {
          if (++started === 5) allRunning.resolve();
          await mayFinish.promise;
          return {};
        }),
      ],
      { concurrency: 5, leaseMs: 400, heartbeatMs: 50 },
      { store },
    );
    const ids = await submit(h, 'hold', 5);
    worker.start();
    await allRunning.promise;
    const before = (await h.store.getJobs(ids)) as Job[];
    // Two ticks: each renews all five leases at once.
    await expect.poll(() => renewals.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    expect(renewals.every((count) => count === 5)).toBe(true);
    expect(single).toBe(0);
    const renewed = (await h.store.getJobs(ids)) as Job[];
    renewed.forEach((job, i) => {
      expect(job.leaseUntil?.getTime()).toBeGreaterThan(before[i]?.leaseUntil?.getTime() as number);
    });
    mayFinish.resolve();
    await h.waitForStatus(ids, ['COMPLETED']);
  });

  it('starts pending work on the change feed, without waiting for the poll', async () => {
    const foundNothing = deferred();
    const store = observeClaims(h.store, (job) => {
      if (job === null) foundNothing.resolve();
    });
    const worker = h.worker([handler('work', async () => ({}))], { pollMs: 60_000 }, { store });
    worker.start();
    // The first fill found nothing, and the feed (started before it) is listening: only the feed can wake it now.
    await foundNothing.promise;
    await turn();
    const ids = await submit(h, 'work', 3);
    await h.waitForStatus(ids, ['COMPLETED'], 5000);
  });

  it('retries on the configured backoff schedule, stops at maxAttempts, and records every error', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'Date'] });
    const attempts: number[] = [];
    const worker = h.worker(
      [
        handler('flaky', async (_p, ctx) => {
          attempts.push(Date.now());
          throw new JobFailure('UPSTREAM_DOWN', `attempt ${ctx.attempt} failed`);
        }),
      ],
      { pollMs: 50, backoff: { baseMs: 1000, maxMs: 60_000, jitter: 0 } },
    );
    const [id] = await submit(h, 'flaky', 1, { maxAttempts: 3 });
    worker.start();
    for (let i = 0; i < 200 && attempts.length < 3; i++) await vi.advanceTimersByTimeAsync(50);
    await vi.advanceTimersByTimeAsync(100);
    const [job] = (await h.store.getJobs([id as string])) as Job[];
    expect(job?.status).toBe('FAILED');
    expect(job?.errors.map((e) => [e.code, e.attempt])).toEqual([
      ['UPSTREAM_DOWN', 1],
      ['UPSTREAM_DOWN', 2],
      ['UPSTREAM_DOWN', 3],
    ]);
    // 1 s after the first failure, then 2 s after the second (within one poll interval).
    const gaps = [(attempts[1] as number) - (attempts[0] as number), (attempts[2] as number) - (attempts[1] as number)];
    expect(gaps[0]).toBeGreaterThanOrEqual(1000);
    expect(gaps[0]).toBeLessThanOrEqual(1000 + 100);
    expect(gaps[1]).toBeGreaterThanOrEqual(2000);
    expect(gaps[1]).toBeLessThanOrEqual(2000 + 100);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(attempts).toHaveLength(3);
  });

  it('does not retry a permanent error', async () => {
    let calls = 0;
    const worker = h.worker([
      handler('bad', async () => {
        calls++;
        throw new PermanentJobError('BAD_INPUT', 'cannot work with this');
      }),
    ]);
    const [id] = await submit(h, 'bad', 1, { maxAttempts: 5 });
    worker.start();
    const [job] = await h.waitForStatus([id as string], ['FAILED']);
    expect(job).toMatchObject({ attempts: 1, error: { code: 'BAD_INPUT', retriable: false } });
    expect(calls).toBe(1);
  });

  it('computes exponential backoff with capped, bounded jitter', () => {
    const config = { baseMs: 1000, maxMs: 5000, jitter: 0.2 };
    expect([1, 2, 3, 4, 5].map((a) => retryDelay(a, { ...config, jitter: 0 }))).toEqual([1000, 2000, 4000, 5000, 5000]);
    expect(retryDelay(2, config, () => 0)).toBe(1600);
    expect(retryDelay(2, config, () => 0.999999)).toBe(2400);
  });

  it('aborts a running handler when its job is cancelled, and records CANCELLED', async () => {
    let started: () => void = () => {};
    const isStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    let abortedWith: unknown = null;
    const worker = h.worker([
      handler('long', async (_p, ctx) => {
        started();
        await new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            abortedWith = ctx.signal.reason;
            reject(ctx.signal.reason);
          });
        });
        return {};
      }),
    ]);
    const [id] = await submit(h, 'long', 1);
    worker.start();
    await isStarted;
    await h.store.cancelJob(id as string);
    const [job] = await h.waitForStatus([id as string], ['CANCELLED'], 5000);
    expect(job?.cancelRequested).toBe(false);
    expect((abortedWith as { kind?: string } | null)?.kind).toBe('cancelled');
  });

  it('never starts a job cancelled while pending', async () => {
    const ran: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const worker = h.worker(
      [
        handler('gated', async (_p, ctx) => {
          ran.push(ctx.job.id);
          await gate;
          return {};
        }),
      ],
      { concurrency: 1 },
    );
    const [first, second, third] = await submit(h, 'gated', 3);
    worker.start();
    await h.waitForStatus([first as string], ['PROCESSING']);
    await h.store.cancelJob(second as string);
    release();
    // Claims go in creation order: had the cancelled job been claimable, it would have run before the third.
    await h.waitForStatus([first as string, third as string], ['COMPLETED']);
    const [after] = (await h.store.getJobs([second as string])) as Job[];
    expect(after?.status).toBe('CANCELLED');
    expect(ran).toEqual([first, third]);
  });

  it('times out a handler that ignores its signal, frees the slot, and refuses its late writes', async () => {
    const stubbornMayReturn = deferred();
    const lateWrite = deferred<string | undefined>();
    let stubbornReturned = false;
    const worker = h.worker(
      [
        handler(
          'stubborn',
          async (_p, ctx) => {
            await stubbornMayReturn.promise; // ignores the signal
            lateWrite.resolve(
              await ctx.writeResult('late.txt', 'too late', 'text/plain').then(
                () => 'written',
                (e: { code?: string }) => e.code,
              ),
            );
            stubbornReturned = true;
            return { late: true };
          },
          { timeoutMs: 50, maxAttempts: 1 },
        ),
        handler('quick', async () => ({})),
      ],
      { concurrency: 1, abandonGraceMs: 100 },
    );
    const [stubborn] = await submit(h, 'stubborn', 1, { maxAttempts: 1 });
    const [quick] = await submit(h, 'quick', 1);
    worker.start();
    const [timedOut] = await h.waitForStatus([stubborn as string], ['FAILED']);
    expect(timedOut?.error?.code).toBe('TIMEOUT');
    // The abandoned slot went to the next job while the stubborn handler still holds on
    // (with one slot and no abandoning, the quick job could not run until it returned).
    await h.waitForStatus([quick as string], ['COMPLETED'], 5000);
    expect(stubbornReturned).toBe(false);
    stubbornMayReturn.resolve();
    expect(await lateWrite.promise).toBe('LEASE_LOST');
    const [still] = (await h.store.getJobs([stubborn as string])) as Job[];
    expect(still?.status).toBe('FAILED');
    expect(await h.results.read(stubborn as string, 'late.txt')).toBeNull();
  });

  it('keeps a job past leaseMs with its heartbeat: no other worker takes it', async () => {
    const claimed = deferred<Job>();
    const mayFinish = deferred();
    const runs: string[] = [];
    const definition = (by: string) =>
      handler('long', async (_p, ctx) => {
        runs.push(by);
        claimed.resolve(ctx.job);
        await mayFinish.promise;
        return {};
      });
    const [id] = await submit(h, 'long', 1, { maxAttempts: 3 });
    h.worker([definition('keeper')], { leaseMs: 300, heartbeatMs: 50 }, { workerId: 'keeper' }).start();
    const job = await claimed.promise;
    // A rival polling for work all along: it would take the job as soon as the lease lapsed.
    h.worker([definition('rival')], { leaseMs: 300, heartbeatMs: 50, pollMs: 20 }, { workerId: 'rival' }).start();
    // Three lease lengths after the claim, the job is still the keeper's.
    await clockPast(new Date((job.leaseUntil as Date).getTime() + 600));
    const [during] = (await h.store.getJobs([id as string])) as Job[];
    expect(during).toMatchObject({ status: 'PROCESSING', leaseOwner: 'keeper', attempts: 1 });
    expect(during?.leaseUntil?.getTime()).toBeGreaterThan((job.leaseUntil as Date).getTime());
    mayFinish.resolve();
    const [done] = await h.waitForStatus([id as string], ['COMPLETED']);
    expect(done?.attempts).toBe(1);
    expect(runs).toEqual(['keeper']);
  });

  it('aborts a running handler whose lease was lost, and its late writes change nothing', async () => {
    const claimed = deferred<Job>();
    const aborted = deferred<unknown>();
    const lateWrite = deferred<string | undefined>();
    const worker = h.worker(
      [
        handler('long', async (_p, ctx) => {
          claimed.resolve(ctx.job);
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
          aborted.resolve(ctx.signal.reason);
          lateWrite.resolve(
            await ctx.writeResult('late.txt', 'too late', 'text/plain').then(
              () => 'written',
              (e: { code?: string }) => e.code,
            ),
          );
          return { late: true };
        }),
      ],
      // The heartbeat comes after the lease has lapsed, so the job can be taken in between.
      { leaseMs: 150, heartbeatMs: 400 },
      { workerId: 'loser' },
    );
    const [id] = await submit(h, 'long', 1, { maxAttempts: 3 });
    worker.start();
    const job = await claimed.promise;
    await clockPast(job.leaseUntil as Date);
    let taken: Job | null = null;
    await expect
      .poll(async () => {
        taken = await h.store.claimNext({ workerId: 'thief', leaseMs: 60_000 });
        return taken;
      })
      .not.toBeNull();
    expect(((await aborted.promise) as { kind?: string }).kind).toBe('lease-lost');
    expect(await lateWrite.promise).toBe('LEASE_LOST');
    const [after] = (await h.store.getJobs([id as string])) as Job[];
    expect(after).toMatchObject({ status: 'PROCESSING', leaseOwner: 'thief', attempts: 2, results: null });
    expect(await h.results.read(id as string, 'late.txt')).toBeNull();
  });

  it('coalesces progress: 10,000 calls write a handful of times, and the last value wins', async () => {
    const worker = h.worker(
      [
        handler('chatty', async (_p, ctx) => {
          for (let i = 1; i <= 10_000; i++) ctx.progress({ percent: i / 100, step: 'loop', message: `${i}` });
          await turn();
          ctx.log('info', 'done looping');
          return {};
        }),
      ],
      { progressIntervalMs: 20 },
    );
    const [id] = await submit(h, 'chatty', 1);
    const cursor = await h.store.headCursor();
    worker.start();
    const [job] = await h.waitForStatus([id as string], ['COMPLETED']);
    expect(job?.progress).toMatchObject({ percent: 100, step: 'loop', message: '10000' });
    // Every change from the claim to the completion (the watch ends there).
    let progressWrites = 0;
    const controller = new AbortController();
    for await (const event of h.store.watch({ after: cursor, signal: controller.signal })) {
      if (event.id === id && event.op === 'updated' && event.status === 'PROCESSING' && event.data?.progress !== null) progressWrites++;
      if (event.id === id && event.status === 'COMPLETED') controller.abort();
    }
    expect(progressWrites).toBeGreaterThanOrEqual(1);
    expect(progressWrites).toBeLessThan(10);
    expect((await h.store.listLogs(id as string, null, 10)).map((l) => l.message)).toEqual([
      expect.stringMatching(/^claimed by worker .+ \(attempt 1 of \d+\)$/),
      'done looping',
      expect.stringMatching(/^completed in \d+ ms$/),
    ]);
  });

  it('writes result files and lists them in the results', async () => {
    const worker = h.worker([
      handler('writer', async (_p, ctx) => {
        await ctx.writeResult('out/notes.md', '# Notes\n', 'text/markdown');
        return { summary: 'one file' };
      }),
    ]);
    const [id] = await submit(h, 'writer', 1);
    worker.start();
    const [job] = await h.waitForStatus([id as string], ['COMPLETED']);
    expect(job?.results).toMatchObject({
      summary: 'one file',
      files: [{ name: 'out/notes.md', contentType: 'text/markdown', size: 8 }],
    });
    expect((await h.results.read(id as string, 'out/notes.md'))?.toString()).toBe('# Notes\n');
  });

  it("acts on another process's changes with nothing but the feed: new, resumed, restarted and returned jobs, a cancel request", async () => {
    const runs: string[] = [];
    const handlers = [
      handler('work', async (_p, ctx) => {
        runs.push(ctx.job.id);
        return {};
      }),
      handler('long', async (_p, ctx) => {
        runs.push(ctx.job.id);
        await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
        return {};
      }),
    ];
    /**
     * A worker in a process of its own (a store of its own on the file) that neither polls
     * nor renews leases within the test, started after `setup`: once its first claim found
     * nothing, only the change feed can make it act on `change` (made here, in the other process).
     */
    async function onlyTheFeed(setup: () => Promise<void>, change: () => Promise<void>, done: () => Promise<unknown>): Promise<void> {
      await setup();
      const mine = createSqliteStore({ path: h.path, changePollMs: 10 });
      let found = 0;
      const store = observeClaims(mine, (job) => void (job === null ? found++ : null));
      const worker = h.worker(handlers, { pollMs: 3_600_000, heartbeatMs: 3_600_000, leaseMs: 7_200_000 }, { store });
      try {
        worker.start();
        await expect.poll(() => found).toBeGreaterThan(0);
        await change();
        await done();
      } finally {
        await worker.stop();
        await mine.close();
      }
    }
    const none = async () => {};
    const token = (job: Job) => ({ jobId: job.id, workerId: 'here', leaseToken: job.leaseToken });

    // A new job.
    let id = '';
    await onlyTheFeed(
      none,
      async () => {
        [id = ''] = await submit(h, 'work', 1);
      },
      () => h.waitForStatus([id], ['COMPLETED']),
    );
    // A batch switched back on.
    const { value } = await h.store.createBatch({
      name: 'paused',
      ownerId: 'alice',
      active: false,
      jobs: [1, 2].map((i) => ({ type: 'work', parameters: { i }, maxAttempts: 1 })),
    });
    const batchJobs = value.jobs.map((j) => j.id);
    await onlyTheFeed(
      none,
      async () => void (await h.store.setBatchActive(value.batch.id, true)),
      () => h.waitForStatus(batchJobs, ['COMPLETED']),
    );
    // A job restarted.
    await onlyTheFeed(
      none,
      async () => void (await h.store.restartJob(id)),
      () => expect.poll(() => runs.filter((run) => run === id).length).toBe(2),
    );
    await h.waitForStatus([id], ['COMPLETED']);
    // A job claimed and failed here for a retry: returned to PENDING.
    let claimed: Job | undefined;
    await onlyTheFeed(
      async () => {
        const [returned] = await submit(h, 'work', 1, { maxAttempts: 2 });
        [claimed] = await h.store.claim({ workerId: 'here', leaseMs: 60_000 }, 1);
        expect(claimed?.id).toBe(returned);
      },
      async () => {
        await h.store.fail(token(claimed as Job), { code: 'AGAIN', message: 'again', retriable: true, retryAt: new Date() });
      },
      async () => expect((await h.waitForStatus([claimed?.id as string], ['COMPLETED']))[0]?.attempts).toBe(2),
    );
    // A running job's cancel request (no lease renewal could bring it within the test).
    const [long = ''] = await submit(h, 'long', 1);
    const mine = createSqliteStore({ path: h.path, changePollMs: 10 });
    const worker = h.worker(handlers, { pollMs: 3_600_000, heartbeatMs: 3_600_000, leaseMs: 7_200_000 }, { store: mine });
    try {
      worker.start();
      await expect.poll(() => runs.includes(long)).toBe(true);
      await h.store.cancelJob(long);
      await h.waitForStatus([long], ['CANCELLED']);
    } finally {
      await worker.stop();
      await mine.close();
    }
    expect(runs.filter((run) => run === id)).toHaveLength(2);
  });

  it('does not claim jobs of paused batches until they are resumed', async () => {
    const worker = h.worker([handler('work', async () => ({}))]);
    const { value } = await h.store.createBatch({
      name: 'paused',
      ownerId: 'alice',
      active: false,
      jobs: Array.from({ length: 5 }, () => ({ type: 'work', parameters: {}, maxAttempts: 1 })),
    });
    // Created after the batch: claims go in creation order, so had the paused jobs been
    // claimable, they would have been claimed before this one.
    const [probe] = await submit(h, 'work', 1);
    worker.start();
    await h.waitForStatus([probe as string], ['COMPLETED']);
    expect((await h.store.getBatches([value.batch.id]))[0]?.counts.pending).toBe(5);
    await h.store.setBatchActive(value.batch.id, true);
    await h.waitForStatus(
      value.jobs.map((j) => j.id),
      ['COMPLETED'],
    );
    expect((await h.store.getBatches([value.batch.id]))[0]).toMatchObject({ status: 'COMPLETED', counts: { completed: 5 } });
  });
});
