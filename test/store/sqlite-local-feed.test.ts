/**
 * The SQLite engine publishes a process's own committed changes from memory instead of
 * reading them back: what a live listener receives must be exactly what the `changes`
 * table holds (same events, same order, no gap, no duplicate), also when another
 * process (a second engine on the same file) writes in between.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../src/store/port.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const dirs: string[] = [];
const stores: SqliteStore[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function open(path: string, changePollMs = 10): SqliteStore {
  const store = createSqliteStore({ path, changePollMs });
  stores.push(store);
  return store;
}

/** Every change from the first, read from the table (a replay: no live events involved). */
async function stored(store: SqliteStore): Promise<ChangeEvent[]> {
  const head = await store.engine.headCursor();
  const events: ChangeEvent[] = [];
  await new Promise<void>((resolve, reject) => {
    const listening = store.listen(null, {
      event(event) {
        events.push(event);
        if (event.cursor === head) {
          listening.stop();
          resolve();
        }
      },
      error: reject,
    });
  });
  return events;
}

const claim = { workerId: 'w', leaseMs: 60_000 };
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('SQLite live feed from memory', () => {
  it('gives live listeners exactly the stored events, with another process writing in between', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-local-feed-'));
    dirs.push(dir);
    const path = join(dir, 'conveyor.db');
    const mine = open(path);
    const other = open(path);
    const live: ChangeEvent[] = [];
    let failed: Error | null = null;
    const listening = mine.listen(undefined, { event: (event) => live.push(event), error: (error) => (failed = error) });
    // Attached (and live) after a turn of the event loop; from then on this process's own
    // changes are published from memory. The writes below run without a turn between them
    // (so one publish sees several of this process's units with the other's in between) and
    // with turns between them.
    await tick();
    const webhook = { url: 'https://example.com/hook', events: ['job.completed', 'batch.completed'] };
    const { value } = await mine.createBatch({
      name: 'feed',
      ownerId: 'u',
      jobs: [
        { type: 'noop', parameters: { n: 1 }, maxAttempts: 2 },
        { type: 'noop', parameters: { n: 2 }, maxAttempts: 2 },
      ],
      webhook,
    });
    await other.createJobs([{ type: 'noop', parameters: { n: 3 }, maxAttempts: 1, ownerId: 'v' }]);
    await tick();
    const [first, second] = await mine.claim(claim, 2);
    if (first === undefined || second === undefined) throw new Error('expected two claims');
    await other.updateProgress({ jobId: first.id, workerId: 'w', leaseToken: first.leaseToken }, { percent: 40, step: null, message: 'm' });
    await mine.appendLogs({ jobId: first.id, workerId: 'w', leaseToken: first.leaseToken }, [{ level: 'info', message: 'hello' }]);
    await mine.complete(
      { jobId: first.id, workerId: 'w', leaseToken: first.leaseToken },
      { ok: true },
      {
        logs: [{ level: 'info', message: 'done' }],
      },
    );
    await other.complete({ jobId: second.id, workerId: 'w', leaseToken: second.leaseToken }, { ok: 2 });
    const third = await other.claimNext(claim);
    if (third === null) throw new Error('expected a claim');
    await mine.fail(
      { jobId: third.id, workerId: 'w', leaseToken: third.leaseToken },
      {
        code: 'BOOM',
        message: 'boom',
        retriable: false,
        retryAt: null,
      },
    );
    await tick();
    await mine.createJobs(Array.from({ length: 70 }, (_, n) => ({ type: 'noop', parameters: { n }, maxAttempts: 1, ownerId: 'u' })));
    expect(value.batch.id).toBeTruthy();

    const all = await stored(mine);
    const since = all.findIndex((event) => event.entity === 'batch' && event.op === 'created');
    const expected = all.slice(since);
    await expect.poll(() => live.length).toBeGreaterThanOrEqual(expected.length);
    listening.stop();
    expect(failed).toBeNull();
    expect(live).toEqual(expected);
    // The other process's writes are among them, between this one's.
    expect(expected.some((event) => event.ownerId === 'v')).toBe(true);
    // Log lines are announced by number: 'hello' alone (`logged`), 'done' with the completion.
    const announced = expected.flatMap((event) =>
      Array.isArray(event.data?.logSeqs) ? [[event.op, ...(event.data.logSeqs as number[])]] : [],
    );
    const log = await mine.listLogs(first.id, null, 10);
    expect(announced).toEqual([
      ['logged', log[0]?.seq],
      ['updated', log[1]?.seq],
    ]);
    expect(log.map((line) => line.message)).toEqual(['hello', 'done']);
  });
});
