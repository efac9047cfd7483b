/**
 * MongoDB query plans (`explain`): the engine's equality queries on fields with
 * partial indexes carry the index filter, so the planner can use those indexes; the
 * claim, the 410 check and retention have theirs. Runs where the contract suite runs
 * against MongoDB; skipped otherwise, with the reason in the title.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/domain/types.js';
import { disabledFilter, idempotencyFilter, jobQuery } from '../../src/store/mongodb/mongodb-engine.js';
import type { MongoStore } from '../../src/store/mongodb/mongodb-store.js';
import { mongoAdapter } from '../helpers/adapters.js';

const mongo = await mongoAdapter();

/** Every index the winning plan scans. */
function indexesOf(plan: unknown): string[] {
  if (typeof plan !== 'object' || plan === null) return [];
  const own = typeof (plan as { indexName?: unknown }).indexName === 'string' ? [(plan as { indexName: string }).indexName] : [];
  return [...own, ...Object.values(plan).flatMap(indexesOf)];
}

describe.skipIf(mongo.adapter === null)(`MongoDB query plans${mongo.skipped === null ? '' : ` (skipped: ${mongo.skipped})`}`, () => {
  let store: MongoStore;

  async function plan(collection: string, filter: object, sort: Record<string, 1 | -1> = {}): Promise<string[]> {
    const explained = await store.database().collection(collection).find(filter).sort(sort).limit(1).explain('queryPlanner');
    return indexesOf((explained as { queryPlanner: { winningPlan: unknown } }).queryPlanner.winningPlan);
  }

  beforeAll(async () => {
    store = (await mongo.adapter?.open()) as MongoStore;
    await store.createJobs(
      Array.from({ length: 50 }, (_, i) => ({
        type: 'noop',
        parameters: { track: `t${i % 5}` },
        maxAttempts: 1,
        ownerId: 'alice',
        idempotencyKey: i % 2 === 0 ? `k${i}` : null,
        cacheKey: `c${i}`,
        ingest: i % 3 === 0 ? { source: 'github', deliveryId: `d${i}`, event: 'push' } : null,
      })),
    );
    await store.createBatch({
      name: 'b',
      ownerId: 'alice',
      idempotencyKey: 'bk',
      jobs: [{ type: 'noop', parameters: {}, maxAttempts: 1 }],
    });
  });
  afterAll(async () => {
    await store?.close();
    await mongo.adapter?.cleanup();
  });

  it('idempotency lookups use the unique idempotency indexes', async () => {
    expect(await plan('jobs', idempotencyFilter('alice', 'k2'))).toContain('idempotency');
    expect(await plan('batches', idempotencyFilter('alice', 'bk'))).toContain('idempotency');
  });

  it('the result cache, track and source filters use their partial indexes', async () => {
    expect(await plan('jobs', jobQuery({ cacheKey: 'c3' }))).toContain('cache');
    expect(await plan('jobs', jobQuery({ track: 't1' }), { _id: -1 })).toContain('track');
    expect(await plan('jobs', jobQuery({ source: 'github' }), { _id: -1 })).toContain('source');
  });

  it('the 410 check of delivery claims uses the disabled index', async () => {
    const delivery = {
      id: 'dlv_x',
      batchId: 'bat_x',
      jobId: 'job_x',
      webhook: { url: 'https://example.test/hook' },
    } as unknown as Delivery;
    expect(await plan('deliveries', disabledFilter(delivery))).toContain('disabled');
    expect(await plan('deliveries', disabledFilter({ ...delivery, batchId: null }))).toContain('disabled');
  });

  it('the claim and retention use the claim and finished indexes', async () => {
    const claim = { status: 'PENDING', paused: false, runAt: { $lte: new Date() } };
    expect(await plan('jobs', claim, { priority: -1, runAt: 1, _id: 1 })).toContain('claim');
    const retention = await store.engine.retentionQuery({ completedBefore: new Date() });
    expect(await plan('jobs', retention)).toContain('finished');
  });
});
