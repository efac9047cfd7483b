/**
 * A write that finds another process holding SQLite's write lock waits for it off the
 * event loop (timers and I/O keep running), commits once the lock is free, and fails
 * with SQLITE_BUSY when the lock stays taken past `busyTimeoutMs`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const dirs: string[] = [];
const closers: (() => unknown)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function setup(busyTimeoutMs: number): { store: SqliteStore; other: Database.Database } {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-busy-'));
  dirs.push(dir);
  const path = join(dir, 'conveyor.db');
  const store = createSqliteStore({ path, busyTimeoutMs });
  // Another process's connection to the same file.
  const other = new Database(path);
  closers.push(
    () => other.close(),
    () => store.close(),
  );
  return { store, other };
}

const job = { type: 'noop', parameters: {}, maxAttempts: 1, ownerId: 'u' };

describe('SQLite write lock', () => {
  it('waits for the lock without blocking the event loop, then commits', async () => {
    const { store, other } = setup(10_000);
    other.exec('BEGIN IMMEDIATE');
    const submitted = store.createJobs([job]);
    let settled = false;
    void submitted.then(() => (settled = true));
    // While the write waits, timers still fire: count a few turns of a 1 ms timer.
    let ticks = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (++ticks === 5) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    expect(settled).toBe(false);
    other.exec('COMMIT');
    const [created] = await submitted;
    expect(created?.value.status).toBe('PENDING');
    expect(await store.countJobs({})).toBe(1);
  });

  it('fails with SQLITE_BUSY once the lock stays taken past busyTimeoutMs, writing nothing', async () => {
    const { store, other } = setup(50);
    other.exec('BEGIN IMMEDIATE');
    await expect(store.createJobs([job])).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
    other.exec('ROLLBACK');
    expect(await store.countJobs({})).toBe(0);
    // The lock is free again: the next write goes through.
    await store.createJobs([job]);
    expect(await store.countJobs({})).toBe(1);
  });
});
