/**
 * SQLite reads a job as one JSON array (`JOB_COLUMNS`). What submitters and handlers
 * give (parameters, results, error details) may nest deeper than SQLite's JSON functions
 * accept (1,000 levels): such a job must still be written, claimed, completed and read
 * back exactly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/domain/types.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

/** The same JSON, compared as text (vitest's deep equality recurses too deep for these values). */
const same = (actual: unknown, expected: unknown) => expect(JSON.stringify(actual)).toBe(JSON.stringify(expected));

/** `{ a: { a: … { leaf } } }`, `levels` deep. */
function deep(levels: number, leaf: JsonObject): JsonObject {
  let value: JsonObject = leaf;
  for (let i = 0; i < levels; i++) value = { a: value };
  return value;
}

describe('SQLite job reads', () => {
  let dir: string;
  let store: SqliteStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-reads-'));
    store = createSqliteStore({ path: join(dir, 'conveyor.db') });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps a job with parameters, results and failure details nested 1,500 levels deep readable, value for value', async () => {
    const parameters = deep(1500, { n: 1, text: 'ünïcødé "quoted" \\ \u0001', big: 12345678901234, small: 0.30000000000000004 });
    const [created] = await store.createJobs([{ type: 'noop', parameters, maxAttempts: 2, ownerId: 'alice' }]);
    const job = created?.value;
    same(job?.parameters, parameters);
    const [claimed] = await store.claim({ workerId: 'w', leaseMs: 30_000 }, 1);
    same(claimed?.parameters, parameters);
    const token = { jobId: claimed?.id as string, workerId: 'w', leaseToken: claimed?.leaseToken as number };
    // A retriable failure with deep details, then a completion with deep results.
    await store.fail(token, {
      code: 'DEEP',
      message: 'deep details',
      retriable: true,
      retryAt: new Date(0),
      details: deep(1500, { why: 'deep' }),
    });
    const [again] = await store.claim({ workerId: 'w', leaseMs: 30_000 }, 1);
    const results = deep(1500, { ok: true });
    const completed = await store.complete({ jobId: again?.id as string, workerId: 'w', leaseToken: again?.leaseToken as number }, results);
    same(completed.results, results);

    const [read] = await store.getJobs([job?.id as string]);
    same(read?.parameters, parameters);
    same(read?.results, results);
    same(read?.errors[0]?.details, deep(1500, { why: 'deep' }));
    const page = await store.listJobs({ ownerId: 'alice' }, { first: 10 });
    expect(page.items.map((j) => j.status)).toEqual(['COMPLETED']);
  });
});
