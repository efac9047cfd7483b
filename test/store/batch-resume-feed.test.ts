/**
 * Workers wake on a batch change that says `resumed: true`. It must be written when the
 * batch's jobs can really be claimed: in the unit of work that lets the batch's hold go,
 * after every job was un-paused (or restarted). Written earlier, a worker in another
 * process could read it while the batch is still held, find nothing to claim and wait
 * for its poll. Each unit of work's change inserts are watched, and when the `resumed`
 * change goes in, the batch's state is read on the same connection, inside that unit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { NewChange } from '../../src/store/engine.js';
import { CHUNK } from '../../src/store/operations/batch-control.js';
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { sqliteFiles } from '../helpers/sqlite-files.js';

const files = sqliteFiles('conveyor-resume-');
afterEach(() => files.cleanup());

interface Seen {
  held: number | null;
  paused: number;
  failed: number;
}

/** A store whose every `resumed` change records the batch's state at the moment it is inserted. */
function watchedStore(): { store: SqliteStore; seen: Seen[] } {
  const store = files.open();
  const seen: Seen[] = [];
  const db = store.connection;
  const engine = store.engine;
  const unit = engine.unit.bind(engine);
  engine.unit = (work) =>
    unit((tx) => {
      const insert = tx.insertChanges.bind(tx);
      tx.insertChanges = (changes: readonly NewChange[]) => {
        for (const change of changes) {
          if (change.entity !== 'batch' || change.data?.resumed !== true) continue;
          const { held } = db.prepare('SELECT held_until AS held FROM batches WHERE id = ?').get(change.id) as { held: number | null };
          const count = (where: string) =>
            (db.prepare(`SELECT count(*) AS n FROM jobs WHERE batch_id = ? AND ${where}`).get(change.id) as { n: number }).n;
          seen.push({ held, paused: count('paused = 1'), failed: count("status = 'FAILED'") });
        }
        return insert(changes);
      };
      return work(tx);
    });
  return { store, seen };
}

const jobs = (n: number) => Array.from({ length: n }, (_, i) => ({ type: 'noop', parameters: { i }, maxAttempts: 1 }));

describe('a batch resumed', () => {
  it('says so in the unit that releases its hold, with every job un-paused (more than a chunk of them)', async () => {
    const { store, seen } = watchedStore();
    const { value } = await store.createBatch({ name: 'b', ownerId: 'u', active: false, jobs: jobs(CHUNK + 20) });
    await store.setBatchActive(value.batch.id, true);
    expect(seen).toEqual([{ held: null, paused: 0, failed: 0 }]);
    // Pausing writes no such change.
    await store.setBatchActive(value.batch.id, false);
    expect(seen).toHaveLength(1);
  });

  it('says so when its failed jobs are restarted, once they are pending again', async () => {
    const { store, seen } = watchedStore();
    const { value } = await store.createBatch({ name: 'b', ownerId: 'u', jobs: jobs(3) });
    for (const job of await store.claim({ workerId: 'w', leaseMs: 60_000 }, 3)) {
      await store.fail(
        { jobId: job.id, workerId: 'w', leaseToken: job.leaseToken },
        { code: 'BOOM', message: 'boom', retriable: false, retryAt: null },
      );
    }
    await store.restartBatch(value.batch.id, true);
    expect(seen).toEqual([{ held: null, paused: 0, failed: 0 }]);
    // Cancelling needs no worker to wake.
    await store.cancelBatch(value.batch.id);
    expect(seen).toHaveLength(1);
  });
});
