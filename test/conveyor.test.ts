/** The programmatic API: createConveyor with handlers given in code or listed in config. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import wordCount from '../examples/word-count.js';
import { loadConfig } from '../src/config.js';
import { type Conveyor, createConveyor } from '../src/conveyor.js';
import type { Job, Principal } from '../src/domain/types.js';
import type { AppError } from '../src/errors.js';

const alice: Principal = { userId: 'alice', teams: ['red'], admin: false };
const dirs: string[] = [];
const running: Conveyor[] = [];

function config(overrides: Record<string, unknown> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'conveyor-api-'));
  dirs.push(dataDir);
  return loadConfig({
    file: null,
    env: {},
    overrides: { dataDir, 'server.port': 0, 'log.level': 'error', 'retention.intervalMs': 0, ...overrides },
  });
}

async function until(conveyor: Conveyor, id: string): Promise<Job> {
  const after = await conveyor.store.headCursor();
  const now = await conveyor.client.getJob(id);
  if (now?.status === 'COMPLETED' || now?.status === 'FAILED') return now;
  for await (const change of conveyor.store.watch({ after })) {
    if (change.id === id && (change.status === 'COMPLETED' || change.status === 'FAILED')) break;
  }
  return (await conveyor.client.getJob(id)) as Job;
}

async function code(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'ok',
    (error: AppError) => `${error.code}: ${error.message}`,
  );
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('createConveyor', () => {
  it('runs a job type given in code, as worker only', async () => {
    const conveyor = await createConveyor({ config: config(), handlers: [wordCount] });
    running.push(conveyor);
    expect(conveyor.registry.types).toEqual(['pdf', 'session', 'word-count']);
    const { url, worker } = await conveyor.start('worker');
    expect(worker).not.toBeNull();
    // A worker-only process serves health and metrics, not the API.
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect((await fetch(`${url}/metrics`)).status).toBe(200);
    expect((await fetch(`${url}/graphql`, { method: 'POST' })).status).toBe(404);
    const { value } = await conveyor.client.submitJob({ type: 'word-count', parameters: { text: 'a b a' } }, alice);
    expect(value).toMatchObject({ ownerId: 'alice', teamIds: ['red'], maxAttempts: 2, parameters: { text: 'a b a', top: 10 } });
    const done = await until(conveyor, value.id);
    expect(done).toMatchObject({ status: 'COMPLETED', results: { words: 3, distinct: 2 } });
  });

  it('loads job types from handlers.modules and serves HTTP in the "all" role', async () => {
    const conveyor = await createConveyor({ config: config({ 'handlers.modules': ['examples/word-count.ts'] }) });
    running.push(conveyor);
    const { url } = await conveyor.start();
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const { value } = await conveyor.client.submitBatch(
      { name: 'counts', jobs: [{ type: 'word-count', parameters: { text: 'x y' } }] },
      alice,
    );
    expect((await until(conveyor, value.jobs[0]?.id as string)).status).toBe('COMPLETED');
    expect((await conveyor.client.getBatch(value.batch.id))?.status).toBe('COMPLETED');
    expect(conveyor.registry.describe().find((t) => t.type === 'word-count')?.parameterSchema).toMatchObject({
      type: 'object',
      required: ['text'],
    });
  });

  it('refuses bad submits before anything is stored', async () => {
    const conveyor = await createConveyor({ config: config({ 'limits.maxBatchSize': 3 }), handlers: [wordCount] });
    running.push(conveyor);
    expect(await code(conveyor.client.submitJob({ type: 'nope' }, alice))).toMatch(/^BAD_USER_INPUT: unknown job type "nope"/);
    expect(await code(conveyor.client.submitJob({ type: 'word-count', parameters: { text: '' } }, alice))).toMatch(
      /^BAD_USER_INPUT: job\.parameters\.text:/,
    );
    expect(
      await code(conveyor.client.submitJob({ type: 'word-count', parameters: { text: 'a' } }, { userId: null, teams: [], admin: false })),
    ).toMatch(/^UNAUTHENTICATED: anonymous/);
    const jobs = Array.from({ length: 4 }, () => ({ type: 'word-count', parameters: { text: 'a' } }));
    expect(await code(conveyor.client.submitBatch({ name: 'big', jobs }, alice))).toMatch(/^LIMIT_EXCEEDED: a batch holds at most 3 jobs/);
    const mixed = [
      { type: 'word-count', parameters: { text: 'a' } },
      { type: 'word-count', parameters: { top: 0 } },
    ];
    expect(await code(conveyor.client.submitBatch({ name: 'mixed', jobs: mixed }, alice))).toMatch(
      /^BAD_USER_INPUT: jobs\[1\]\.parameters\.text/,
    );
    expect(await conveyor.store.countJobs({})).toBe(0);
  });

  it('refuses two handlers for one type and a module without definitions', async () => {
    expect(await code(createConveyor({ config: config({ 'handlers.modules': ['examples/word-count.ts'] }), handlers: [wordCount] }))).toBe(
      'CONFIG_INVALID: two handlers are registered for job type "word-count"',
    );
    expect(await code(createConveyor({ config: config({ 'handlers.modules': ['src/log.ts'] }) }))).toMatch(
      /^CONFIG_INVALID: handler module src\/log\.ts must export/,
    );
    expect(await code(createConveyor({ config: config({ 'handlers.modules': ['./nowhere.js'] }) }))).toMatch(
      /^CONFIG_INVALID: handlers\.modules: cannot load \.\/nowhere\.js/,
    );
  });
});
