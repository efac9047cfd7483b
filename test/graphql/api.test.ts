/** Queries and mutations through real HTTP against a real server (SQLite file, worker). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resultsDir } from '../../src/config.js';
import { gqlOk, startApi, type TestApi } from '../helpers/api.js';

let api: TestApi;

afterEach(async () => {
  await api?.stop();
});

// biome-ignore lint/suspicious/noExplicitAny: test payloads are read loosely
type Data = Record<string, any>;

const ok = (query: string, variables: Record<string, unknown> = {}, headers?: Record<string, string>) =>
  gqlOk<Data>(api, query, variables, headers);

async function errorCode(query: string, variables: Record<string, unknown> = {}, headers?: Record<string, string>) {
  const { status, body } = await api.gql(query, variables, headers);
  expect(status).toBeLessThan(500);
  return body.errors?.[0]?.extensions?.code;
}

const SUBMIT = `mutation ($input: SubmitJobInput!) { submitJob(input: $input) { created job { id type status parameters priority maxAttempts ownerId track webhook { url } } } }`;

describe('queries and mutations', () => {
  it('submits a job, runs it, and reads it back with its results, logs and progress', async () => {
    api = await startApi();
    const { submitJob } = await ok(SUBMIT, { input: { type: 'echo', parameters: { text: 'hello', track: 'ai' }, priority: 3 } });
    expect(submitJob).toMatchObject({
      created: true,
      job: {
        type: 'echo',
        status: 'PENDING',
        parameters: { text: 'hello', track: 'ai' },
        priority: 3,
        ownerId: 'alice',
        track: 'ai',
        webhook: null,
      },
    });
    const id = submitJob.job.id;
    await expect.poll(async () => (await ok('query ($id: ID!) { job(id: $id) { status } }', { id })).job.status).toBe('COMPLETED');
    const { job } = await ok(
      'query ($id: ID!) { job(id: $id) { status results { data } attempts progress { percent step } logs { seq level message } startedAt finishedAt } }',
      { id },
    );
    expect(job).toMatchObject({
      status: 'COMPLETED',
      results: { data: { text: 'hello' } },
      attempts: 1,
      progress: { percent: 50, step: 'echo' },
    });
    expect(job.logs).toEqual([
      expect.objectContaining({ level: 'info', message: expect.stringMatching(/^claimed by worker .+ \(attempt 1 of \d+\)$/) }),
      expect.objectContaining({ level: 'info', message: 'echo hello' }),
      expect.objectContaining({ level: 'info', message: expect.stringMatching(/^completed in \d+ ms$/) }),
    ]);
    expect(new Date(job.finishedAt).getTime()).toBeGreaterThanOrEqual(new Date(job.startedAt).getTime());
  });

  it('idempotency keys return the same job for the same input and CONFLICT for other input', async () => {
    api = await startApi({ role: 'api' });
    const input = { type: 'echo', parameters: { text: 'a' }, idempotencyKey: 'k-1' };
    const first = (await ok(SUBMIT, { input })).submitJob;
    const again = (await ok(SUBMIT, { input })).submitJob;
    expect(again).toMatchObject({ created: false, job: { id: first.job.id } });
    expect(await errorCode(SUBMIT, { input: { ...input, parameters: { text: 'b' } } })).toBe('CONFLICT');
    const batch = { name: 'b', jobs: [{ type: 'echo' }], idempotencyKey: 'k-2' };
    const q = 'mutation ($input: SubmitBatchInput!) { submitBatch(input: $input) { created batch { id } } }';
    const b1 = (await ok(q, { input: batch })).submitBatch;
    const b2 = (await ok(q, { input: batch })).submitBatch;
    expect(b2).toEqual({ created: false, batch: b1.batch });
  });

  it('refuses idempotency keys and correlation ids longer than 200 characters or with control characters, with BAD_USER_INPUT', async () => {
    api = await startApi({ role: 'api' });
    const BATCH = 'mutation ($input: SubmitBatchInput!) { submitBatch(input: $input) { batch { id } } }';
    const refused = async (query: string, input: Record<string, unknown>, field: string) => {
      const { status, body } = await api.gql(query, { input });
      expect(status, field).toBe(200);
      expect(body.errors?.[0]?.extensions, JSON.stringify(input)).toMatchObject({ code: 'BAD_USER_INPUT', field, limit: 200 });
    };
    for (const bad of ['k'.repeat(201), 'line\nbreak', 'bell\u0007', 'nul\u0000', 'c1\u0085', 'bidi\u202e', 'sep\u2028']) {
      await refused(SUBMIT, { type: 'echo', idempotencyKey: bad }, 'idempotencyKey');
      await refused(SUBMIT, { type: 'echo', correlationId: bad }, 'job.correlationId');
      await refused(BATCH, { name: 'b', jobs: [{ type: 'echo' }], idempotencyKey: bad }, 'idempotencyKey');
      await refused(BATCH, { name: 'b', jobs: [{ type: 'echo' }, { type: 'echo', correlationId: bad }] }, 'jobs[1].correlationId');
    }
    expect(await api.conveyor.store.countJobs({})).toBe(0);
    // 200 printable characters, any script, are fine.
    const fine = `${'k'.repeat(190)}ключ-鍵 é`;
    expect(fine.length).toBeLessThanOrEqual(200);
    await ok(SUBMIT, { input: { type: 'echo', idempotencyKey: fine, correlationId: fine } });
  });

  it('lists jobs with filters, Relay pages and totalCount', async () => {
    api = await startApi({ role: 'api' });
    for (let i = 0; i < 5; i++)
      await ok(SUBMIT, { input: { type: 'echo', parameters: { text: `t${i}`, track: i % 2 === 0 ? 'even' : 'odd' } } });
    await ok(SUBMIT, { input: { type: 'gate', parameters: { key: 'x' } } });
    const page = `query ($after: String, $filter: JobFilter) { jobs(first: 2, after: $after, filter: $filter) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id type track } } } }`;
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const { jobs } = await ok(page, { after, filter: { type: ['echo'] } });
      expect(jobs.totalCount).toBe(5);
      seen.push(...jobs.edges.map((e: Data) => e.node.id));
      expect(jobs.edges.at(-1).cursor).toBe(jobs.pageInfo.endCursor);
      if (!jobs.pageInfo.hasNextPage) break;
      after = jobs.pageInfo.endCursor;
    }
    expect(seen).toHaveLength(5);
    expect(new Set(seen).size).toBe(5);
    expect([...seen].sort().reverse()).toEqual(seen); // newest first
    expect((await ok(page, { filter: { track: 'even' } })).jobs.totalCount).toBe(3);
    expect((await ok(page, { filter: { status: ['COMPLETED'] } })).jobs.totalCount).toBe(0);
    expect((await ok(page, { filter: { createdAfter: '2000-01-01T00:00:00Z', ownerId: 'alice' } })).jobs.totalCount).toBe(6);
    expect((await ok(page, { filter: { createdBefore: '2000-01-01T00:00:00Z' } })).jobs.totalCount).toBe(0);
  });

  it('batches: submit, jobs connection, counts, pause/resume, archive filters, cancel, restart failed, delete', async () => {
    api = await startApi();
    const { submitBatch } = await ok(
      `mutation ($input: SubmitBatchInput!) { submitBatch(input: $input) { batch { id name status active metadata counts { total pending } } } }`,
      {
        input: {
          name: 'conference',
          active: false,
          metadata: { year: 2026 },
          jobs: [
            { type: 'gate', parameters: { key: 'ok' } },
            { type: 'gate', parameters: { key: 'bad', fail: true } },
            { type: 'gate', parameters: { key: 'slow' } },
          ],
        },
      },
    );
    const id = submitBatch.batch.id;
    expect(submitBatch.batch).toMatchObject({
      name: 'conference',
      status: 'PENDING',
      active: false,
      metadata: { year: 2026 },
      counts: { total: 3, pending: 3 },
    });
    const read = async () =>
      (
        await ok(
          'query ($id: ID!) { batch(id: $id) { status active archived counts { pending processing completed failed cancelled } jobs { totalCount edges { node { id status parameters } } } } }',
          { id },
        )
      ).batch;
    expect((await read()).jobs.totalCount).toBe(3);
    await ok('mutation ($id: ID!) { setBatchActive(id: $id, active: true) { active } }', { id });
    api.gates.open('ok');
    api.gates.open('bad');
    await expect.poll(async () => (await read()).counts, { timeout: 10_000 }).toMatchObject({ completed: 1, failed: 1, processing: 1 });
    const cancelled = (await ok('mutation ($id: ID!) { cancelBatch(id: $id) { id } }', { id })).cancelBatch;
    expect(cancelled.id).toBe(id);
    await expect.poll(async () => (await read()).status, { timeout: 10_000 }).toBe('PARTIAL');
    expect((await read()).counts).toMatchObject({ completed: 1, failed: 1, cancelled: 1 });

    // Only the failed job runs again; it fails again (permanent error), the cancelled one stays.
    const restarted = (await ok('mutation ($id: ID!) { restartBatch(id: $id) { counts { pending failed cancelled } } }', { id }))
      .restartBatch;
    expect(restarted.counts).toMatchObject({ failed: 0, cancelled: 1 });
    await expect.poll(async () => (await read()).counts.failed, { timeout: 10_000 }).toBe(1);

    await ok('mutation ($id: ID!) { archiveBatch(id: $id) { archived } }', { id });
    const list = 'query ($filter: BatchFilter) { batches(filter: $filter) { totalCount edges { node { id archived } } } }';
    expect((await ok(list)).batches.totalCount).toBe(0);
    expect((await ok(list, { filter: { archived: true } })).batches.totalCount).toBe(1);
    expect((await ok(list, { filter: { archived: null } })).batches.edges[0].node).toEqual({ id, archived: true });
    expect(await ok('mutation ($id: ID!) { deleteBatch(id: $id) }', { id })).toEqual({ deleteBatch: id });
    expect((await ok('query ($id: ID!) { batch(id: $id) { id } }', { id })).batch).toBeNull();
  });

  it('cancels, restarts and deletes a job; changes its access control', async () => {
    api = await startApi();
    const id = (await ok(SUBMIT, { input: { type: 'gate', parameters: { key: 'c' } } })).submitJob.job.id;
    await expect.poll(async () => (await ok('query ($id: ID!) { job(id: $id) { status } }', { id })).job.status).toBe('PROCESSING');
    expect((await ok('mutation ($id: ID!) { cancelJob(id: $id) { cancelRequested } }', { id })).cancelJob.cancelRequested).toBe(true);
    await expect.poll(async () => (await ok('query ($id: ID!) { job(id: $id) { status } }', { id })).job.status).toBe('CANCELLED');
    api.gates.open('c');
    expect((await ok('mutation ($id: ID!) { restartJob(id: $id) { status attempts } }', { id })).restartJob).toEqual({
      status: 'PENDING',
      attempts: 0,
    });
    await expect.poll(async () => (await ok('query ($id: ID!) { job(id: $id) { status } }', { id })).job.status).toBe('COMPLETED');

    const bob = { 'x-user-id': 'bob' };
    expect((await ok('query ($id: ID!) { job(id: $id) { id } }', { id }, bob)).job).toBeNull();
    const access = await ok(
      'mutation ($id: ID!) { setJobAccess(id: $id, accessControl: { read: ["user:bob"] }) { accessControl { visibility read write admin } } }',
      { id },
    );
    expect(access.setJobAccess.accessControl).toEqual({ visibility: 'PRIVATE', read: ['user:bob'], write: [], admin: [] });
    expect((await ok('query ($id: ID!) { job(id: $id) { id } }', { id }, bob)).job).toEqual({ id });
    expect(await errorCode('mutation ($id: ID!) { setJobAccess(id: $id, accessControl: { read: ["bob"] }) { id } }', { id })).toBe(
      'BAD_USER_INPUT',
    );

    expect(await ok('mutation ($id: ID!) { deleteJob(id: $id) }', { id })).toEqual({ deleteJob: id });
    expect((await ok('query ($id: ID!) { job(id: $id) { id } }', { id })).job).toBeNull();
    expect(await errorCode('mutation ($id: ID!) { deleteJob(id: $id) }', { id })).toBe('NOT_FOUND');
  });

  it('deletes a job and a batch together with their result files', async () => {
    api = await startApi();
    const folder = (jobId: string) => join(resultsDir(api.conveyor.config), jobId);
    const job = (await ok(SUBMIT, { input: { type: 'files', parameters: { title: 'one' } } })).submitJob.job.id;
    const batch = (
      await ok('mutation ($input: SubmitBatchInput!) { submitBatch(input: $input) { batch { id } } }', {
        input: {
          name: 'two',
          jobs: [
            { type: 'files', parameters: { title: 'a' } },
            { type: 'files', parameters: { title: 'b' } },
          ],
        },
      })
    ).submitBatch.batch.id;
    const inBatch = (await api.conveyor.store.listJobs({ batchId: batch }, { first: 10 })).items.map((j) => j.id);
    await expect.poll(async () => api.conveyor.store.countJobs({ status: ['COMPLETED'] })).toBe(3);
    for (const id of [job, ...inBatch]) expect(existsSync(join(folder(id), 'report.md')), id).toBe(true);

    expect(await ok('mutation ($id: ID!) { deleteJob(id: $id) }', { id: job })).toEqual({ deleteJob: job });
    expect(existsSync(folder(job))).toBe(false);
    expect(await ok('mutation ($id: ID!) { deleteBatch(id: $id) }', { id: batch })).toEqual({ deleteBatch: batch });
    for (const id of inBatch) expect(existsSync(folder(id)), id).toBe(false);
    expect(await api.conveyor.results.folders('job_')).toEqual([]);
  });

  it('answers stats, jobTypes and viewer', async () => {
    api = await startApi();
    await ok(SUBMIT, { input: { type: 'echo', parameters: { track: 'ml' } } });
    await ok(SUBMIT, { input: { type: 'gate', parameters: { key: 'never' } } });
    await expect.poll(async () => (await ok('{ stats { byStatus { completed } } }')).stats.byStatus.completed).toBe(1);
    const { stats, jobTypes, viewer } = await ok(
      `{
      stats { byStatus { pending processing completed total } byType { key total completed processing } byTrack { key total }
              queueDepth finishedLastHour avgDurationMs p95DurationMs throughputPerMinute }
      jobTypes { name description parameterSchema defaults }
      viewer { userId teams admin authenticated authMode } }`,
      {},
      { 'x-user-id': 'alice', 'x-team-ids': 'red, blue' },
    );
    expect(stats.byStatus).toMatchObject({ completed: 1, processing: 1, total: 2 });
    expect(stats.byType).toEqual([
      { key: 'echo', total: 1, completed: 1, processing: 0 },
      { key: 'gate', total: 1, completed: 0, processing: 1 },
    ]);
    expect(stats.byTrack).toEqual([{ key: 'ml', total: 1 }]);
    expect(stats.finishedLastHour).toBe(1);
    expect(stats.p95DurationMs).toBeGreaterThanOrEqual(0);
    expect(jobTypes.map((t: Data) => t.name).sort()).toEqual(['echo', 'files', 'flaky', 'gate', 'markdown', 'pdf', 'review', 'session']);
    const gate = jobTypes.find((t: Data) => t.name === 'gate');
    expect(gate.parameterSchema).toMatchObject({ type: 'object', properties: { key: { type: 'string' } }, required: ['key'] });
    expect(gate.defaults).toEqual({ maxAttempts: 1 });
    expect(viewer).toEqual({ userId: 'alice', teams: ['red', 'blue'], admin: false, authenticated: true, authMode: 'header' });
    const anonymous = await ok('{ viewer { userId authenticated } stats { byStatus { total } } }', {}, {});
    expect(anonymous).toEqual({ viewer: { userId: null, authenticated: false }, stats: { byStatus: { total: 0 } } });
  });
});
