/**
 * Child process for the multi-process claim test: waits for "go" on stdin, then claims
 * jobs from the SQLite file in batches (up to 10 per claim) and completes each batch in
 * one group commit that also claims the next batch, as a worker does (a turn of the
 * event loop between commits), until none is left; prints the ids it claimed as one JSON
 * line.
 */
import type { Job } from '../../src/domain/types.js';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const [path, workerId] = process.argv.slice(2) as [string, string];
const store = createSqliteStore({ path, busyTimeoutMs: 30_000 });
const request = { workerId, leaseMs: 60_000 };
process.stdout.write('ready\n');
process.stdin.once('data', async () => {
  const claimed: string[] = [];
  let jobs: Job[] = await store.claim(request, 10);
  while (jobs.length > 0) {
    claimed.push(...jobs.map((job) => job.id));
    const writes = jobs.map((job) => ({
      kind: 'complete' as const,
      token: { jobId: job.id, workerId, leaseToken: job.leaseToken },
      results: { by: workerId },
    }));
    await new Promise((resolve) => setImmediate(resolve));
    const { written, claimed: next } = await store.commitWrites(writes, { request, limit: 10 });
    const refused = written.find((w) => w instanceof Error);
    if (refused !== undefined) throw refused;
    jobs = next;
  }
  await store.close();
  // Exit only once the line is flushed: stdout is an asynchronous pipe here.
  process.stdout.write(`${JSON.stringify(claimed)}\n`, () => process.exit(0));
});
