/**
 * What only the MongoDB engine does: lease times from the server's clock, and majority
 * write and read concerns. Runs where the contract suite runs against MongoDB; skipped
 * otherwise, with the reason in the title.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { Job } from '../../src/domain/types.js';
import type { MongoStore } from '../../src/store/mongodb/mongodb-store.js';
import { mongoAdapter } from '../helpers/adapters.js';

const mongo = await mongoAdapter();

describe.skipIf(mongo.adapter === null)(`MongoDB engine${mongo.skipped === null ? '' : ` (skipped: ${mongo.skipped})`}`, () => {
  const stores: MongoStore[] = [];
  const open = async () => {
    const store = (await mongo.adapter?.open()) as MongoStore;
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    vi.useRealTimers();
    for (const store of stores.splice(0)) await store.close();
  });
  afterAll(async () => {
    await mongo.adapter?.cleanup();
  });

  it('takes lease times from the server clock when this process runs an hour ahead', async () => {
    const real = Date.now();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(real + 3_600_000);
    const store = await open();
    await store.createJobs([{ type: 'noop', parameters: {}, maxAttempts: 1, ownerId: 'alice' }]);
    const claimed = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
    // Within a minute of the real time (the server's), not an hour ahead like the local clock.
    expect(Math.abs((claimed.startedAt as Date).getTime() - real)).toBeLessThan(60_000);
    expect(Math.abs((claimed.leaseUntil as Date).getTime() - (real + 30_000))).toBeLessThan(60_000);
  });

  it('writes with majority acknowledgement and reads majority-committed data outside transactions', async () => {
    const store = await open();
    expect(store.database().writeConcern?.w).toBe('majority');
    expect(store.database().readConcern?.level).toBe('majority');
  });
});
