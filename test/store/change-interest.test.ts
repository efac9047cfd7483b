/**
 * Change interests: a listener that says what it wants gets exactly the matching changes,
 * and while every listener of a SQLite process has one, the feed's poll reads only those
 * rows from the table (the other processes' claims and completions never become events).
 * A listener without an interest, added later or replaying, still gets every change.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeListener } from '../../src/store/change-stream.js';
import { type ChangeInterest, interested } from '../../src/store/interest.js';
import type { ChangeEvent } from '../../src/store/port.js';
import { encodeSeqCursor } from '../../src/store/query.js';
import { interestSql } from '../../src/store/sqlite/sqlite-engine.js';
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { WORKER_INTEREST } from '../../src/worker/worker.js';
import { sqliteFiles, storedChanges as stored } from '../helpers/sqlite-files.js';

const files = sqliteFiles('conveyor-interest-');
afterEach(() => files.cleanup());
const file = () => files.path();
const open = (path: string) => files.open(path);

const claim = { workerId: 'w', leaseMs: 60_000 };
const tick = () => new Promise((resolve) => setImmediate(resolve));
const DELIVERIES: ChangeInterest = [{ entity: 'delivery', statuses: ['PENDING'] }];

/** Work of every kind: created, claimed, cancel-requested, completed and failed jobs, a batch switched off and on, deliveries. */
async function busyWork(store: SqliteStore): Promise<void> {
  const webhook = { url: 'https://example.com/hook', events: ['job.completed', 'job.failed', 'batch.completed'] };
  const { value } = await store.createBatch({
    name: 'b',
    ownerId: 'u',
    jobs: [1, 2, 3].map((n) => ({ type: 'noop', parameters: { n }, maxAttempts: 1 })),
    webhook,
  });
  await store.setBatchActive(value.batch.id, false);
  await store.setBatchActive(value.batch.id, true);
  await store.createJobs([4, 5].map((n) => ({ type: 'noop', parameters: { n }, maxAttempts: 1, ownerId: 'v', webhook })));
  const jobs = await store.claim(claim, 5);
  const [a, b, c, d] = jobs;
  if (a === undefined || b === undefined || c === undefined || d === undefined) throw new Error('expected claims');
  await store.cancelJob(a.id);
  await store.updateProgress({ jobId: b.id, workerId: 'w', leaseToken: b.leaseToken }, { percent: 50, step: null, message: 'half' });
  await store.complete({ jobId: b.id, workerId: 'w', leaseToken: b.leaseToken }, { ok: true });
  // A job with a webhook of its own: its completion writes a delivery.
  await store.complete({ jobId: d.id, workerId: 'w', leaseToken: d.leaseToken }, { ok: true });
  await store.fail(
    { jobId: c.id, workerId: 'w', leaseToken: c.leaseToken },
    { code: 'BOOM', message: 'boom', retriable: false, retryAt: null },
  );
}

describe('change interests', () => {
  it('match in SQL exactly as in memory, for every kind of change', async () => {
    const store = open(file());
    await busyWork(store);
    const all = await stored(store);
    const interests: ChangeInterest[] = [
      WORKER_INTEREST,
      DELIVERIES,
      [{ entity: 'job', ops: ['created'] }],
      [{ entity: 'batch', flag: 'active' }],
      [{ entity: 'job', statuses: ['COMPLETED', 'FAILED'] }, { entity: 'delivery' }],
      [],
    ];
    const seqs = store.connection.prepare('SELECT seq FROM changes ORDER BY seq').pluck();
    for (const interest of interests) {
      const inMemory = all.filter((event) => interested(interest, event)).map((event) => event.cursor);
      const sql = store.connection.prepare(`SELECT seq FROM changes WHERE ${interestSql(interest)} ORDER BY seq`).pluck();
      const inSql = (sql.all() as number[]).map(encodeSeqCursor);
      expect(inSql).toEqual(inMemory);
    }
    // The work above has every kind of change, and the worker wants some of each of its kinds, not all.
    expect(seqs.all().length).toBe(all.length);
    const wanted = all.filter((event) => interested(WORKER_INTEREST, event));
    expect(wanted.some((event) => event.op === 'created')).toBe(true);
    expect(wanted.some((event) => event.data?.cancelRequested === true)).toBe(true);
    expect(wanted.some((event) => event.entity === 'batch')).toBe(true);
    expect(wanted.length).toBeLessThan(all.length);
    expect(all.filter((event) => interested(DELIVERIES, event)).length).toBeGreaterThan(0);
  });

  it('match in SQL exactly as in memory for logged and deleted changes and for every value a flag may have', async () => {
    const store = open(file());
    // Real `logged` (a line alone) and `deleted` changes (their summary is null), of jobs and a batch.
    const [kept, gone] = await store.createJobs([1, 2].map((n) => ({ type: 'noop', parameters: { n }, maxAttempts: 1, ownerId: 'u' })));
    const [running] = await store.claim(claim, 1);
    if (running === undefined || kept === undefined || gone === undefined) throw new Error('expected a claim');
    await store.appendLogs({ jobId: running.id, workerId: 'w', leaseToken: running.leaseToken }, [{ level: 'info', message: 'hi' }]);
    await store.cancelJob(running.id);
    await store.deleteJob(running.id === gone.value.id ? kept.value.id : gone.value.id);
    const { value } = await store.createBatch({ name: 'b', ownerId: 'u', jobs: [{ type: 'noop', parameters: {}, maxAttempts: 1 }] });
    await store.deleteBatch(value.batch.id);
    // Summaries the store does not write today, written by hand: `flag` means JSON `true` and nothing else.
    const summaries = [
      '{"f":true}',
      '{"f":1}',
      '{"f":1.0}',
      '{"f":"true"}',
      '{"f":false}',
      '{"f":0}',
      '{"f":null}',
      '{"f":{"x":true}}',
      '{"f":[true]}',
      '{"g":{"f":true}}',
      '{}',
      'null',
      null,
    ];
    const insert = store.connection.prepare(
      `INSERT INTO changes (at, entity, op, entity_id, batch_id, owner_id, status, version, data) VALUES (?, 'job', 'updated', 'x', NULL, NULL, ?, 1, ?)`,
    );
    for (const summary of summaries) for (const status of ['PENDING', null]) insert.run(Date.now(), status, summary);
    const all = await stored(store);
    expect(all.some((event) => event.op === 'logged')).toBe(true);
    const deleted = all.filter((event) => event.op === 'deleted');
    expect(new Set(deleted.map((event) => event.entity))).toEqual(new Set(['job', 'batch']));
    expect(deleted.every((event) => event.data === null)).toBe(true);
    const interests: ChangeInterest[] = [
      [{ entity: 'job', flag: 'f' }],
      [{ entity: 'job', statuses: ['PENDING'], flag: 'f' }],
      [{ entity: 'job', flag: 'cancelRequested' }],
      [{ entity: 'job', ops: ['deleted'], flag: 'cancelRequested' }],
      [{ entity: 'job', ops: ['logged'] }],
      [{ entity: 'job', ops: ['logged'], statuses: ['PROCESSING'] }],
      [
        { entity: 'job', ops: ['deleted'] },
        { entity: 'batch', ops: ['deleted'] },
      ],
      [{ entity: 'batch', ops: ['deleted'], flag: 'active' }],
      [{ entity: 'job', statuses: ['PENDING'] }],
      [{ entity: 'job', ops: [] }],
      [{ entity: 'job', statuses: [] }],
    ];
    for (const interest of interests) {
      const inMemory = all.filter((event) => interested(interest, event)).map((event) => event.cursor);
      const sql = store.connection.prepare(`SELECT seq FROM changes WHERE ${interestSql(interest)} ORDER BY seq`).pluck();
      expect((sql.all() as number[]).map(encodeSeqCursor), JSON.stringify(interest)).toEqual(inMemory);
    }
    // The hand-written rows match the flag once per status asked for: `true` only.
    expect(all.filter((event) => interested([{ entity: 'job', flag: 'f' }], event))).toHaveLength(2);
  });

  it('refuses names that are not plain in an interest', () => {
    expect(() => interestSql([{ entity: 'job', statuses: ["PENDING') OR 1=1 --"] }])).toThrow(/not a plain name/);
    expect(() => interestSql([{ entity: 'job', flag: 'a.b' }])).toThrow(/not a plain name/);
  });

  it('refuses a listener with a bad interest when it is added, and the feed goes on for the others', async () => {
    const store = open(file());
    const events: ChangeEvent[] = [];
    const good = store.listen(undefined, { interest: WORKER_INTEREST, event: (event) => events.push(event), error: () => {} });
    const listener = (interest: ChangeInterest): ChangeListener => ({ interest, event: () => {}, error: () => {} });
    expect(() => store.listen(undefined, listener([{ entity: 'jobs' as never }]))).toThrow(/unknown entity/);
    expect(() => store.listen(undefined, listener([{ entity: 'job', ops: ['created OR 1' as never] }]))).toThrow(/not a plain name/);
    expect(() => store.listen(undefined, listener([{ entity: 'job', flag: "x') OR ('1" }]))).toThrow(/not a plain name/);
    await tick();
    const [created] = await store.createJobs([{ type: 'noop', parameters: {}, maxAttempts: 1, ownerId: 'v' }]);
    await expect.poll(() => events.at(-1)?.id).toBe(created?.value.id);
    good.stop();
  });

  it('reads only the wanted rows of another process while every listener has an interest', async () => {
    const path = file();
    const mine = open(path);
    const other = open(path);
    const live: ChangeEvent[] = [];
    let failed: Error | null = null;
    const worker: ChangeListener = { interest: WORKER_INTEREST, event: (event) => live.push(event), error: (error) => (failed = error) };
    const listening = mine.listen(undefined, worker);
    await tick();
    const before = mine.engine.feedRowsRead;
    await busyWork(other);
    const all = await stored(other);
    const expected = all.filter((event) => interested(WORKER_INTEREST, event));
    await expect.poll(() => live.length).toBe(expected.length);
    // One more write, to be sure the poll went past the rest and will not deliver anything twice.
    const [extra] = await other.createJobs([{ type: 'noop', parameters: {}, maxAttempts: 1, ownerId: 'v' }]);
    await expect.poll(() => live.at(-1)?.id).toBe(extra?.value.id);
    listening.stop();
    expect(failed).toBeNull();
    expect(live.slice(0, -1)).toEqual(expected);
    // The poll turned only the wanted rows into events (the replay by `stored` read its own process's table).
    expect(mine.engine.feedRowsRead - before).toBe(expected.length + 1);

    // A listener without an interest, replaying from the first change, still gets everything.
    expect(await stored(mine)).toEqual([...all, live.at(-1)]);
  });

  it("leaves out another process's claims and completions of a batch's jobs too, and takes its resumption", async () => {
    const path = file();
    const mine = open(path);
    const other = open(path);
    const live: ChangeEvent[] = [];
    const errors: Error[] = [];
    const listening = mine.listen(undefined, {
      interest: WORKER_INTEREST,
      event: (e) => void live.push(e),
      error: (e) => void errors.push(e),
    });
    await tick();
    const before = mine.engine.feedRowsRead;
    const { value } = await other.createBatch({
      name: 'b',
      ownerId: 'u',
      jobs: [1, 2, 3].map((n) => ({ type: 'noop', parameters: { n }, maxAttempts: 1 })),
    });
    // Every claim and completion of a batch's job moves the batch's counts: a batch change, with `active: true`.
    for (const job of await other.claim(claim, 3)) await other.complete({ jobId: job.id, workerId: 'w', leaseToken: job.leaseToken }, null);
    await other.setBatchActive(value.batch.id, false);
    await other.setBatchActive(value.batch.id, true);
    const [extra] = await other.createJobs([{ type: 'noop', parameters: {}, maxAttempts: 1, ownerId: 'v' }]);
    await expect.poll(() => live.at(-1)?.id).toBe(extra?.value.id);
    listening.stop();
    expect(errors).toEqual([]);
    const all = (await stored(other)).filter((event) => event.entity === 'batch' && event.op === 'updated');
    expect(all.length).toBeGreaterThan(6);
    // Of the batch's changes, only the one that switched it back on.
    const batches = live.filter((event) => event.entity === 'batch');
    expect(batches).toHaveLength(1);
    expect(batches[0]?.data).toMatchObject({ active: true, resumed: true });
    expect(live.map((event) => `${event.entity}:${event.op}:${event.status}`)).toEqual([
      'job:created:PENDING',
      'job:created:PENDING',
      'job:created:PENDING',
      `batch:updated:${batches[0]?.status}`,
      'job:created:PENDING',
    ]);
    expect(mine.engine.feedRowsRead - before).toBe(5);
  });

  it('reads every row once a listener of the process wants every change, and still filters for the others', async () => {
    const path = file();
    const mine = open(path);
    const other = open(path);
    const forWorker: ChangeEvent[] = [];
    const everything: ChangeEvent[] = [];
    const errors: Error[] = [];
    const error = (e: Error) => void errors.push(e);
    const a = mine.listen(undefined, { interest: WORKER_INTEREST, event: (event) => forWorker.push(event), error });
    const b = mine.listen(undefined, { event: (event) => everything.push(event), error });
    await tick();
    const before = mine.engine.feedRowsRead;
    await busyWork(other);
    const all = await stored(other);
    await expect.poll(() => everything.length).toBe(all.length);
    expect(everything).toEqual(all);
    expect(forWorker).toEqual(all.filter((event) => interested(WORKER_INTEREST, event)));
    expect(mine.engine.feedRowsRead - before).toBe(all.length);

    // The listener of everything leaves: from then on the poll reads only what the worker wants.
    b.stop();
    const seen = mine.engine.feedRowsRead;
    await other.createBatch({ name: 'c', ownerId: 'u', jobs: [{ type: 'noop', parameters: {}, maxAttempts: 1 }] });
    const [job] = await other.claim(claim, 1);
    if (job === undefined) throw new Error('expected a claim');
    await other.complete({ jobId: job.id, workerId: 'w', leaseToken: job.leaseToken }, null);
    const created = await other.createJobs([{ type: 'noop', parameters: {}, maxAttempts: 1, ownerId: 'v' }]);
    await expect.poll(() => forWorker.at(-1)?.id).toBe(created[0]?.value.id);
    a.stop();
    const later = (await stored(other)).slice(all.length);
    const wanted = later.filter((event) => interested(WORKER_INTEREST, event));
    expect(forWorker.slice(-wanted.length)).toEqual(wanted);
    expect(mine.engine.feedRowsRead - seen).toBe(wanted.length);
    // Not the claim or the completion of the job.
    expect(wanted.some((event) => event.entity === 'job' && event.status !== 'PENDING')).toBe(false);
    expect(later.length).toBeGreaterThan(wanted.length);
    expect(errors).toEqual([]);
  });

  it('replays only the wanted changes to a listener with an interest', async () => {
    const store = open(file());
    await busyWork(store);
    const all = await stored(store);
    const head = all.at(-1)?.cursor;
    const replayed: ChangeEvent[] = [];
    await new Promise<void>((resolve, reject) => {
      const listening = store.listen(null, {
        interest: DELIVERIES,
        event(event) {
          replayed.push(event);
          if (replayed.length === all.filter((e) => interested(DELIVERIES, e)).length) {
            listening.stop();
            resolve();
          }
        },
        error: reject,
      });
    });
    expect(replayed).toEqual(all.filter((event) => interested(DELIVERIES, event)));
    expect(replayed.every((event) => event.entity === 'delivery' && event.status === 'PENDING')).toBe(true);
    expect(head).toBeDefined();
  });
});
