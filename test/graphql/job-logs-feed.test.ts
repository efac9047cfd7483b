/**
 * `jobLogs` follows the change feed, which announces a write's log lines by number, and
 * reads their text from the log. These drive the feed directly on a real SQLite store:
 * lines written by earlier versions (one `logged` change per line, with its text), and a
 * log read that fails (the store gone, a MongoDB failover) — the stream fails once,
 * with nothing left unhandled.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LogEntry, Principal } from '../../src/domain/types.js';
import { createSubscriptionFeed, StreamError } from '../../src/graphql/feed.js';
import type { ClaimToken } from '../../src/store/port.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const alice: Principal = { userId: 'alice', teams: [], admin: false };

describe('jobLogs feed', () => {
  let dir: string;
  let store: SqliteStore;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-logs-'));
    store = createSqliteStore({ path: join(dir, 'conveyor.db') });
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(async () => {
    process.off('unhandledRejection', onUnhandled);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function running(): Promise<ClaimToken> {
    await store.createJobs([{ type: 'noop', parameters: {}, maxAttempts: 1, ownerId: 'alice' }]);
    const [job] = await store.claim({ workerId: 'w', leaseMs: 60_000 }, 1);
    if (job === undefined) throw new Error('expected a claim');
    return { jobId: job.id, workerId: 'w', leaseToken: job.leaseToken };
  }

  it('fails the stream once when reading announced lines fails, and leaves no rejection unhandled', async () => {
    const token = await running();
    let failing = false;
    const reads = new Proxy(store, {
      get(target, key, receiver) {
        if (key === 'listLogs' && failing) return async () => Promise.reject(new Error('log read failed'));
        const value = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const feed = createSubscriptionFeed(reads);
    const stream = feed.jobLogs(alice, token.jobId, null);
    await store.appendLogs(token, [{ level: 'info', message: 'before' }]);
    const first = (await stream.next()).value as LogEntry;
    expect(first.message).toBe('before');
    failing = true;
    // One change announcing three lines: three entries wait on one read, which fails.
    await store.appendLogs(token, [
      { level: 'info', message: 'a' },
      { level: 'info', message: 'b' },
      { level: 'info', message: 'c' },
    ]);
    const last = await stream.next().then(
      (step) => step.value,
      (error: unknown) => error,
    );
    const message = last instanceof StreamError ? last.error.message : (last as Error).message;
    expect(message).toMatch(/log read failed|internal/i);
    // Give any stray rejection a few turns to surface.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
  });

  it('reads the lines of one change once for all subscribers of the job', async () => {
    const token = await running();
    let reads = 0;
    const counted = new Proxy(store, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (typeof value !== 'function') return value;
        if (key !== 'listLogs') return value.bind(target);
        return (...args: Parameters<typeof target.listLogs>) => {
          reads++;
          return target.listLogs(...args);
        };
      },
    });
    const feed = createSubscriptionFeed(counted);
    const streams = [
      feed.jobLogs(alice, token.jobId, null),
      feed.jobLogs(alice, token.jobId, null),
      feed.jobLogs(alice, token.jobId, null),
    ];
    await store.appendLogs(token, [{ level: 'info', message: 'first' }]);
    for (const stream of streams) expect(((await stream.next()).value as LogEntry).message).toBe('first');
    const before = reads;
    await store.appendLogs(token, [
      { level: 'info', message: 'a' },
      { level: 'info', message: 'b' },
      { level: 'info', message: 'c' },
    ]);
    for (const stream of streams) {
      const got: string[] = [];
      for (let i = 0; i < 3; i++) got.push(((await stream.next()).value as LogEntry).message);
      expect(got).toEqual(['a', 'b', 'c']);
    }
    expect(reads - before).toBe(1);
    for (const stream of streams) await stream.return?.();
  });

  it('takes lines announced the earlier way (one logged change per line, with its text)', async () => {
    const token = await running();
    const feed = createSubscriptionFeed(store);
    const stream = feed.jobLogs(alice, token.jobId, null);
    await store.appendLogs(token, [{ level: 'info', message: 'now' }]);
    expect(((await stream.next()).value as LogEntry).message).toBe('now');
    // A change as an earlier version wrote it, straight into the table another process shares.
    const seq = store.connection.prepare('SELECT max(seq) FROM job_logs').pluck().get() as number;
    store.connection
      .prepare(
        `INSERT INTO changes (at, entity, op, entity_id, batch_id, owner_id, status, version, data) VALUES (?, 'job', 'logged', ?, NULL, 'alice', 'PROCESSING', 2, ?)`,
      )
      .run(Date.now(), token.jobId, JSON.stringify({ seq: seq + 1, level: 'warn', message: 'from an older worker', attempt: 1 }));
    const old = (await stream.next()).value as LogEntry;
    expect(old).toMatchObject({ seq: seq + 1, level: 'warn', message: 'from an older worker', attempt: 1, jobId: token.jobId });
    await stream.return?.();
  });
});
