/**
 * The store operations that span several units of work, on every engine (the same
 * adapters as the contract suite): batch control in chunks behind a hold, and retention
 * that checks each candidate again inside its delete.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/domain/types.js';
import type { AppError } from '../../src/errors.js';
import { CHUNK } from '../../src/store/operations/batch-control.js';
import { moveInBatch } from '../../src/store/operations/commit.js';
import { deleteExpired } from '../../src/store/operations/retention.js';
import type { ClaimToken, NewBatchJob } from '../../src/store/port.js';
import type { Store } from '../../src/store/store.js';
import { type AdapterUnderTest, storeSuites } from '../helpers/adapters.js';

const suites = await storeSuites();

const tokenOf = (job: Job): ClaimToken => ({ jobId: job.id, workerId: job.leaseOwner as string, leaseToken: job.leaseToken });
const jobs = (n: number): NewBatchJob[] => Array.from({ length: n }, (_, i) => ({ type: 'noop', parameters: { i }, maxAttempts: 1 }));

function operations(adapter: AdapterUnderTest): void {
  let store: Store;

  beforeEach(async () => {
    store = (await adapter.open()) as Store;
  });
  afterEach(async () => {
    await store.close();
  });
  afterAll(async () => {
    await adapter.cleanup();
  });

  it('does not claim the jobs of a held batch until the hold ends', async () => {
    const { value } = await store.createBatch({ name: 'held', ownerId: 'alice', jobs: jobs(1) });
    const [loose] = await store.createJobs([{ type: 'noop', parameters: {}, maxAttempts: 1, ownerId: 'alice', priority: -1 }]);
    await store.engine.unit((tx) => tx.holdBatch(value.batch.id, new Date(tx.now.getTime() + 60_000)));
    // The batch's job comes first in the claim order, but its batch is held.
    expect((await store.claimNext({ workerId: 'w', leaseMs: 30_000 }))?.id).toBe(loose?.value.id);
    expect(await store.claimNext({ workerId: 'w', leaseMs: 30_000 })).toBeNull();
    // A hold ends by itself (a crashed control operation cannot hold a batch for ever).
    const later = new Date(Date.now() + 61_000);
    expect((await store.claimNext({ workerId: 'w', leaseMs: 30_000, now: later }))?.batchId).toBe(value.batch.id);
  });

  it('cancels, restarts and pauses a batch larger than one chunk with exact counts, then lets the hold go', async () => {
    const size = CHUNK * 2 + 7;
    const { value } = await store.createBatch({ name: 'big', ownerId: 'alice', jobs: jobs(size) });
    const id = value.batch.id;
    const running = [
      (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job,
      (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job,
    ];
    const cancelled = await store.cancelBatch(id);
    expect(cancelled.counts).toMatchObject({ total: size, pending: 0, processing: 2, cancelled: size - 2 });
    expect(await store.countJobs({ batchId: id, status: ['CANCELLED'] })).toBe(size - 2);
    for (const job of running) expect((await store.getJobs([job.id]))[0]?.cancelRequested).toBe(true);
    for (const job of running) await store.markCancelled(tokenOf(job));

    const restarted = await store.restartBatch(id, false);
    expect(restarted.counts).toMatchObject({ total: size, pending: size, cancelled: 0 });
    // The hold is gone: its jobs are claimable again.
    expect((await store.claimNext({ workerId: 'w', leaseMs: 30_000 }))?.batchId).toBe(id);

    const paused = await store.setBatchActive(id, false);
    expect(paused.active).toBe(false);
    expect(await store.claimNext({ workerId: 'w', leaseMs: 30_000 })).toBeNull();
    await store.setBatchActive(id, true);
    expect((await store.claimNext({ workerId: 'w', leaseMs: 30_000 }))?.batchId).toBe(id);
    const [batch] = await store.getBatches([id]);
    expect(batch?.counts).toMatchObject({ total: size, pending: size - 2, processing: 2 });
  });

  it('deletes a batch larger than one chunk, and refuses while a job runs', async () => {
    const size = CHUNK + 3;
    const { value } = await store.createBatch({ name: 'big', ownerId: 'alice', jobs: jobs(size) });
    const id = value.batch.id;
    const job = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
    const refused = await store.deleteBatch(id).catch((error: unknown) => error);
    expect((refused as AppError).code).toBe('CONFLICT');
    expect(await store.countJobs({ batchId: id })).toBe(size);
    // Refused before the hold: the batch's jobs are still claimed.
    expect((await store.claimNext({ workerId: 'w', leaseMs: 30_000 }))?.batchId).toBe(id);
    await store.cancelBatch(id);
    await store.markCancelled(tokenOf(job));
    const second = (await store.listJobs({ batchId: id, status: ['PROCESSING'] }, { first: 1 })).items[0] as Job;
    await store.markCancelled(tokenOf(second));
    await store.deleteBatch(id);
    expect(await store.countJobs({ batchId: id })).toBe(0);
    expect(await store.getBatches([id])).toEqual([null]);
  });

  it('finishes a batch whose jobs complete at once exactly once, with exact counts', async () => {
    const webhook = { url: 'https://example.test/hook', events: ['batch.completed'] };
    const { value } = await store.createBatch({ name: 'race', ownerId: 'alice', webhook, jobs: jobs(20) });
    const claimed: Job[] = [];
    for (let i = 0; i < 20; i++) claimed.push((await store.claimNext({ workerId: `w${i % 4}`, leaseMs: 30_000 })) as Job);
    await Promise.all(claimed.map((job) => store.complete(tokenOf(job), { ok: true })));
    const [batch] = await store.getBatches([value.batch.id]);
    expect(batch).toMatchObject({ status: 'COMPLETED', counts: { total: 20, pending: 0, processing: 0, completed: 20 } });
    const finished = (await store.listDeliveries({ batchId: value.batch.id })).filter((d) => d.event === 'batch.completed');
    expect(finished).toHaveLength(1);
  });

  it('applies batch count moves that a stopped process recorded but never applied, at the next lease check', async () => {
    const { value } = await store.createBatch({ name: 'moves', ownerId: 'alice', jobs: jobs(2) });
    // A job change's unit of work without the store's apply step after it (as if the process stopped there).
    await store.engine.unit((tx) => moveInBatch(tx, value.batch.id, [{ from: 'PENDING', to: 'CANCELLED' }], { hot: true }));
    await store.recoverExpiredLeases(new Date(Date.now() + 60_000));
    const [batch] = await store.getBatches([value.batch.id]);
    expect(batch?.counts).toMatchObject({ total: 2, pending: 1, cancelled: 1 });
  });

  it('retention deletes only candidates that still qualify inside the delete, and reports those', async () => {
    const [a, b, c] = await store.createJobs([1, 2, 3].map((n) => ({ type: 'noop', parameters: { n }, maxAttempts: 1, ownerId: 'alice' })));
    for (let i = 0; i < 3; i++) await store.complete(tokenOf((await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job), null);
    const future = new Date(Date.now() + 60_000);
    const candidates = await store.engine.retentionCandidates({ completedBefore: future }, 10);
    expect(candidates.sort()).toEqual([a?.value.id, b?.value.id, c?.value.id].sort());
    // Between the listing and the delete: one job is restarted, one is deleted by someone else.
    await store.restartJob(a?.value.id as string);
    await store.deleteJob(b?.value.id as string);
    const deleted = await store.engine.unit((tx) => deleteExpired(tx, candidates, { completedBefore: future }));
    expect(deleted).toEqual([c?.value.id]);
    expect((await store.getJobs([a?.value.id as string]))[0]?.status).toBe('PENDING');
    const purged = await store.purge({ completedBefore: future });
    expect(purged).toMatchObject({ jobs: 0, jobIds: [] });
  });
}

for (const suite of suites) {
  describe.skipIf(suite.skipped !== null)(suite.title.replace('store contract', 'store operations'), () => operations(suite.adapter));
}
