/**
 * SQLite's one-statement claim and completion write exactly what the general operation
 * writes: the same job row, the same change events, the same outbox records and batch
 * counts. Ids and times differ between two jobs; everything else must not.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/domain/types.js';
import type { ClaimToken } from '../../src/store/port.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { Store } from '../../src/store/store.js';
import * as T from '../../src/store/transitions.js';

type Row = Record<string, unknown>;

const webhook = { url: 'https://example.test/hook', events: ['job.completed', 'batch.completed'] };

/** A batch of one job, both with a webhook (so completions write outbox records and batch counts). */
const batch = () => ({
  name: 'one',
  ownerId: 'alice',
  webhook,
  jobs: [{ type: 'noop', parameters: { n: 1 }, maxAttempts: 3, webhook }],
});
const report = { logs: [{ level: 'info' as const, message: 'done in 5 ms' }] };
const token = (job: Job): ClaimToken => ({ jobId: job.id, workerId: 'w1', leaseToken: job.leaseToken });

/** Replaces ids, times and log line numbers with placeholders, so that two jobs' writes compare. */
function normalize(value: unknown): unknown {
  if (value instanceof Date) return 'TIME';
  if (typeof value === 'string') {
    if (/^(job|bat|dlv)_/.test(value)) return value.slice(0, 3);
    if (/^\d{4}-\d\d-\d\dT/.test(value)) return 'TIME';
    if (value.startsWith('{') || value.startsWith('[')) return normalize(JSON.parse(value));
    return value;
  }
  if (Array.isArray(value)) return value.map(normalize);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        /(^at|_at|At|_until|Until|^seq)$/.test(k) && typeof v === 'number'
          ? 'TIME'
          : k === 'logSeqs' && Array.isArray(v)
            ? v.map(() => 'SEQ')
            : normalize(v),
      ]),
    );
  }
  return value;
}

describe('SQLite fast paths', () => {
  let dir: string;
  let fast: SqliteStore;
  let general: Store;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-fast-'));
    fast = createSqliteStore({ path: join(dir, 'conveyor.db') });
    // The same engine, with the general operation everywhere.
    general = new Store(fast.engine, { fastPaths: false });
  });
  afterEach(async () => {
    await fast.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const rows = (sql: string, ...params: unknown[]) => fast.connection.prepare(sql).all(...params) as Row[];
  const head = () => (rows('SELECT max(seq) AS seq FROM changes')[0]?.seq as number | null) ?? 0;

  /** Everything one completion wrote: the job row, its deliveries, its batch and the change events in (from, to]. */
  function written(job: Job, from: number, to: number) {
    return normalize({
      job: rows('SELECT * FROM jobs WHERE id = ?', job.id),
      deliveries: rows('SELECT * FROM deliveries WHERE job_id = ? OR batch_id = ? ORDER BY id', job.id, job.batchId),
      batch: rows('SELECT * FROM batches WHERE id = ?', job.batchId),
      changes: rows('SELECT * FROM changes WHERE seq > ? AND seq <= ? ORDER BY seq', from, to).map(({ seq: _seq, ...change }) => change),
    });
  }

  it('claims what transitions.claimed() makes', async () => {
    const [created] = await fast.createJobs([{ type: 'noop', parameters: {}, maxAttempts: 3, ownerId: 'alice' }]);
    const before = created?.value as Job;
    const now = new Date(Date.now() + 1000);
    const claimed = (await fast.claimNext({ workerId: 'w1', leaseMs: 30_000, now })) as Job;
    const expected = T.claimed(before, 'w1', 30_000, now);
    expect(claimed).toEqual({ ...expected, updatedAt: now });
    expect((await fast.getJobs([before.id]))[0]).toEqual(claimed);
  });

  it('completes with the same rows, changes, deliveries and batch counts as the general operation', async () => {
    await fast.createBatch(batch());
    await fast.createBatch(batch());

    const first = (await fast.claimNext({ workerId: 'w1', leaseMs: 30_000 })) as Job;
    const second = (await fast.claimNext({ workerId: 'w1', leaseMs: 30_000 })) as Job;
    // A cancellation asked meanwhile: completion clears it.
    await fast.cancelJob(first.id);
    await fast.cancelJob(second.id);
    const start = head();
    const viaFast = await fast.complete(token(first), { pages: 2 }, report);
    const middle = head();
    const viaGeneral = await general.complete(token(second), { pages: 2 }, report);
    const end = head();

    expect(normalize(viaFast)).toEqual(normalize(viaGeneral));
    const fastWrites = written(first, start, middle);
    const generalWrites = written(second, middle, end);
    expect((fastWrites as { changes: unknown[] }).changes.length).toBeGreaterThan(3);
    expect(fastWrites).toEqual(generalWrites);
  });

  it('completes a job the writer saw last (expected) with the same writes, and falls back when it changed since', async () => {
    for (let i = 0; i < 4; i++) await fast.createBatch(batch());
    const claimed = (await fast.claim({ workerId: 'w1', leaseMs: 30_000 }, 4)) as Job[];
    const [seen, other, stale, staleOther] = claimed as [Job, Job, Job, Job];
    const statements: string[] = [];
    const engine = fast.engine as unknown as { stmt: Record<string, { run: (...args: unknown[]) => { changes: number } }> };
    const original = engine.stmt.completeExpected;
    if (original === undefined) throw new Error('the engine has no expected-version completion');
    engine.stmt.completeExpected = {
      run: (...args: unknown[]) => {
        const result = original.run(...args);
        statements.push(result.changes === 1 ? 'written' : 'changed');
        return result;
      },
    };

    // Unchanged since the claim: written without reading back, the same as the general operation.
    let start = head();
    const viaExpected = await fast.commitWrites(
      [{ kind: 'complete', token: token(seen), results: { pages: 2 }, report, expected: seen }],
      null,
    );
    let middle = head();
    const viaGeneral = await general.complete(token(other), { pages: 2 }, report);
    let end = head();
    expect(statements).toEqual(['written']);
    expect(normalize(viaExpected.written[0])).toEqual(normalize(viaGeneral));
    expect(normalize((await fast.getJobs([seen.id]))[0])).toEqual(normalize(viaGeneral));
    expect(written(seen, start, middle)).toEqual(written(other, middle, end));

    // Changed since (a cancellation was asked): nothing written by that statement, the fallback completes it.
    await fast.cancelJob(stale.id);
    await fast.cancelJob(staleOther.id);
    start = head();
    const viaStale = await fast.commitWrites(
      [{ kind: 'complete', token: token(stale), results: { pages: 2 }, report, expected: stale }],
      null,
    );
    middle = head();
    const viaGeneral2 = await general.complete(token(staleOther), { pages: 2 }, report);
    end = head();
    expect(statements).toEqual(['written', 'changed']);
    expect(normalize(viaStale.written[0])).toEqual(normalize(viaGeneral2));
    expect(written(stale, start, middle)).toEqual(written(staleOther, middle, end));
  });
});
