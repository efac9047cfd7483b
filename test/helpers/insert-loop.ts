/**
 * Child process for the crash test: inserts jobs in a loop (single and bulk inserts)
 * and prints each id only after its transaction committed, until it is killed.
 */
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const [path] = process.argv.slice(2) as [string];
const store = createSqliteStore({ path });
for (let round = 0; ; round++) {
  const count = round % 2 === 0 ? 1 : 50;
  const created = await store.createJobs(
    Array.from({ length: count }, (_, i) => ({
      type: 'noop',
      parameters: { round, i, pad: 'x'.repeat(200) },
      maxAttempts: 1,
      ownerId: 'crash',
    })),
  );
  process.stdout.write(`${created.map((c) => c.value.id).join('\n')}\n`);
}
