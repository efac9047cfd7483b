/**
 * The worker's batched store calls, on every engine (the same adapters as the contract
 * suite): a claim of several jobs in one unit of work (claim order, per-type caps and
 * paused batches exactly as one claim at a time), the group commit with one write fenced
 * out, and the renewal of several leases in one call.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/domain/types.js';
import { LeaseLostError } from '../../src/errors.js';
import type { ChangeEvent, ClaimRequest, ClaimToken, JobStore, QueueWrite } from '../../src/store/port.js';
import type { Store } from '../../src/store/store.js';
import { type AdapterUnderTest, storeSuites } from '../helpers/adapters.js';

const suites = await storeSuites();

const tokenOf = (job: Job): ClaimToken => ({ jobId: job.id, workerId: job.leaseOwner as string, leaseToken: job.leaseToken });
const webhook = { url: 'https://example.test/hook', events: ['job.completed', 'job.failed', 'batch.completed'] };

/** Every change after `after`, up to the head now. */
async function changesSince(store: JobStore, after: string | null): Promise<ChangeEvent[]> {
  const head = await store.headCursor();
  const seen: ChangeEvent[] = [];
  if (head === null || head === after) return seen;
  const controller = new AbortController();
  for await (const event of store.watch({ after, signal: controller.signal })) {
    seen.push(event);
    if (event.cursor === head) controller.abort();
  }
  return seen;
}

/** Counts the units of work (transactions) the store's engine runs from now on. */
function countUnits(store: JobStore): () => number {
  const engine = (store as Store).engine;
  const unit = engine.unit.bind(engine);
  let count = 0;
  engine.unit = (work) => {
    count++;
    return unit(work);
  };
  return () => count;
}

function batching(adapter: AdapterUnderTest): void {
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

  async function submit(specs: { type: string; priority?: number }[]): Promise<string[]> {
    const created = await store.createJobs(
      specs.map((spec, n) => ({ type: spec.type, parameters: { n }, maxAttempts: 1, ownerId: 'alice', priority: spec.priority ?? 0 })),
    );
    return created.map((c) => c.value.id);
  }

  it('claims several jobs in one call in the claim order, skipping paused batches', async () => {
    const paused = await store.createBatch({
      name: 'paused',
      ownerId: 'alice',
      active: false,
      jobs: [1, 2, 3].map((n) => ({ type: 'noop', parameters: { n }, maxAttempts: 1, priority: 10 })),
    });
    const [low, high, mid, other] = await submit([
      { type: 'noop' },
      { type: 'noop', priority: 5 },
      { type: 'noop', priority: 2 },
      { type: 'noop' },
    ]);
    const claimed = await store.claim({ workerId: 'w', leaseMs: 30_000 }, 10);
    // The paused batch's jobs come first in the claim order, but are not claimable.
    expect(claimed.map((j) => j.id)).toEqual([high, mid, low, other]);
    expect(claimed.every((j) => j.status === 'PROCESSING' && j.leaseOwner === 'w' && j.attempts === 1)).toBe(true);
    expect(await store.claim({ workerId: 'w', leaseMs: 30_000 }, 10)).toEqual([]);
    await store.setBatchActive(paused.value.batch.id, true);
    const resumed = await store.claim({ workerId: 'w', leaseMs: 30_000 }, 2);
    expect(resumed.map((j) => j.batchId)).toEqual([paused.value.batch.id, paused.value.batch.id]);
    const [batch] = await store.getBatches([paused.value.batch.id]);
    expect(batch?.counts).toMatchObject({ total: 3, pending: 1, processing: 2 });
  });

  it('takes no more jobs of a type than its cap, in the same order as claiming one at a time', async () => {
    const specs = ['slow', 'slow', 'fast', 'slow', 'fast', 'slow', 'fast', 'fast', 'slow', 'fast'].map((type) => ({ type }));
    const ids = await submit(specs);
    const request: ClaimRequest = { workerId: 'w', leaseMs: 30_000, types: ['slow', 'fast'], caps: { slow: 2 } };
    const claimed = await store.claim(request, 6);
    // One at a time: slow, slow, (slow capped) fast, fast, fast, fast.
    const expected = [ids[0], ids[1], ids[2], ids[4], ids[6], ids[7]];
    expect(claimed.map((j) => j.id)).toEqual(expected);
    expect(claimed.filter((j) => j.type === 'slow')).toHaveLength(2);
    // A cap of zero leaves the type out altogether.
    const none = await store.claim({ ...request, types: ['slow'], caps: { slow: 0 } }, 5);
    expect(none).toEqual([]);
    const rest = await store.claim({ ...request, caps: { slow: 1 } }, 5);
    expect(rest.map((j) => j.id)).toEqual([ids[3], ids[9]]);
  });

  it('group-commits outcomes: a write with a stale token is refused alone, the others commit with their effects', async () => {
    const { value } = await store.createBatch({
      name: 'group',
      ownerId: 'alice',
      webhook,
      jobs: [1, 2, 3].map((n) => ({ type: 'noop', parameters: { n }, maxAttempts: 1, webhook })),
    });
    const [a, b, c] = await store.claim({ workerId: 'w1', leaseMs: 30_000 }, 3);
    if (a === undefined || b === undefined || c === undefined) throw new Error('expected three claims');
    // b changes hands: given back, then claimed by another worker; w1's token for it is stale.
    await store.release(tokenOf(b));
    const taken = (await store.claimNext({ workerId: 'w2', leaseMs: 30_000 })) as Job;
    expect(taken.id).toBe(b.id);
    const cursor = await store.headCursor();

    const writes: QueueWrite[] = [
      { kind: 'progress', token: tokenOf(a), progress: { percent: 50, step: 'half', message: null } },
      { kind: 'complete', token: tokenOf(a), results: { ok: 'a' }, report: { logs: [{ level: 'info', message: 'a done' }] } },
      { kind: 'complete', token: tokenOf(b), results: { ok: 'b' }, report: { logs: [{ level: 'info', message: 'b done' }] } },
      { kind: 'fail', token: tokenOf(c), failure: { code: 'BAD', message: 'c failed', retriable: false, retryAt: null } },
      // After its completion in the same group, a's token no longer holds the job.
      { kind: 'logs', token: tokenOf(a), entries: [{ level: 'info', message: 'too late' }] },
    ];
    const units = countUnits(store);
    const { written, claimed } = await store.commitWrites(writes, null);
    expect(claimed).toEqual([]);
    // One transaction (and, where batch counts are deferred, one to apply them), not one per write.
    expect(units()).toBe((store as Store).engine.deferBatchCounts ? 2 : 1);
    expect(written.map((w) => (w instanceof Error ? (w as LeaseLostError).code : (w as Job).status))).toEqual([
      'PROCESSING',
      'COMPLETED',
      'LEASE_LOST',
      'FAILED',
      'LEASE_LOST',
    ]);
    expect(written[2]).toBeInstanceOf(LeaseLostError);

    const [afterA, afterB, afterC] = (await store.getJobs([a.id, b.id, c.id])) as Job[];
    expect(afterA).toMatchObject({ status: 'COMPLETED', results: { ok: 'a' }, progress: { percent: 50, step: 'half' } });
    expect(afterB).toMatchObject({ status: 'PROCESSING', leaseOwner: 'w2', results: null });
    expect(afterC).toMatchObject({ status: 'FAILED', error: { code: 'BAD' } });
    expect((await store.listLogs(a.id, null, 10)).map((l) => l.message)).toEqual(['a done']);
    expect(await store.listLogs(b.id, null, 10)).toEqual([]);

    // Counts, outbox records and change events of the two that committed, none of the refused one.
    const [batch] = await store.getBatches([value.batch.id]);
    expect(batch?.counts).toMatchObject({ total: 3, processing: 1, completed: 1, failed: 1 });
    const deliveries = await store.listDeliveries({ batchId: value.batch.id });
    expect(deliveries.map((d) => [d.jobId, d.event]).sort()).toEqual(
      [
        [a.id, 'job.completed'],
        [c.id, 'job.failed'],
      ].sort(),
    );
    const events = await changesSince(store, cursor);
    const jobEvents = events.filter((e) => e.entity === 'job').map((e) => [e.id, e.op, e.status]);
    expect(jobEvents).toEqual([
      [a.id, 'updated', 'PROCESSING'],
      [a.id, 'updated', 'COMPLETED'],
      [c.id, 'updated', 'FAILED'],
    ]);
    // The completion's change announces its log line by the number it was stored under; the refused line is nowhere.
    const [aLog] = await store.listLogs(a.id, null, 10);
    const completion = events.find((e) => e.id === a.id && e.status === 'COMPLETED');
    expect(completion?.data?.logSeqs).toEqual([aLog?.seq]);
    expect(events.filter((e) => e.op === 'logged')).toEqual([]);
    expect(events.filter((e) => e.entity === 'delivery')).toHaveLength(2);
    expect(events.filter((e) => e.entity === 'batch').at(-1)?.data).toMatchObject({ counts: { completed: 1, failed: 1, processing: 1 } });

    // The job that changed hands finishes its batch from its new owner.
    await store.complete(tokenOf(taken), { ok: 'b2' });
    const [done] = await store.getBatches([value.batch.id]);
    expect(done?.status).toBe('PARTIAL');
    expect((await store.listDeliveries({ batchId: value.batch.id })).filter((d) => d.event === 'batch.completed')).toHaveLength(1);
  });

  it('claims the next jobs in the same group commit, at most the limit asked', async () => {
    const ids = await submit(Array.from({ length: 6 }, () => ({ type: 'noop' })));
    const first = await store.claim({ workerId: 'w', leaseMs: 30_000 }, 2);
    const { written, claimed } = await store.commitWrites(
      first.map((job) => ({ kind: 'complete', token: tokenOf(job), results: null })),
      { request: { workerId: 'w', leaseMs: 30_000 }, limit: 3 },
    );
    expect(written.map((w) => (w as Job).status)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(claimed.map((j) => j.id)).toEqual(ids.slice(2, 5));
  });

  it('renews several leases in one call; a lease no longer held is refused alone, and no change event is written', async () => {
    await submit([{ type: 'noop' }, { type: 'noop' }, { type: 'noop' }]);
    const [a, b, c] = await store.claim({ workerId: 'w1', leaseMs: 5000 }, 3);
    if (a === undefined || b === undefined || c === undefined) throw new Error('expected three claims');
    await store.cancelJob(c.id);
    await store.release(tokenOf(b));
    const cursor = await store.headCursor();
    const leases = await store.renewLeases([tokenOf(a), tokenOf(b), tokenOf(c)], 600_000);
    expect(leases[1]).toBeInstanceOf(LeaseLostError);
    const [leaseA, , leaseC] = leases as { leaseUntil: Date; cancelRequested: boolean }[];
    expect(leaseA?.cancelRequested).toBe(false);
    expect(leaseC?.cancelRequested).toBe(true);
    const [afterA, afterB, afterC] = (await store.getJobs([a.id, b.id, c.id])) as Job[];
    expect(afterA?.leaseUntil?.getTime()).toBe(leaseA?.leaseUntil.getTime());
    expect(afterA?.leaseUntil?.getTime()).toBeGreaterThan((a.leaseUntil as Date).getTime() + 500_000);
    expect(afterC?.leaseUntil?.getTime()).toBe(leaseC?.leaseUntil.getTime());
    expect(afterA?.version).toBe(a.version + 1);
    expect(afterB).toMatchObject({ status: 'PENDING', leaseUntil: null });
    expect(await store.headCursor()).toBe(cursor);
  });
}

for (const suite of suites) {
  describe.skipIf(suite.skipped !== null)(suite.title.replace('store contract', 'queue batching'), () => batching(suite.adapter));
}
