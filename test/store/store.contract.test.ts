/**
 * The store contract: every adapter must pass this same suite (see
 * test/helpers/adapters.ts for which adapters run here and why one may be skipped).
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Delivery, Job } from '../../src/domain/types.js';
import { AppError } from '../../src/errors.js';
import type { ChangeEvent, ClaimToken, JobStore, NewBatchJob, NewJob } from '../../src/store/port.js';
import { type AdapterUnderTest, storeSuites } from '../helpers/adapters.js';

const suites = await storeSuites();

function job(overrides: Partial<NewJob> = {}): NewJob {
  return { type: 'noop', parameters: {}, maxAttempts: 3, ownerId: 'alice', ...overrides };
}

function tokenOf(claimed: Job): ClaimToken {
  return { jobId: claimed.id, workerId: claimed.leaseOwner as string, leaseToken: claimed.leaseToken };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
  throw new Error('expected the call to fail');
}

/** Reads events from a watch until `done` says so; fails after 5 s. */
async function collect(
  store: JobStore,
  after: string | null,
  done: (events: ChangeEvent[]) => boolean,
  onReady?: () => Promise<void>,
): Promise<ChangeEvent[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 5000);
  const events: ChangeEvent[] = [];
  const iterator = store.watch({ after, signal: controller.signal })[Symbol.asyncIterator]();
  const first = iterator.next();
  await onReady?.();
  try {
    let result = await first;
    while (!result.done) {
      events.push(result.value);
      if (done(events)) break;
      result = await iterator.next();
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
    await iterator.return?.();
  }
  if (!done(events)) throw new Error(`watch ended after ${events.length} events without reaching the expected state`);
  return events;
}

/** What a listener or watcher received, with a way to await a condition on it. */
interface Recorder {
  events: ChangeEvent[];
  errors: Error[];
  ids(): string[];
  /** Resolves once `done(ids)` holds, checked on every event; fails after 5 s. */
  until(done: (ids: string[]) => boolean): Promise<void>;
  stop(): void;
}

function recorder(): { recorder: Recorder; push(event: ChangeEvent): void; fail(error: Error): void; onStop(stop: () => void): void } {
  const waiters = new Set<() => void>();
  let stop: () => void = () => {};
  const r: Recorder = {
    events: [],
    errors: [],
    ids: () => r.events.map((event) => event.id),
    until(done) {
      if (done(r.ids())) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`waited 5 s; got ${r.events.length} events, errors: ${r.errors.map((e) => e.message).join('; ')}`));
        }, 5000);
        const check = () => {
          if (!done(r.ids())) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },
    stop: () => stop(),
  };
  const notify = () => {
    for (const check of [...waiters]) check();
  };
  return {
    recorder: r,
    push(event) {
      r.events.push(event);
      notify();
    },
    fail(error) {
      r.errors.push(error);
      notify();
    },
    onStop(fn) {
      stop = fn;
    },
  };
}

/** `store.listen(after)`, recorded. */
function record(store: JobStore, after: string | null | undefined): Recorder {
  const r = recorder();
  const listening = store.listen(after, { event: r.push, error: r.fail });
  r.onStop(() => listening.stop());
  return r.recorder;
}

/** `store.watch()` from now, recorded. */
function recordWatch(store: JobStore): Recorder {
  const r = recorder();
  const controller = new AbortController();
  r.onStop(() => controller.abort());
  void (async () => {
    try {
      for await (const event of store.watch({ signal: controller.signal })) r.push(event);
    } catch (error) {
      r.fail(error as Error);
    }
  })();
  return r.recorder;
}

/**
 * Listeners started "from now" say nothing when they are live. Writes probe jobs, each
 * awaited on `reference` (a listener known to be live), until every one of `pending`
 * has received one: a probe is published to every live listener at once.
 */
async function untilLive(store: JobStore, reference: Recorder, pending: Recorder[]): Promise<void> {
  for (let probes = 0; pending.some((r) => r.events.length === 0); probes++) {
    if (probes === 100) throw new Error('a listener never went live');
    const [probe] = await store.createJobs([job({ type: 'probe' })]);
    await reference.until((ids) => ids.includes(probe?.value.id as string));
  }
}

async function waitUntil(date: Date): Promise<void> {
  while (Date.now() <= date.getTime()) await new Promise((resolve) => setTimeout(resolve, 2));
}

function contract(adapter: AdapterUnderTest): void {
  let store: JobStore;

  beforeEach(async () => {
    store = await adapter.open();
  });
  afterEach(async () => {
    await store.close();
  });
  afterAll(async () => {
    await adapter.cleanup();
  });

  describe('creating and reading jobs', () => {
    it('creates jobs with defaults and reads them back by id, in the order asked', async () => {
      const [a, b] = await store.createJobs([job({ parameters: { n: 1, track: 'ai' } }), job({ priority: 5 })]);
      expect(a?.created).toBe(true);
      expect(a?.value).toMatchObject({ status: 'PENDING', priority: 0, attempts: 0, track: 'ai', batchId: null });
      expect(a?.value.accessControl.visibility).toBe('PRIVATE');
      const got = await store.getJobs([b?.value.id as string, 'job_missing', a?.value.id as string]);
      expect(got.map((j) => j?.id ?? null)).toEqual([b?.value.id, null, a?.value.id]);
      expect(got[2]?.parameters).toEqual({ n: 1, track: 'ai' });
      expect(got[2]?.createdAt).toBeInstanceOf(Date);
    });

    it('inserts nothing when one job of a bulk insert is invalid, and names its index', async () => {
      const jobs = Array.from({ length: 1000 }, (_, i) => job({ parameters: { i } }));
      jobs[500] = job({ maxAttempts: 0 });
      const error = await store.createJobs(jobs).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe('BAD_USER_INPUT');
      expect((error as AppError).message).toContain('jobs[500].maxAttempts');
      expect(await store.countJobs({})).toBe(0);
    });

    it('rejects malformed fields with BAD_USER_INPUT', async () => {
      expect(await codeOf(store.createJobs([job({ type: '' })]))).toBe('BAD_USER_INPUT');
      expect(await codeOf(store.createJobs([job({ parameters: [] as never })]))).toBe('BAD_USER_INPUT');
      expect(await codeOf(store.createJobs([job({ priority: 1.5 })]))).toBe('BAD_USER_INPUT');
      expect(await codeOf(store.createJobs([job({ accessControl: { visibility: 'PRIVATE', read: ['bob'], write: [], admin: [] } })]))).toBe(
        'BAD_USER_INPUT',
      );
    });

    it('returns the same job for the same idempotency key and payload, CONFLICT for another payload', async () => {
      const [first] = await store.createJobs([job({ idempotencyKey: 'k1', parameters: { a: 1, b: 2 } })]);
      const [again] = await store.createJobs([job({ idempotencyKey: 'k1', parameters: { b: 2, a: 1 } })]);
      expect(again?.created).toBe(false);
      expect(again?.value.id).toBe(first?.value.id);
      expect(await codeOf(store.createJobs([job({ idempotencyKey: 'k1', parameters: { a: 2 } })]))).toBe('CONFLICT');
      // Keys are per owner.
      const [other] = await store.createJobs([job({ idempotencyKey: 'k1', ownerId: 'bob', parameters: { a: 2 } })]);
      expect(other?.created).toBe(true);
      expect(await store.countJobs({})).toBe(2);
      // The same key twice in one call.
      const pair = await store.createJobs([job({ idempotencyKey: 'k2' }), job({ idempotencyKey: 'k2' })]);
      expect(pair.map((c) => c.created)).toEqual([true, false]);
      expect(pair[1]?.value.id).toBe(pair[0]?.value.id);
      expect(await codeOf(store.createJobs([job({ idempotencyKey: 'k3' }), job({ idempotencyKey: 'k3', priority: 9 })]))).toBe('CONFLICT');
      expect(await store.countJobs({})).toBe(3);
    });

    it('lists with filters and opaque cursor pages, newest first', async () => {
      await store.createJobs(
        Array.from({ length: 7 }, (_, i) => job({ type: i % 2 ? 'pdf' : 'session', parameters: { track: i < 3 ? 'ai' : 'web' } })),
      );
      await store.createJobs([job({ ownerId: 'bob' })]);
      const pdf = await store.listJobs({ type: ['pdf'] }, { first: 10 });
      expect(pdf.items).toHaveLength(3);
      expect(await store.countJobs({ track: 'ai' })).toBe(3);
      expect(await store.countJobs({ ownerId: 'bob' })).toBe(1);
      const seen: string[] = [];
      let after: string | null = null;
      for (;;) {
        const page = await store.listJobs({ ownerId: 'alice' }, { first: 3, after });
        seen.push(...page.items.map((j) => j.id));
        if (!page.hasNextPage) break;
        after = page.endCursor;
      }
      expect(seen).toHaveLength(7);
      expect([...seen].sort().reverse()).toEqual(seen);
      expect(await codeOf(store.listJobs({}, { first: 3, after: 'garbage' }))).toBe('BAD_USER_INPUT');
      const future = new Date(Date.now() + 60_000);
      expect(await store.countJobs({ createdAfter: future })).toBe(0);
      expect(await store.countJobs({ createdBefore: future })).toBe(8);
    });

    it('filters lists by what a principal may read', async () => {
      await store.createJobs([
        job({ ownerId: 'alice' }),
        job({ ownerId: 'alice', teamIds: ['red'], accessControl: { visibility: 'TEAM', read: [], write: [], admin: [] } }),
        job({ ownerId: 'alice', accessControl: { visibility: 'PUBLIC', read: [], write: [], admin: [] } }),
        job({ ownerId: 'alice', accessControl: { visibility: 'PRIVATE', read: ['user:carol'], write: [], admin: [] } }),
      ]);
      const count = (userId: string | null, teams: string[] = [], admin = false) =>
        store.countJobs({ visibleTo: { userId, teams, admin } });
      expect(await count('alice')).toBe(4);
      expect(await count('bob')).toBe(1);
      expect(await count('bob', ['red'])).toBe(2);
      expect(await count('carol')).toBe(2);
      // PUBLIC means every signed-in user: an anonymous caller reads nothing.
      expect(await count(null)).toBe(0);
      expect(await count('root', [], true)).toBe(4);
    });

    it('changes access control, refreshes list visibility and flags the change event', async () => {
      const [created] = await store.createJobs([job({ ownerId: 'alice' })]);
      const id = created?.value.id as string;
      const head = await store.headCursor();
      const visibleToBob = () => store.countJobs({ visibleTo: { userId: 'bob', teams: [], admin: false } });
      expect(await visibleToBob()).toBe(0);
      const updated = await store.setJobAccess(id, { visibility: 'PRIVATE', read: ['user:bob'], write: [], admin: [] });
      expect(updated.accessControl.read).toEqual(['user:bob']);
      expect(updated.version).toBe((created?.value.version as number) + 1);
      expect(await visibleToBob()).toBe(1);
      const [event] = await collect(store, head, (events) => events.length >= 1);
      expect(event).toMatchObject({ entity: 'job', op: 'updated', id, data: { access: true, status: 'PENDING' } });
      expect(await codeOf(store.setJobAccess(id, { visibility: 'PRIVATE', read: ['bob'], write: [], admin: [] }))).toBe('BAD_USER_INPUT');
      expect(await codeOf(store.setJobAccess('job_missing', { visibility: 'PUBLIC', read: [], write: [], admin: [] }))).toBe('NOT_FOUND');
    });
  });

  describe('claiming', () => {
    it('claims by priority, then runAt, then creation; future jobs wait', async () => {
      const now = Date.now();
      const [low, high, early, future] = await store.createJobs([
        job({ priority: 0, runAt: new Date(now - 1000) }),
        job({ priority: 10 }),
        job({ priority: 0, runAt: new Date(now - 5000) }),
        job({ priority: 100, runAt: new Date(now + 60_000) }),
      ]);
      const order: string[] = [];
      for (;;) {
        const claimed = await store.claimNext({ workerId: 'w1', leaseMs: 30_000 });
        if (claimed === null) break;
        order.push(claimed.id);
      }
      expect(order).toEqual([high?.value.id, early?.value.id, low?.value.id]);
      const later = await store.claimNext({ workerId: 'w1', leaseMs: 30_000, now: new Date(now + 61_000) });
      expect(later?.id).toBe(future?.value.id);
    });

    it('sets the lease, counts the attempt and bumps the fencing token', async () => {
      const [created] = await store.createJobs([job()]);
      const claimed = await store.claimNext({ workerId: 'w1', leaseMs: 30_000 });
      expect(claimed).toMatchObject({ id: created?.value.id, status: 'PROCESSING', attempts: 1, leaseToken: 1, leaseOwner: 'w1' });
      expect(claimed?.startedAt).toBeInstanceOf(Date);
      expect(claimed?.leaseUntil?.getTime()).toBeGreaterThan(Date.now() + 20_000);
      expect(await store.claimNext({ workerId: 'w2', leaseMs: 30_000 })).toBeNull();
    });

    it('claims only the listed types and never the excluded ones', async () => {
      await store.createJobs([job({ type: 'pdf' }), job({ type: 'session' })]);
      expect(await store.claimNext({ workerId: 'w', leaseMs: 1000, types: ['other'] })).toBeNull();
      expect((await store.claimNext({ workerId: 'w', leaseMs: 1000, excludeTypes: ['pdf'] }))?.type).toBe('session');
      expect((await store.claimNext({ workerId: 'w', leaseMs: 1000, types: ['pdf'] }))?.type).toBe('pdf');
    });

    it('skips paused batches and resumes them when reactivated', async () => {
      const { value } = await store.createBatch({
        name: 'paused',
        ownerId: 'alice',
        active: false,
        jobs: [{ type: 'noop', parameters: {}, maxAttempts: 1 }],
      });
      expect(value.batch.active).toBe(false);
      expect(await store.claimNext({ workerId: 'w', leaseMs: 1000 })).toBeNull();
      await store.setBatchActive(value.batch.id, true);
      expect((await store.claimNext({ workerId: 'w', leaseMs: 1000 }))?.batchId).toBe(value.batch.id);
      await store.createBatch({ name: 'second', ownerId: 'alice', jobs: [{ type: 'noop', parameters: {}, maxAttempts: 1 }] });
      const second = (await store.listBatches({}, { first: 1 })).items[0];
      await store.setBatchActive(second?.id as string, false);
      expect(await store.claimNext({ workerId: 'w', leaseMs: 1000 })).toBeNull();
    });
  });

  describe('fencing and leases', () => {
    it('refuses progress, completion and failure from a worker whose lease expired, and lets the job be claimed again', async () => {
      await store.createJobs([job()]);
      const first = (await store.claimNext({ workerId: 'w1', leaseMs: 20 })) as Job;
      await waitUntil(first.leaseUntil as Date);
      const stale = tokenOf(first);
      expect(await codeOf(store.updateProgress(stale, { percent: 50, step: null, message: null }))).toBe('LEASE_LOST');
      expect(await codeOf(store.complete(stale, {}))).toBe('LEASE_LOST');
      expect(await codeOf(store.fail(stale, { code: 'X', message: 'x', retriable: true, retryAt: new Date() }))).toBe('LEASE_LOST');
      expect(await codeOf(store.renewLease(stale, 1000))).toBe('LEASE_LOST');
      expect(await store.recoverExpiredLeases()).toBe(1);
      const [recovered] = await store.getJobs([first.id]);
      expect(recovered).toMatchObject({ status: 'PENDING', attempts: 1, leaseOwner: null });
      expect(recovered?.errors.map((e) => e.code)).toEqual(['LEASE_EXPIRED']);
      const second = (await store.claimNext({ workerId: 'w2', leaseMs: 30_000 })) as Job;
      expect(second).toMatchObject({ id: first.id, attempts: 2, leaseToken: 2 });
      // The first owner still cannot write, even though the job is PROCESSING again.
      expect(await codeOf(store.complete(stale, { from: 'w1' }))).toBe('LEASE_LOST');
      const done = await store.complete(tokenOf(second), { from: 'w2' });
      expect(done).toMatchObject({ status: 'COMPLETED', results: { from: 'w2' }, leaseOwner: null });
    });

    it('completes a job and claims the next one in one call, fenced like complete', async () => {
      const [first, second] = await store.createJobs([job({ priority: 2 }), job({ priority: 1 })]);
      const claimed = (await store.claimNext({ workerId: 'w1', leaseMs: 30_000 })) as Job;
      expect(claimed.id).toBe(first?.value.id);
      const { completed, next } = await store.completeAndClaim(tokenOf(claimed), { ok: true }, { workerId: 'w1', leaseMs: 30_000 });
      expect(completed).toMatchObject({ id: first?.value.id, status: 'COMPLETED', results: { ok: true } });
      expect(next).toMatchObject({ id: second?.value.id, status: 'PROCESSING', leaseOwner: 'w1', attempts: 1 });
      const last = await store.completeAndClaim(tokenOf(next as Job), null, { workerId: 'w1', leaseMs: 30_000 });
      expect(last.next).toBeNull();
      expect(await codeOf(store.completeAndClaim(tokenOf(claimed), null, { workerId: 'w1', leaseMs: 30_000 }))).toBe('LEASE_LOST');
      expect(await store.countJobs({ status: ['COMPLETED'] })).toBe(2);
    });

    it('renews a lease and reports a requested cancellation', async () => {
      await store.createJobs([job()]);
      const claimed = (await store.claimNext({ workerId: 'w1', leaseMs: 1000 })) as Job;
      const lease = await store.renewLease(tokenOf(claimed), 60_000);
      expect(lease.leaseUntil.getTime()).toBeGreaterThan(Date.now() + 50_000);
      expect(lease.cancelRequested).toBe(false);
      const cancelling = await store.cancelJob(claimed.id);
      expect(cancelling).toMatchObject({ status: 'PROCESSING', cancelRequested: true });
      expect((await store.renewLease(tokenOf(claimed), 60_000)).cancelRequested).toBe(true);
      const cancelled = await store.markCancelled(tokenOf(claimed));
      expect(cancelled).toMatchObject({ status: 'CANCELLED', cancelRequested: false });
    });

    it('fails a job whose lease expired on its last attempt', async () => {
      await store.createJobs([job({ maxAttempts: 1 })]);
      const claimed = (await store.claimNext({ workerId: 'w1', leaseMs: 10 })) as Job;
      await waitUntil(claimed.leaseUntil as Date);
      await store.recoverExpiredLeases();
      const [after] = await store.getJobs([claimed.id]);
      expect(after).toMatchObject({ status: 'FAILED', error: { code: 'LEASE_EXPIRED' } });
    });

    it('releases a running job back to PENDING with its attempt refunded', async () => {
      await store.createJobs([job()]);
      const claimed = (await store.claimNext({ workerId: 'w1', leaseMs: 30_000 })) as Job;
      const released = await store.release(tokenOf(claimed));
      expect(released).toMatchObject({ status: 'PENDING', attempts: 0, leaseOwner: null });
      const again = (await store.claimNext({ workerId: 'w2', leaseMs: 30_000 })) as Job;
      expect(again.leaseToken).toBe(2);
      expect(await codeOf(store.complete(tokenOf(claimed), null))).toBe('LEASE_LOST');
    });
  });

  describe('retries, cancellation, restart and delete', () => {
    it('retries at retryAt, stops at maxAttempts, and fails at once on a permanent error', async () => {
      const [created] = await store.createJobs([job({ maxAttempts: 2 })]);
      const id = created?.value.id as string;
      const c1 = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      const retryAt = new Date(Date.now() + 60_000);
      const r1 = await store.fail(tokenOf(c1), { code: 'E1', message: 'first', retriable: true, retryAt });
      expect(r1).toMatchObject({ status: 'PENDING', error: { code: 'E1', attempt: 1 } });
      expect(r1.runAt.getTime()).toBe(retryAt.getTime());
      expect(await store.claimNext({ workerId: 'w', leaseMs: 30_000 })).toBeNull();
      const c2 = (await store.claimNext({ workerId: 'w', leaseMs: 30_000, now: new Date(retryAt.getTime() + 1) })) as Job;
      const r2 = await store.fail(tokenOf(c2), { code: 'E2', message: 'second', retriable: true, retryAt: new Date() });
      expect(r2).toMatchObject({ status: 'FAILED', attempts: 2 });
      expect(r2.errors.map((e) => e.code)).toEqual(['E1', 'E2']);
      expect(r2.finishedAt).toBeInstanceOf(Date);

      const [perm] = await store.createJobs([job({ maxAttempts: 5 })]);
      const c3 = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      expect(c3.id).toBe(perm?.value.id);
      const r3 = await store.fail(tokenOf(c3), { code: 'BAD_PDF', message: 'corrupt', retriable: false, retryAt: new Date() });
      expect(r3).toMatchObject({ status: 'FAILED', attempts: 1, error: { retriable: false } });
      expect(id).not.toBe(c3.id);
    });

    it('cancels pending jobs at once and refuses illegal transitions', async () => {
      const [created] = await store.createJobs([job()]);
      const id = created?.value.id as string;
      expect((await store.cancelJob(id)).status).toBe('CANCELLED');
      expect(await codeOf(store.cancelJob(id))).toBe('ILLEGAL_TRANSITION');
      expect(await store.claimNext({ workerId: 'w', leaseMs: 1000 })).toBeNull();
      const restarted = await store.restartJob(id);
      expect(restarted).toMatchObject({ status: 'PENDING', attempts: 0, finishedAt: null });
      expect(await codeOf(store.restartJob(id))).toBe('ILLEGAL_TRANSITION');
      expect(await codeOf(store.cancelJob('job_missing'))).toBe('NOT_FOUND');
    });

    it('restarts a failed job with a fresh attempt budget', async () => {
      await store.createJobs([job({ maxAttempts: 1 })]);
      const c1 = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.fail(tokenOf(c1), { code: 'E', message: 'e', retriable: true, retryAt: new Date() });
      const restarted = await store.restartJob(c1.id);
      expect(restarted).toMatchObject({ status: 'PENDING', attempts: 0, error: null });
      const c2 = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      expect(c2).toMatchObject({ attempts: 1, leaseToken: 2 });
    });

    it('deletes jobs that are not running, with their logs', async () => {
      const [a, b] = await store.createJobs([job(), job()]);
      const claimed = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.appendLogs(tokenOf(claimed), [{ level: 'info', message: 'hello' }]);
      expect(await codeOf(store.deleteJob(claimed.id))).toBe('CONFLICT');
      await store.complete(tokenOf(claimed), null);
      await store.deleteJob(claimed.id);
      expect(await store.listLogs(claimed.id, null, 10)).toEqual([]);
      const other = claimed.id === a?.value.id ? b : a;
      await store.deleteJob(other?.value.id as string);
      expect(await store.countJobs({})).toBe(0);
      expect(await codeOf(store.deleteJob(claimed.id))).toBe('NOT_FOUND');
    });

    it('records progress and logs for the current owner', async () => {
      await store.createJobs([job()]);
      const claimed = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.updateProgress(tokenOf(claimed), { percent: 140, step: 'pages', message: '3 of 4' });
      await store.appendLogs(tokenOf(claimed), [
        { level: 'info', message: 'one' },
        { level: 'warn', message: 'two' },
      ]);
      const [after] = await store.getJobs([claimed.id]);
      expect(after?.progress).toMatchObject({ percent: 100, step: 'pages', message: '3 of 4' });
      const logs = await store.listLogs(claimed.id, null, 10);
      expect(logs.map((l) => [l.level, l.message, l.attempt])).toEqual([
        ['info', 'one', 1],
        ['warn', 'two', 1],
      ]);
      expect(await store.listLogs(claimed.id, logs[0]?.seq as number, 10)).toHaveLength(1);
    });
  });

  describe('batches', () => {
    it('creates a batch and its jobs atomically with exact counts', async () => {
      const jobs: NewBatchJob[] = Array.from({ length: 50 }, (_, i) => ({ type: 'noop', parameters: { i }, maxAttempts: 1 }));
      const { value } = await store.createBatch({ name: 'Track A', ownerId: 'alice', teamIds: ['red'], jobs });
      expect(value.jobs).toHaveLength(50);
      expect(value.batch).toMatchObject({ status: 'PENDING', counts: { total: 50, pending: 50 }, active: true, archived: false });
      expect(value.jobs.every((j) => j.batchId === value.batch.id && j.teamIds[0] === 'red')).toBe(true);
      expect(await store.countJobs({ batchId: value.batch.id, status: ['PENDING'] })).toBe(50);

      jobs[49] = { type: '', parameters: {}, maxAttempts: 1 };
      const error = await store.createBatch({ name: 'bad', ownerId: 'alice', jobs }).catch((e: unknown) => e);
      expect((error as AppError).message).toContain('jobs[49].type');
      expect((await store.listBatches({}, { first: 10 })).items).toHaveLength(1);
      expect(await codeOf(store.createBatch({ name: 'empty', ownerId: 'alice', jobs: [] }))).toBe('BAD_USER_INPUT');
    });

    it('keeps counts and derived status exact through every transition', async () => {
      const { value } = await store.createBatch({
        name: 'mix',
        ownerId: 'alice',
        jobs: Array.from({ length: 3 }, () => ({ type: 'noop', parameters: {}, maxAttempts: 1 })),
      });
      const id = value.batch.id;
      const batch = async () => (await store.getBatches([id]))[0];
      const c1 = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      expect((await batch())?.counts).toMatchObject({ pending: 2, processing: 1 });
      expect((await batch())?.status).toBe('PROCESSING');
      await store.complete(tokenOf(c1), null);
      const c2 = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.fail(tokenOf(c2), { code: 'E', message: 'e', retriable: false, retryAt: null });
      const c3 = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.complete(tokenOf(c3), null);
      const done = await batch();
      expect(done).toMatchObject({ status: 'PARTIAL', counts: { total: 3, pending: 0, processing: 0, completed: 2, failed: 1 } });
      expect(done?.finishedAt).toBeInstanceOf(Date);
      const restarted = await store.restartBatch(id, true);
      expect(restarted).toMatchObject({ status: 'PROCESSING', counts: { pending: 1, completed: 2, failed: 0 }, finishedAt: null });
      const cancelled = await store.cancelBatch(id);
      expect(cancelled).toMatchObject({ status: 'PARTIAL', counts: { completed: 2, cancelled: 1 } });
      const all = await store.restartBatch(id, false);
      expect(all.counts).toMatchObject({ pending: 3, completed: 0, cancelled: 0 });
      expect(all.status).toBe('PENDING');
    });

    it('archives, refuses to delete while running, deletes with its jobs', async () => {
      const { value } = await store.createBatch({ name: 'x', ownerId: 'alice', jobs: [{ type: 'noop', parameters: {}, maxAttempts: 1 }] });
      const archived = await store.archiveBatch(value.batch.id, true);
      expect(archived.archived).toBe(true);
      expect((await store.listBatches({ archived: false }, { first: 10 })).items).toHaveLength(0);
      expect((await store.listBatches({ archived: true }, { first: 10 })).items).toHaveLength(1);
      expect(await store.countBatches({ archived: true })).toBe(1);
      expect(await store.countBatches({ archived: false })).toBe(0);
      expect(await store.countBatches({ visibleTo: { userId: 'bob', teams: [], admin: false } })).toBe(0);
      const claimed = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      expect(await codeOf(store.deleteBatch(value.batch.id))).toBe('CONFLICT');
      await store.complete(tokenOf(claimed), null);
      await store.deleteBatch(value.batch.id);
      expect(await store.getBatches([value.batch.id])).toEqual([null]);
      expect(await store.countJobs({})).toBe(0);
    });

    it('returns the same batch for a repeated idempotency key', async () => {
      const input = { name: 'x', ownerId: 'alice', idempotencyKey: 'b1', jobs: [{ type: 'noop', parameters: {}, maxAttempts: 1 }] };
      const first = await store.createBatch(input);
      const again = await store.createBatch(input);
      expect(again.created).toBe(false);
      expect(again.value.batch.id).toBe(first.value.batch.id);
      expect(again.value.jobs.map((j) => j.id)).toEqual(first.value.jobs.map((j) => j.id));
      expect(await codeOf(store.createBatch({ ...input, name: 'y' }))).toBe('CONFLICT');
    });
  });

  describe('webhook outbox', () => {
    it('writes a delivery with the terminal state, and batch.completed with the last job', async () => {
      const webhook = { url: 'https://example.test/hook', events: ['job.completed', 'batch.completed'] };
      const { value } = await store.createBatch({
        name: 'hooks',
        ownerId: 'alice',
        webhook,
        jobs: [
          { type: 'noop', parameters: {}, maxAttempts: 1, webhook },
          { type: 'noop', parameters: {}, maxAttempts: 1, webhook },
        ],
      });
      const c1 = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.complete(tokenOf(c1), { pages: 3 });
      const forJob = await store.listDeliveries({ jobId: c1.id });
      expect(forJob).toHaveLength(1);
      expect(forJob[0]).toMatchObject({ event: 'job.completed', status: 'PENDING' });
      expect(forJob[0]?.payload).toMatchObject({
        type: 'job.completed',
        jobId: c1.id,
        status: 'COMPLETED',
        data: { results: { pages: 3 } },
      });
      expect(forJob[0]?.payload.id).toBe(forJob[0]?.id);
      const c2 = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.fail(tokenOf(c2), { code: 'E', message: 'e', retriable: false, retryAt: null });
      expect(await store.listDeliveries({ jobId: c2.id })).toHaveLength(0); // job.failed not subscribed
      const forBatch = (await store.listDeliveries({ batchId: value.batch.id })).filter((d) => d.event === 'batch.completed');
      expect(forBatch).toHaveLength(1);
      expect(forBatch[0]?.payload).toMatchObject({ status: 'PARTIAL', data: { counts: { completed: 1, failed: 1 } } });
    });

    it('claims due deliveries with a lease, records attempts and replays dead letters', async () => {
      const [created] = await store.createJobs([job({ webhook: { url: 'https://example.test/hook' } })]);
      const claimed = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.complete(tokenOf(claimed), null);
      const [delivery] = await store.claimDeliveries('d1', 10, 30_000);
      expect(delivery).toMatchObject({ jobId: created?.value.id, status: 'SENDING', leaseOwner: 'd1' });
      expect(await store.claimDeliveries('d2', 10, 30_000)).toHaveLength(0);
      const attempt = { at: new Date(), statusCode: 503, durationMs: 12, error: null, responseSnippet: 'busy' };
      const retry = new Date(Date.now() + 60_000);
      const pending = await store.recordDeliveryAttempt(delivery?.id as string, 'd1', { attempt, status: 'PENDING', nextAttemptAt: retry });
      expect(pending).toMatchObject({ status: 'PENDING', leaseOwner: null });
      expect(pending.attempts).toHaveLength(1);
      expect(await codeOf(store.recordDeliveryAttempt(delivery?.id as string, 'd1', { attempt, status: 'DELIVERED' }))).toBe('LEASE_LOST');
      expect(await store.claimDeliveries('d1', 10, 30_000)).toHaveLength(0);
      const [again] = await store.claimDeliveries('d1', 10, 30_000, new Date(retry.getTime() + 1));
      const dead = await store.recordDeliveryAttempt(again?.id as string, 'd1', { attempt, status: 'FAILED' });
      expect(dead.status).toBe('FAILED');
      expect(dead.attempts).toHaveLength(2);
      const replay = await store.redeliver(dead.id);
      expect(replay.status).toBe('PENDING');
      expect(await codeOf(store.redeliver(dead.id))).toBe('CONFLICT');
      expect(await store.getDelivery(dead.id)).toMatchObject({ id: dead.id, status: 'PENDING', attempts: dead.attempts });
      expect(await store.getDelivery('dlv_missing')).toBeNull();
    });

    it('releases claimed deliveries that were never sent, only for the worker holding them', async () => {
      await store.createJobs([1, 2].map((n) => job({ parameters: { n }, webhook: { url: 'https://example.test/hook' } })));
      for (let i = 0; i < 2; i++) {
        const claimed = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
        await store.complete(tokenOf(claimed), null);
      }
      const [a, b] = (await store.claimDeliveries('d1', 2, 30_000)) as [Delivery, Delivery];
      expect(await store.releaseDeliveries('d2', [a.id, b.id])).toBe(0);
      expect(await store.releaseDeliveries('d1', [a.id])).toBe(1);
      expect(await store.getDelivery(a.id)).toMatchObject({ status: 'PENDING', leaseOwner: null, leaseUntil: null, attempts: [] });
      expect(await store.getDelivery(b.id)).toMatchObject({ status: 'SENDING', leaseOwner: 'd1' });
      expect((await store.claimDeliveries('d2', 10, 30_000)).map((d) => d.id)).toEqual([a.id]);
      expect(await store.releaseDeliveries('d1', [])).toBe(0);
    });

    it('does not claim deliveries to a URL that answered 410 for the same batch; records them DISABLED', async () => {
      const webhook = { url: 'https://example.test/gone', events: ['job.completed'] };
      const { value } = await store.createBatch({
        name: 'b',
        ownerId: 'alice',
        webhook,
        jobs: [1, 2].map((n) => ({ type: 'noop', parameters: { n }, maxAttempts: 1, webhook })),
      });
      for (let i = 0; i < 2; i++) {
        const claimed = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
        await store.complete(tokenOf(claimed), null);
      }
      const [first] = await store.claimDeliveries('d1', 1, 30_000);
      const attempt = { at: new Date(), statusCode: 410, durationMs: 2, error: 'HTTP_410', responseSnippet: 'gone' };
      await store.recordDeliveryAttempt(first?.id as string, 'd1', { attempt, status: 'DISABLED' });
      expect(await store.claimDeliveries('d1', 10, 30_000)).toEqual([]);
      const all = await store.listDeliveries({ batchId: value.batch.id });
      expect(all.map((d) => d.status).sort()).toEqual(['DISABLED', 'DISABLED']);
      const skipped = all.find((d) => d.id !== first?.id);
      expect(skipped?.attempts).toEqual([expect.objectContaining({ error: 'ENDPOINT_DISABLED', statusCode: null })]);
      expect(await store.listDeliveries({ batchId: value.batch.id, status: 'DISABLED' })).toHaveLength(2);
    });

    it('records several attempts and claims more in one call, refusing records without the lease', async () => {
      const created = await store.createJobs(
        [1, 2, 3].map((n) => job({ parameters: { n }, webhook: { url: 'https://example.test/hook' } })),
      );
      for (let i = 0; i < 3; i++) {
        const claimed = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
        await store.complete(tokenOf(claimed), null);
      }
      const [a, b] = (await store.claimDeliveries('d1', 2, 30_000)) as [Delivery, Delivery];
      const all = (await Promise.all(created.map((c) => store.listDeliveries({ jobId: c.value.id })))).flat();
      const c = all.find((d) => d.id !== a.id && d.id !== b.id) as Delivery;
      expect(c.status).toBe('PENDING');
      const attempt = { at: new Date(), statusCode: 200, durationMs: 3, error: null, responseSnippet: 'ok' };
      const { recorded, claimed } = await store.recordDeliveryAttempts(
        'd1',
        [
          { id: a.id, outcome: { attempt, status: 'DELIVERED' }, claimed: a },
          // d1 never claimed c: its record is refused, the others still count.
          { id: c.id, outcome: { attempt, status: 'DELIVERED' }, claimed: c },
        ],
        { limit: 5, leaseMs: 30_000 },
      );
      expect(recorded[0]).toMatchObject({ id: a.id, status: 'DELIVERED', attempts: [{ statusCode: 200 }] });
      expect((recorded[1] as AppError).code).toBe('LEASE_LOST');
      expect(claimed.map((d) => [d.id, d.status, d.leaseOwner])).toEqual([[c.id, 'SENDING', 'd1']]);
      expect(await store.getDelivery(a.id)).toMatchObject({ status: 'DELIVERED', leaseOwner: null });
      expect(await store.getDelivery(b.id)).toMatchObject({ status: 'SENDING', leaseOwner: 'd1' });
    });
  });

  describe('change feed', () => {
    it('replays exactly the changes after a cursor, in order, then continues live', async () => {
      const [a] = await store.createJobs([job()]);
      const cursor = await store.headCursor();
      expect(cursor).not.toBeNull();
      await store.createJobs([job(), job()]);
      const claimed = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      expect(claimed.id).toBe(a?.value.id);
      const events = await collect(
        store,
        cursor,
        (seen) => seen.some((e) => e.status === 'COMPLETED'),
        async () => {
          await store.complete(tokenOf(claimed), null);
        },
      );
      expect(events.map((e) => [e.entity, e.op, e.status])).toEqual([
        ['job', 'created', 'PENDING'],
        ['job', 'created', 'PENDING'],
        ['job', 'updated', 'PROCESSING'],
        ['job', 'updated', 'COMPLETED'],
      ]);
      expect(events.every((e) => e.cursor !== cursor)).toBe(true);
      const resumed = await collect(store, events[1]?.cursor as string, (seen) => seen.length >= 2);
      expect(resumed.map((e) => e.cursor)).toEqual(events.slice(2).map((e) => e.cursor));
    });

    it('carries every intermediate batch count, so a subscriber sees each state', async () => {
      const { value } = await store.createBatch({
        name: 'b',
        ownerId: 'alice',
        jobs: Array.from({ length: 3 }, () => ({ type: 'noop', parameters: {}, maxAttempts: 1 })),
      });
      const start = await store.headCursor();
      for (let i = 0; i < 3; i++) {
        const claimed = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
        await store.complete(tokenOf(claimed), null);
      }
      const events = await collect(store, start, (seen) => seen.filter((e) => e.entity === 'batch').length === 6);
      const completed = events
        .filter((e) => e.entity === 'batch')
        .map((e) => (e.data as { counts: { completed: number } }).counts.completed);
      expect(completed).toEqual([0, 1, 1, 2, 2, 3]);
      expect(events.filter((e) => e.entity === 'batch').at(-1)).toMatchObject({ id: value.batch.id, status: 'COMPLETED' });
    });

    it('starts live from now without an after cursor, and fans out to several subscribers', async () => {
      const [before] = await store.createJobs([job()]);
      const reference = record(store, null);
      const watchers = [recordWatch(store), recordWatch(store)];
      await untilLive(store, reference, watchers);
      const [late] = await store.createJobs([job({ type: 'late' })]);
      for (const watcher of watchers) {
        await watcher.until((ids) => ids.includes(late?.value.id as string));
        expect(watcher.ids()).not.toContain(before?.value.id);
        // Live from some point on: exactly what the reference saw from there, in order.
        expect(reference.ids().slice(-watcher.ids().length)).toEqual(watcher.ids());
        watcher.stop();
      }
      reference.stop();
      expect([reference, ...watchers].flatMap((r) => r.errors)).toEqual([]);
    });

    it('listen: null replays from the oldest change, undefined starts now, stop() ends the calls', async () => {
      const [old] = await store.createJobs([job({ type: 'old' })]);
      // Started together, with nobody listening: both restart the live tail.
      const fromStart = record(store, null);
      const fromNow = record(store, undefined);
      await fromStart.until((ids) => ids.length === 1);
      await untilLive(store, fromStart, [fromNow]);
      const [fresh] = await store.createJobs([job({ type: 'new' })]);
      await fromNow.until((ids) => ids.includes(fresh?.value.id as string));
      await fromStart.until((ids) => ids.includes(fresh?.value.id as string));
      fromStart.stop();
      fromNow.stop();
      const [late] = await store.createJobs([job({ type: 'late' })]);
      // Another listener sees the late job; the stopped ones do not.
      const after = record(store, null);
      await after.until((ids) => ids.includes(late?.value.id as string));
      after.stop();
      const start = fromStart.ids();
      expect(start[0]).toBe(old?.value.id);
      expect(start.at(-1)).toBe(fresh?.value.id);
      expect(after.ids().slice(0, start.length)).toEqual(start);
      expect(fromNow.ids()).not.toContain(old?.value.id);
      expect(start.slice(-fromNow.ids().length)).toEqual(fromNow.ids());
      expect([...start, ...fromNow.ids()]).not.toContain(late?.value.id);
      expect([fromStart, fromNow, after].flatMap((r) => r.errors)).toEqual([]);
    });

    it('replays a long history after a cursor to its end with no later write to wait for', async () => {
      await store.createJobs([job()]);
      const cursor = await store.headCursor();
      const created = await store.createJobs(Array.from({ length: 1200 }, (_, n) => job({ parameters: { n } })));
      // Nothing is written during the replay: its last page must find the end by itself (within collect's 5 s).
      const events = await collect(store, cursor, (seen) => seen.length >= 1200);
      expect(events.map((e) => e.id)).toEqual(created.map((c) => c.value.id));
      expect(new Set(events.map((e) => e.cursor)).size).toBe(1200);
    });

    it('takes a cursor in either letter case, and refuses malformed ones with BAD_USER_INPUT', async () => {
      await store.createJobs([job()]);
      const cursor = await store.headCursor();
      await store.createJobs([job(), job(), job()]);
      const events = await collect(store, cursor, (seen) => seen.length >= 3);
      const second = events[0]?.cursor as string;
      for (const variant of [second[0] + second.slice(1).toUpperCase(), second[0] + second.slice(1).toLowerCase()]) {
        const resumed = await collect(store, variant, (seen) => seen.length >= 2);
        expect(resumed.map((e) => e.cursor)).toEqual(events.slice(1).map((e) => e.cursor));
      }
      for (const bad of ['garbage', '-1', '1.5', 'm', 'mzz', 'm82zz', `${second}g`]) {
        const iterator = store.watch({ after: bad })[Symbol.asyncIterator]();
        expect(await codeOf(iterator.next()), bad).toBe('BAD_USER_INPUT');
        const listened = recorder();
        store.listen(bad, { event: listened.push, error: listened.fail });
        await listened.recorder.until(() => listened.recorder.errors.length > 0);
        expect((listened.recorder.errors[0] as AppError).code, bad).toBe('BAD_USER_INPUT');
      }
    });

    it('expires cursors older than the retained history', async () => {
      await store.createJobs([job()]);
      const old = (await store.headCursor()) as string;
      await store.createJobs([job()]);
      await store.createJobs([job()]);
      const purge = await store.purge({ changesBefore: new Date(Date.now() + 1000) });
      // The newest change may be kept (it anchors the sequence); the one right after `old` is gone.
      expect(purge.changes).toBeGreaterThanOrEqual(2);
      const iterator = store.watch({ after: old })[Symbol.asyncIterator]();
      expect(await codeOf(iterator.next())).toBe('CURSOR_EXPIRED');
    });
  });

  describe('inbound webhooks', () => {
    it('keeps where an ingested job came from, filters by source, and deduplicates by delivery id', async () => {
      const ingest = { source: 'github', event: 'pull_request', deliveryId: 'd-1' };
      const [first] = await store.createJobs([job({ parameters: { action: 'opened' }, ingest, idempotencyKey: 'hook:github:d-1' })]);
      const [again] = await store.createJobs([job({ parameters: { action: 'opened' }, ingest, idempotencyKey: 'hook:github:d-1' })]);
      await store.createJobs([job(), job({ ingest: { source: 'gitlab', event: 'Push Hook', deliveryId: 'd-2' } })]);
      expect(again).toMatchObject({ created: false, value: { id: first?.value.id } });
      const [read] = await store.getJobs([first?.value.id as string]);
      expect(read?.ingest).toEqual(ingest);
      const page = await store.listJobs({ source: 'github' }, { first: 10 });
      expect(page.items.map((j) => j.id)).toEqual([first?.value.id]);
      expect(await store.countJobs({ source: 'gitlab' })).toBe(1);
      expect(await store.countJobs({})).toBe(3);
      const plain = (await store.listJobs({}, { first: 10 })).items.filter((j) => j.ingest === null);
      expect(plain).toHaveLength(1);
      expect(plain[0]?.ingest).toBeNull();
    });

    it('adds up ingest counters per source', async () => {
      expect(await store.ingestCounts()).toEqual(new Map());
      await store.addIngestCounts(
        new Map([
          ['github', { received: 3, verified: 2, rejected: 1, accepted: 1, duplicate: 1 }],
          ['token', { received: 1, verified: 1, ignored: 1 }],
        ]),
      );
      await store.addIngestCounts(new Map([['github', { received: 1, verified: 1, accepted: 1 }]]));
      await store.addIngestCounts(new Map());
      const counts = await store.ingestCounts();
      expect(counts.get('github')).toEqual({ received: 4, verified: 3, rejected: 1, accepted: 2, duplicate: 1, ignored: 0 });
      expect(counts.get('token')).toEqual({ received: 1, verified: 1, rejected: 0, accepted: 0, duplicate: 0, ignored: 1 });
    });
  });

  describe('stats and retention', () => {
    it('counts by status, type and track, and measures last hour', async () => {
      await store.createJobs([
        job({ type: 'pdf', parameters: { track: 'ai' } }),
        job({ type: 'pdf', parameters: { track: 'web' } }),
        job({ type: 'session', parameters: { track: 'ai' } }),
      ]);
      const claimed = (await store.claimNext({ workerId: 'w', leaseMs: 30_000, types: ['session'] })) as Job;
      await store.complete(tokenOf(claimed), null);
      const stats = await store.stats({});
      expect(stats.byStatus).toMatchObject({ PENDING: 2, COMPLETED: 1, PROCESSING: 0 });
      expect(stats.byType).toEqual(
        expect.arrayContaining([
          { key: 'pdf', status: 'PENDING', count: 2 },
          { key: 'session', status: 'COMPLETED', count: 1 },
        ]),
      );
      expect(stats.byTrack).toEqual(
        expect.arrayContaining([
          { key: 'ai', status: 'PENDING', count: 1 },
          { key: 'ai', status: 'COMPLETED', count: 1 },
        ]),
      );
      expect(stats.queueDepth).toBe(2);
      expect(stats.finishedLastHour).toBe(1);
      expect(stats.p95DurationMs).not.toBeNull();
      expect((await store.stats({ type: 'pdf' })).byStatus.PENDING).toBe(2);
    });

    it('purges completed and failed jobs by their own cutoffs and keeps jobs of archived batches', async () => {
      const kept = await store.createBatch({ name: 'kept', ownerId: 'alice', jobs: [{ type: 'noop', parameters: {}, maxAttempts: 1 }] });
      const inArchived = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      expect(inArchived.batchId).toBe(kept.value.batch.id);
      await store.complete(tokenOf(inArchived), null);
      await store.createJobs([job(), job()]);
      const done = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.complete(tokenOf(done), null);
      const failed = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.fail(tokenOf(failed), { code: 'E', message: 'e', retriable: false, retryAt: null });
      await store.archiveBatch(kept.value.batch.id, true);
      const future = new Date(Date.now() + 1000);
      const past = new Date(Date.now() - 60_000);
      // Only failed jobs are old enough: the completed one stays.
      const first = await store.purge({ completedBefore: past, failedBefore: future });
      expect(first).toMatchObject({ jobs: 1, jobIds: [failed.id] });
      const second = await store.purge({ completedBefore: future, failedBefore: future });
      expect(second.jobIds).toEqual([done.id]);
      expect(await store.getJobs([done.id, failed.id, inArchived.id])).toEqual([
        null,
        null,
        expect.objectContaining({ id: inArchived.id }),
      ]);
      expect(await store.countJobs({})).toBe(1);
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });

  describe('worker ids, usage, attempt reports and edits', () => {
    const usage = (tokens: number, costUsd: number, model: string) => ({
      tokens,
      inputTokens: tokens,
      outputTokens: 0,
      costUsd,
      models: [model],
    });

    it('keeps the worker of the last attempt, names it in errors, and sums usage over attempts', async () => {
      const [created] = await store.createJobs([job({ maxAttempts: 3, correlationId: 'order-42' })]);
      expect(created?.value).toMatchObject({ workerId: null, usage: null, correlationId: 'order-42' });
      const c1 = (await store.claimNext({ workerId: 'w1', leaseMs: 30_000 })) as Job;
      expect(c1.workerId).toBe('w1');
      const retried = await store.fail(tokenOf(c1), {
        code: 'DOWNLOAD_FAILED',
        message: 'GET answered 503',
        retriable: true,
        retryAt: new Date(),
        details: { status: 503, url: 'https://example.org/a.pdf' },
        usage: usage(10, 0.5, 'm1'),
        logs: [{ level: 'error', message: 'failed once' }],
      });
      expect(retried).toMatchObject({ status: 'PENDING', workerId: 'w1', leaseOwner: null });
      expect(retried.error).toMatchObject({ workerId: 'w1', details: { status: 503, url: 'https://example.org/a.pdf' } });
      const c2 = (await store.claimNext({ workerId: 'w2', leaseMs: 30_000 })) as Job;
      const done = await store.complete(
        tokenOf(c2),
        { ok: true },
        { usage: usage(5, 0.25, 'm2'), logs: [{ level: 'info', message: 'done' }] },
      );
      expect(done).toMatchObject({ status: 'COMPLETED', workerId: 'w2' });
      const [read] = await store.getJobs([c1.id]);
      expect(read).toMatchObject({ workerId: 'w2', correlationId: 'order-42' });
      expect(read?.usage).toEqual({ tokens: 15, inputTokens: 15, outputTokens: 0, costUsd: 0.75, models: ['m1', 'm2'] });
      expect(read?.errors[0]).toMatchObject({ workerId: 'w1', details: { status: 503 } });
      const logs = await store.listLogs(c1.id, null, 10);
      expect(logs.map((l) => [l.message, l.attempt])).toEqual([
        ['failed once', 1],
        ['done', 2],
      ]);
    });

    it('writes the logs of an attempt report without usage (the fast completion) and of a cancellation', async () => {
      await store.createJobs([job(), job()]);
      const a = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.complete(tokenOf(a), null, { logs: [{ level: 'info', message: 'completed in 3 ms' }] });
      expect((await store.listLogs(a.id, null, 10)).map((l) => l.message)).toEqual(['completed in 3 ms']);
      const b = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.cancelJob(b.id);
      const cancelled = await store.markCancelled(tokenOf(b), { logs: [{ level: 'warn', message: 'cancelled' }], usage: usage(1, 0, 'm') });
      expect(cancelled).toMatchObject({ status: 'CANCELLED', usage: { tokens: 1 } });
      expect((await store.listLogs(b.id, null, 10)).map((l) => l.message)).toEqual(['cancelled']);
    });

    it('writes a log line when it takes a job back from a worker whose lease ran out', async () => {
      await store.createJobs([job({ maxAttempts: 1 })]);
      const claimed = (await store.claimNext({ workerId: 'w-gone', leaseMs: 1 })) as Job;
      await waitUntil(claimed.leaseUntil as Date);
      expect(await store.recoverExpiredLeases()).toBe(1);
      const [failed] = await store.getJobs([claimed.id]);
      expect(failed).toMatchObject({ status: 'FAILED', error: { code: 'LEASE_EXPIRED', workerId: 'w-gone' } });
      const logs = await store.listLogs(claimed.id, null, 10);
      expect(logs.map((l) => l.message)).toEqual(['lease lost: worker w-gone stopped renewing (attempt 1 of 1); no attempts left, failed']);
    });

    it('filters jobs waiting for a retry', async () => {
      await store.createJobs([job(), job()]);
      const c = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.fail(tokenOf(c), { code: 'E', message: 'e', retriable: true, retryAt: new Date(Date.now() + 60_000) });
      expect((await store.listJobs({ retrying: true }, { first: 10 })).items.map((j) => j.id)).toEqual([c.id]);
      expect(await store.countJobs({ retrying: false })).toBe(1);
      await store.restartJob((await store.cancelJob(c.id)).id);
      expect(await store.countJobs({ retrying: true })).toBe(0);
    });

    it('changes a pending job and refuses once it runs', async () => {
      const [created] = await store.createJobs([job({ parameters: { track: 'ai' }, cacheKey: 'k1' })]);
      const id = created?.value.id as string;
      const runAt = new Date(Date.now() + 60_000);
      const changed = await collect(
        store,
        await store.headCursor(),
        (events) => events.some((e) => e.id === id && e.op === 'updated'),
        async () => {
          const edited = await store.updateJob(id, { priority: 7, runAt, maxAttempts: 5, parameters: { track: 'web' }, cacheKey: 'k2' });
          expect(edited).toMatchObject({ priority: 7, maxAttempts: 5, parameters: { track: 'web' }, track: 'web', cacheKey: 'k2' });
        },
      );
      expect(changed.some((e) => e.id === id)).toBe(true);
      const [read] = await store.getJobs([id]);
      expect(read).toMatchObject({ priority: 7, maxAttempts: 5, track: 'web', cacheKey: 'k2', version: 2 });
      expect(read?.runAt.getTime()).toBe(runAt.getTime());
      expect(await store.countJobs({ track: 'web' })).toBe(1);
      expect(await codeOf(store.updateJob(id, { maxAttempts: 0 }))).toBe('BAD_USER_INPUT');
      await store.updateJob(id, { runAt: new Date() });
      await store.claimNext({ workerId: 'w', leaseMs: 30_000 });
      expect(await codeOf(store.updateJob(id, { priority: 1 }))).toBe('CONFLICT');
      expect(await codeOf(store.updateJob('job_missing', { priority: 1 }))).toBe('NOT_FOUND');
    });

    it('keeps a batch summary (first start, last finish, tokens, cost) with its counts, and filters batches by status', async () => {
      const noop = { type: 'noop', parameters: {}, maxAttempts: 1 };
      const { value } = await store.createBatch({ name: 'b', ownerId: 'alice', jobs: [noop, noop] });
      await store.createBatch({ name: 'idle', ownerId: 'alice', jobs: [noop] });
      expect(value.batch.summary).toEqual({ firstStartedAt: null, lastFinishedAt: null, tokens: 0, costUsd: 0 });
      const a = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      expect(a.batchId).toBe(value.batch.id);
      await store.complete(tokenOf(a), null, { usage: usage(100, 0.5, 'm') });
      const b = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      expect(b.batchId).toBe(value.batch.id);
      const processing = await store.listBatches({ status: ['PROCESSING'] }, { first: 10 });
      expect(processing.items.map((x) => x.id)).toEqual([value.batch.id]);
      await store.fail(tokenOf(b), { code: 'E', message: 'e', retriable: false, retryAt: null, usage: usage(20, 0.1, 'm') });
      const [batch] = await store.getBatches([value.batch.id]);
      expect(batch?.summary).toMatchObject({ tokens: 120 });
      expect(batch?.summary.costUsd).toBeCloseTo(0.6);
      expect(batch?.summary.firstStartedAt).toBeInstanceOf(Date);
      expect(batch?.summary.lastFinishedAt?.getTime()).toBe(batch?.finishedAt?.getTime());
      expect(await store.countBatches({ status: ['PARTIAL'] })).toBe(1);
      expect(await store.countBatches({ status: ['PENDING', 'PROCESSING'] })).toBe(1);
    });
  });
}

for (const { title, adapter, skipped } of suites) describe.skipIf(skipped !== null)(title, () => contract(adapter));
