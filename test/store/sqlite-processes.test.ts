/**
 * SQLite with real OS processes: exclusive claims across processes sharing one file,
 * and no committed job lost when a writer is killed with SIGKILL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { spawnTs, watchLines, whileRunning } from '../helpers/processes.js';

const dirs: string[] = [];
function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-proc-'));
  dirs.push(dir);
  return join(dir, 'conveyor.db');
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('sqlite store across processes', () => {
  it('never lets two processes claim the same job: 10,000 jobs claimed 10 at a time, each exactly once', async () => {
    const path = tempDb();
    const store = createSqliteStore({ path });
    for (let i = 0; i < 10; i++) {
      await store.createJobs(
        Array.from({ length: 1000 }, (_, j) => ({ type: 'noop', parameters: { n: i * 1000 + j }, maxAttempts: 1, ownerId: 'p' })),
      );
    }
    const workers = ['w1', 'w2'].map((id) => {
      const child = spawnTs('test/helpers/claim-worker.ts', [path, id]);
      const lines: string[] = [];
      let ready: () => void = () => {};
      const isReady = new Promise<void>((resolve) => {
        ready = resolve;
      });
      const exited = watchLines(child, (line) => {
        if (line === 'ready') ready();
        else lines.push(line);
      });
      return { child, lines, isReady, exited };
    });
    await Promise.all(workers.map((w) => whileRunning(w.isReady, w.exited)));
    for (const w of workers) w.child.stdin.write('go\n');
    const results = await Promise.all(workers.map((w) => w.exited));
    for (const r of results) expect(r.stderr).toBe('');
    expect(results.map((r) => r.code)).toEqual([0, 0]);

    const claimed = workers.map((w) => JSON.parse(w.lines[0] as string) as string[]);
    const all = claimed.flat();
    expect(all).toHaveLength(10_000);
    expect(new Set(all).size).toBe(10_000);
    // Both processes really competed for the same queue.
    expect(claimed[0]?.length).toBeGreaterThan(0);
    expect(claimed[1]?.length).toBeGreaterThan(0);
    expect(await store.countJobs({ status: ['COMPLETED'] })).toBe(10_000);
    const sample = await store.getJobs(all.slice(0, 200));
    expect(sample.every((job) => job?.attempts === 1 && job.leaseToken === 1)).toBe(true);
    await store.close();
  });

  it('loses no committed job when the writing process is killed with SIGKILL', async () => {
    const path = tempDb();
    const child = spawnTs('test/helpers/insert-loop.ts', [path]);
    const committed: string[] = [];
    let enough: () => void = () => {};
    const gotEnough = new Promise<void>((resolve) => {
      enough = resolve;
    });
    const exited = watchLines(child, (line) => {
      committed.push(line);
      if (committed.length >= 2000) enough();
    });
    await whileRunning(gotEnough, exited);
    child.kill('SIGKILL');
    const result = await exited;
    expect(result.signal).toBe('SIGKILL');

    const store = createSqliteStore({ path });
    const integrity = store.connection.pragma('integrity_check', { simple: true });
    expect(integrity).toBe('ok');
    const found = await store.getJobs(committed);
    const missing = committed.filter((_, i) => found[i] === null);
    expect(missing).toEqual([]);
    // The process was killed mid-loop, so it usually committed more than it reported.
    expect(await store.countJobs({})).toBeGreaterThanOrEqual(committed.length);
    await store.close();
  });
});
