/**
 * Child process for the multi-process claim test: waits for "go" on stdin, then
 * claims and completes jobs from the SQLite file until none is left, and prints the
 * ids it claimed as one JSON line.
 */
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const [path, workerId] = process.argv.slice(2) as [string, string];
const store = createSqliteStore({ path, busyTimeoutMs: 30_000 });
process.stdout.write('ready\n');
process.stdin.once('data', async () => {
  const claimed: string[] = [];
  for (;;) {
    const job = await store.claimNext({ workerId, leaseMs: 60_000 });
    if (job === null) break;
    claimed.push(job.id);
    await store.complete({ jobId: job.id, workerId, leaseToken: job.leaseToken }, { by: workerId });
  }
  await store.close();
  // Exit only once the line is flushed: stdout is an asynchronous pipe here.
  process.stdout.write(`${JSON.stringify(claimed)}\n`, () => process.exit(0));
});
