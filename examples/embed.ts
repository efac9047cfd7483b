/**
 * Embedding Conveyor in another Node service with the programmatic API:
 *
 *   npx tsx examples/embed.ts
 *
 * Starts a worker (no HTTP) on a throwaway SQLite file, submits a job of a custom
 * type, waits for it through the change feed, prints the result, and stops.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConveyor, loadConfig } from '../src/index.js';
import wordCount from './word-count.js';

const dataDir = mkdtempSync(join(tmpdir(), 'conveyor-example-'));
const conveyor = await createConveyor({
  config: loadConfig({ file: null, env: {}, overrides: { dataDir, 'log.level': 'warn' } }),
  handlers: [wordCount],
});
await conveyor.start('worker');

const me = { userId: 'example', teams: [], admin: false };
const cursor = await conveyor.store.headCursor();
const { value: job } = await conveyor.client.submitJob({ type: 'word-count', parameters: { text: 'the quick fox jumps over the lazy dog the end' } }, me);

for await (const change of conveyor.store.watch({ after: cursor })) {
  if (change.id === job.id && (change.status === 'COMPLETED' || change.status === 'FAILED')) break;
}
const done = await conveyor.client.getJob(job.id);
console.log(done?.status, done?.results);
console.log((await conveyor.results.read(job.id, 'counts.json'))?.toString());
await conveyor.stop();
