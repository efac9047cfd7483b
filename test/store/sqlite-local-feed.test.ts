/**
 * The SQLite engine publishes a process's own committed changes from memory instead of
 * reading them back: what a live listener receives must be exactly what the `changes`
 * table holds (same events, same order, no gap, no duplicate), also when another
 * process (a second engine on the same file) writes in between.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../src/store/port.js';
import { sqliteFiles, storedChanges as stored } from '../helpers/sqlite-files.js';

const files = sqliteFiles('conveyor-local-feed-');
afterEach(() => files.cleanup());

const claim = { workerId: 'w', leaseMs: 60_000 };
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('SQLite live feed from memory', () => {
  it('gives live listeners exactly the stored events, with another process writing in between', async () => {
    const path = files.path();
    const mine = files.open(path);
    const other = files.open(path);
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
