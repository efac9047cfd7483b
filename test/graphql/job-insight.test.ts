/**
 * What a job and a batch tell about their runs, through real GraphQL: worker ids,
 * lifecycle lines in the job's log, usage and timing, error details, the retrying
 * state, edits of waiting jobs, shared batch parameters, batch monitoring, result file
 * kinds, and what webhook payloads carry for simple receivers.
 */
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { JobFailure, PermanentJobError } from '../../src/errors.js';
import { defineHandler } from '../../src/handlers/registry.js';
import { gqlOk, startApi, subscribe, type TestApi } from '../helpers/api.js';
import { type Receiver, startReceiver } from '../helpers/receiver.js';

let api: TestApi;
let receiver: Receiver | undefined;

afterEach(async () => {
  await api?.stop();
  await receiver?.close();
  receiver = undefined;
});

// biome-ignore lint/suspicious/noExplicitAny: test payloads are read loosely
type Data = Record<string, any>;

const ok = (query: string, variables: Record<string, unknown> = {}, headers?: Record<string, string>) =>
  gqlOk<Data>(api, query, variables, headers);

async function failure(query: string, variables: Record<string, unknown> = {}, headers?: Record<string, string>) {
  const { status, body } = await api.gql(query, variables, headers);
  expect(status).toBeLessThan(500);
  return { code: body.errors?.[0]?.extensions?.code, message: body.errors?.[0]?.message ?? '' };
}

/** Job types of these tests: one that reports usage (and may fail its first attempt), one that always fails. */
const handlers = [
  defineHandler({
    type: 'metered',
    parameters: z.strictObject({ failFirst: z.boolean().default(false) }),
    async run(p, ctx) {
      ctx.usage({ inputTokens: 10, outputTokens: 5, costUsd: 0.002, model: 'test-model' });
      if (p.failFirst && ctx.attempt === 1) throw new JobFailure('FLAKY', 'try again', { details: { step: 'first' } });
      return { answer: 42 };
    },
    defaults: { maxAttempts: 2 },
  }),
  defineHandler({
    type: 'broken',
    parameters: z.strictObject({}),
    async run() {
      throw new PermanentJobError('BROKEN', 'cannot do it', { details: { status: 404, url: 'https://example.org/x' } });
    },
  }),
];

const SUBMIT = 'mutation ($input: SubmitJobInput!) { submitJob(input: $input) { job { id } } }';
const SUBMIT_BATCH = 'mutation ($input: SubmitBatchInput!) { submitBatch(input: $input) { batch { id } } }';

async function submit(input: Record<string, unknown>): Promise<string> {
  return (await ok(SUBMIT, { input })).submitJob.job.id;
}

async function jobStatus(id: string): Promise<string> {
  return (await ok('query ($id: ID!) { job(id: $id) { status } }', { id })).job.status;
}

const CLAIMED = /^claimed by worker (\S+) \(attempt (\d+) of (\d+)\)$/;

describe('what jobs and batches tell about their runs', () => {
  it('records the worker, lifecycle lines, usage summed over attempts, duration, and a batch summary', async () => {
    api = await startApi({ handlers });
    const batchId = (
      await ok(SUBMIT_BATCH, {
        input: { name: 'metered', jobs: [{ type: 'metered', parameters: { failFirst: true } }, { type: 'metered' }] },
      })
    ).submitBatch.batch.id;
    await expect
      .poll(async () => (await ok('query ($id: ID!) { batch(id: $id) { status } }', { id: batchId })).batch.status)
      .toBe('COMPLETED');
    const { batch } = await ok(
      `query ($id: ID!) { batch(id: $id) {
        summary { durationMs tokens costUsd jobsPerMinute firstStartedAt lastFinishedAt }
        jobs { edges { node { id parameters workerId durationMs startedAt finishedAt
          usage { tokens inputTokens outputTokens costUsd models }
          errors { code workerId details attempt } logs { message level attempt } } } } } }`,
      { id: batchId },
    );
    const jobs = batch.jobs.edges.map((e: Data) => e.node);
    const retried = jobs.find((j: Data) => j.parameters.failFirst === true);
    const plain = jobs.find((j: Data) => j.parameters.failFirst === false);

    // The worker of the last attempt, also named in the log's claim lines and in the error.
    expect(retried.workerId).toEqual(expect.any(String));
    const messages = retried.logs.map((l: Data) => l.message);
    expect(messages).toEqual([
      `claimed by worker ${retried.workerId} (attempt 1 of 2)`,
      expect.stringMatching(/^failed: FLAKY try again \(attempt 1 of 2; next attempt at \d{4}-\d\d-\d\dT.+Z\)$/),
      `claimed by worker ${retried.workerId} (attempt 2 of 2)`,
      expect.stringMatching(/^completed in \d+ ms$/),
    ]);
    expect(retried.logs.map((l: Data) => l.attempt)).toEqual([1, 1, 2, 2]);
    expect(retried.errors).toEqual([{ code: 'FLAKY', workerId: retried.workerId, details: { step: 'first' }, attempt: 1 }]);

    // Usage adds up over attempts; the duration is the successful attempt's.
    expect(retried.usage).toEqual({ tokens: 30, inputTokens: 20, outputTokens: 10, costUsd: 0.004, models: ['test-model'] });
    expect(plain.usage).toMatchObject({ tokens: 15, costUsd: 0.002 });
    expect(retried.durationMs).toBe(new Date(retried.finishedAt).getTime() - new Date(retried.startedAt).getTime());

    // The batch sums its jobs and times first start to last finish.
    expect(batch.summary.tokens).toBe(45);
    expect(batch.summary.costUsd).toBeCloseTo(0.006);
    const firstStart = Math.min(...jobs.map((j: Data) => new Date(j.startedAt).getTime()));
    const lastFinish = Math.max(...jobs.map((j: Data) => new Date(j.finishedAt).getTime()));
    expect(new Date(batch.summary.lastFinishedAt).getTime()).toBe(lastFinish);
    expect(new Date(batch.summary.firstStartedAt).getTime()).toBeLessThanOrEqual(firstStart);
    expect(batch.summary.durationMs).toBe(lastFinish - new Date(batch.summary.firstStartedAt).getTime());
    expect(batch.summary.jobsPerMinute).toBeGreaterThan(0);
  });

  it('a failed job carries its error details and worker, and its log says why', async () => {
    receiver = await startReceiver(() => 404);
    api = await startApi({ handlers, overrides: { 'net.allow': ['127.0.0.1'] } });
    const broken = await submit({ type: 'broken' });
    const download = await submit({ type: 'pdf', parameters: { url: `${receiver.url}/slides.pdf?token=secret` } });
    await expect.poll(() => jobStatus(broken)).toBe('FAILED');
    await expect.poll(() => jobStatus(download)).toBe('FAILED');
    const q = 'query ($id: ID!) { job(id: $id) { workerId retrying error { code retriable workerId details } logs { level message } } }';
    const a = (await ok(q, { id: broken })).job;
    expect(a.error).toEqual({
      code: 'BROKEN',
      retriable: false,
      workerId: a.workerId,
      details: { status: 404, url: 'https://example.org/x' },
    });
    expect(a.retrying).toBe(false);
    expect(a.logs.at(-1)).toEqual({ level: 'error', message: 'failed: BROKEN cannot do it (attempt 1 of 3; not retriable)' });
    const b = (await ok(q, { id: download })).job;
    // The URL without its query string (which may carry a secret), and the status the server answered.
    expect(b.error).toMatchObject({
      code: 'DOWNLOAD_FAILED',
      retriable: false,
      details: { status: 404, url: `${receiver.url}/slides.pdf` },
    });
    expect(b.logs[0].message).toMatch(CLAIMED);
    expect(b.logs.at(-1).message).toMatch(/^failed: DOWNLOAD_FAILED .* answered 404 \(attempt 1 of \d+; not retriable\)$/);
  });

  it('shows a job waiting for its next attempt as retrying, filters on it, and lets it be moved forward', async () => {
    api = await startApi({ overrides: { 'worker.backoff.baseMs': 600_000, 'worker.backoff.maxMs': 600_000 } });
    const id = await submit({ type: 'flaky' });
    const q = 'query ($id: ID!) { job(id: $id) { status retrying nextAttemptAt runAt attempts error { code } } }';
    await expect.poll(async () => (await ok(q, { id })).job.retrying).toBe(true);
    const waiting = (await ok(q, { id })).job;
    expect(waiting).toMatchObject({ status: 'PENDING', attempts: 1, error: { code: 'HANDLER_ERROR' } });
    expect(waiting.nextAttemptAt).toBe(waiting.runAt);
    expect(new Date(waiting.nextAttemptAt).getTime()).toBeGreaterThan(Date.now());
    const count = async (retrying: boolean) =>
      (await ok('query ($r: Boolean) { jobs(filter: { retrying: $r }) { totalCount } }', { r: retrying })).jobs.totalCount;
    await submit({ type: 'gate', parameters: { key: 'other' } });
    expect(await count(true)).toBe(1);
    expect(await count(false)).toBe(1);

    // Moving the next attempt to now runs it at once.
    const moved = (
      await ok('mutation ($id: ID!, $at: DateTime!) { updateJob(id: $id, input: { runAt: $at }) { retrying nextAttemptAt } }', {
        id,
        at: new Date().toISOString(),
      })
    ).updateJob;
    expect(moved.retrying).toBe(true);
    await expect.poll(() => jobStatus(id)).toBe('COMPLETED');
    expect((await ok(q, { id })).job).toMatchObject({ retrying: false, nextAttemptAt: null, attempts: 2 });
    expect(await count(true)).toBe(0);
    api.gates.open('other');
  });

  it('updateJob changes a waiting job with a change event, validates it, and refuses once it has left PENDING', async () => {
    api = await startApi({ role: 'api' });
    const id = await submit({ type: 'echo', parameters: { text: 'a' } });
    const changes = subscribe<{ op: string; version: number; job: { priority: number } }>(
      api.client(),
      'subscription ($id: ID!) { jobUpdated(id: $id) { op version job { priority } } }',
      { id },
      (values) => values.some((v) => v.op === 'UPDATED'),
    );
    await expect.poll(() => changes.values.length).toBe(1);
    const UPDATE = `mutation ($id: ID!, $input: UpdateJobInput!) { updateJob(id: $id, input: $input) {
      priority maxAttempts parameters track runAt version } }`;
    const runAt = '2030-01-01T00:00:00.000Z';
    const { updateJob } = await ok(UPDATE, { id, input: { priority: 5, maxAttempts: 4, runAt, parameters: { text: 'b', track: 'web' } } });
    expect(updateJob).toEqual({ priority: 5, maxAttempts: 4, parameters: { text: 'b', track: 'web' }, track: 'web', runAt, version: 2 });
    const seen = await changes.finished;
    expect(seen.at(-1)).toEqual({ op: 'UPDATED', version: 2, job: { priority: 5 } });
    expect((await ok('{ jobs(filter: { track: "web" }) { totalCount } }')).jobs.totalCount).toBe(1);

    // Parameters are checked against the type; a caller who cannot see the job finds nothing.
    const bad = await failure(UPDATE, { id, input: { parameters: { nope: 1 } } });
    expect(bad.code).toBe('BAD_USER_INPUT');
    expect(bad.message).toContain('input.parameters');
    expect((await failure(UPDATE, { id, input: { maxAttempts: 0 } })).code).toBe('BAD_USER_INPUT');
    expect((await failure(UPDATE, { id, input: { priority: 1 } }, { 'x-user-id': 'bob' })).code).toBe('NOT_FOUND');
    await ok('mutation ($id: ID!) { cancelJob(id: $id) { status } }', { id });
    expect((await failure(UPDATE, { id, input: { priority: 1 } })).code).toBe('CONFLICT');
  });

  it('merges shared batch parameters under each job own ones, and names an invalid job by its index', async () => {
    api = await startApi({ role: 'api' });
    const id = (
      await ok(SUBMIT_BATCH, {
        input: {
          name: 'shared',
          parameters: { text: 'shared', track: 'ai' },
          jobs: [{ type: 'echo' }, { type: 'echo', parameters: { text: 'own' } }],
        },
      })
    ).submitBatch.batch.id;
    const { batch } = await ok('query ($id: ID!) { batch(id: $id) { jobs { edges { node { parameters track } } } } }', { id });
    expect(batch.jobs.edges.map((e: Data) => e.node.parameters.text).sort()).toEqual(['own', 'shared']);
    expect(batch.jobs.edges.every((e: Data) => e.node.track === 'ai')).toBe(true);

    const bad = await failure(SUBMIT_BATCH, {
      input: { name: 'bad', parameters: { text: 'x' }, jobs: [{ type: 'echo' }, { type: 'gate', parameters: { key: 'k' } }] },
    });
    expect(bad.code).toBe('BAD_USER_INPUT');
    expect(bad.message).toMatch(/^jobs\[1\]\.parameters/);
    expect((await failure(SUBMIT_BATCH, { input: { name: 'x', parameters: [1], jobs: [{ type: 'echo' }] } })).code).toBe('BAD_USER_INPUT');
  });

  it('webhook payloads carry success and the correlationId, and usage and duration with includeMetadata', async () => {
    receiver = await startReceiver(() => 200);
    api = await startApi({ handlers, overrides: { 'webhooks.allowHttp': true, 'net.allow': ['127.0.0.1'] } });
    const done = await submit({
      type: 'metered',
      correlationId: 'order-42',
      webhook: { url: receiver.url, includeMetadata: true },
    });
    const failed = await submit({ type: 'broken', correlationId: 'order-43', webhook: { url: receiver.url } });
    await expect.poll(() => receiver?.requests.length).toBe(2);
    const bodies = (receiver as Receiver).requests.map((r) => JSON.parse(r.body) as Data);
    const completed = bodies.find((b) => b.jobId === done) as Data;
    expect(completed).toMatchObject({ type: 'job.completed', success: true, correlationId: 'order-42', status: 'COMPLETED' });
    expect(completed.data.usage).toMatchObject({ tokens: 15, costUsd: 0.002, models: ['test-model'] });
    expect(completed.data.durationMs).toEqual(expect.any(Number));
    const fail = bodies.find((b) => b.jobId === failed) as Data;
    expect(fail).toMatchObject({
      type: 'job.failed',
      success: false,
      correlationId: 'order-43',
      error: { code: 'BROKEN', retriable: false, details: { status: 404 } },
    });
    expect(fail.data.usage).toBeUndefined();
    expect((await ok('query ($id: ID!) { job(id: $id) { correlationId } }', { id: done })).job.correlationId).toBe('order-42');
    expect((await failure(SUBMIT, { input: { type: 'echo', correlationId: 'x'.repeat(201) } })).code).toBe('BAD_USER_INPUT');
  });

  it('filters batches by status and counts total, active and processing batches', async () => {
    api = await startApi();
    const gates = (keys: string[]) => keys.map((key) => ({ type: 'gate', parameters: { key } }));
    const running = (await ok(SUBMIT_BATCH, { input: { name: 'running', jobs: gates(['r1', 'r2']) } })).submitBatch.batch.id;
    const paused = (await ok(SUBMIT_BATCH, { input: { name: 'paused', active: false, jobs: gates(['p1']) } })).submitBatch.batch.id;
    const status = async (id: string) => (await ok('query ($id: ID!) { batch(id: $id) { status } }', { id })).batch.status;
    await expect.poll(() => status(running)).toBe('PROCESSING');
    const STATS = '{ stats { batches { total active processing } } }';
    expect((await ok(STATS)).stats.batches).toEqual({ total: 2, active: 1, processing: 1 });
    const ids = async (statuses: string[]) =>
      (
        await ok('query ($s: [BatchStatus!]) { batches(filter: { status: $s }) { edges { node { id } } } }', { s: statuses })
      ).batches.edges.map((e: Data) => e.node.id);
    expect(await ids(['PROCESSING'])).toEqual([running]);
    expect(await ids(['PENDING'])).toEqual([paused]);
    api.gates.open('r1');
    api.gates.open('r2');
    await expect.poll(() => status(running)).toBe('COMPLETED');
    expect(await ids(['COMPLETED', 'PENDING'])).toEqual([paused, running]);
    expect((await ok(STATS)).stats.batches).toEqual({ total: 2, active: 0, processing: 0 });
    expect((await ok(STATS, {}, { 'x-user-id': 'bob' })).stats.batches).toEqual({ total: 0, active: 0, processing: 0 });
  });

  it('testWebhook sends one signed webhook.test event through the guard and answers what came back, rate-limited per caller', async () => {
    receiver = await startReceiver((_request, index) => (index === 0 ? { status: 200, body: 'hello from the receiver' } : 503));
    api = await startApi({
      role: 'api',
      overrides: { 'webhooks.allowHttp': true, 'net.allow': ['127.0.0.1'], 'webhooks.testsPerMinute': 3 },
    });
    const TEST = `mutation ($url: String!, $secret: String, $token: String, $headers: JSON) {
      testWebhook(url: $url, secret: $secret, token: $token, headers: $headers) { ok webhookId at statusCode error durationMs responseSnippet } }`;
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const first = (await ok(TEST, { url: receiver.url, secret, token: 't0k', headers: { 'x-tenant': 'acme' } })).testWebhook;
    expect(first).toMatchObject({ ok: true, statusCode: 200, error: null, responseSnippet: 'hello from the receiver' });
    expect(first.durationMs).toEqual(expect.any(Number));
    const [request] = receiver.requests;
    const headers = {
      'webhook-id': request?.headers['webhook-id'] as string,
      'webhook-timestamp': request?.headers['webhook-timestamp'] as string,
      'webhook-signature': request?.headers['webhook-signature'] as string,
    };
    expect(headers['webhook-id']).toBe(first.webhookId);
    expect(new Webhook(secret).verify(request?.body as string, headers)).toMatchObject({ type: 'webhook.test', success: true });
    expect(request?.headers).toMatchObject({ authorization: 'Bearer t0k', 'x-callback-token': 't0k', 'x-tenant': 'acme' });

    expect((await ok(TEST, { url: receiver.url })).testWebhook).toMatchObject({ ok: false, statusCode: 503, error: 'HTTP_503' });
    // The SSRF guard: an address outside net.allow is refused before anything is sent (and is not counted).
    const refused = await failure(TEST, { url: 'http://10.1.2.3/hook' });
    expect(refused).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('refusing to connect to 10.1.2.3') });
    expect((await ok(TEST, { url: receiver.url })).testWebhook.statusCode).toBe(503);
    expect(receiver.requests).toHaveLength(3);
    // Three a minute for alice; bob has his own budget; bad settings are refused before they count.
    const limited = await failure(TEST, { url: receiver.url });
    expect(limited.code).toBe('LIMIT_EXCEEDED');
    expect(limited.message).toContain('webhooks.testsPerMinute');
    expect((await failure(TEST, { url: receiver.url, secret: 'not-a-secret' }, { 'x-user-id': 'bob' })).code).toBe('BAD_USER_INPUT');
    expect((await ok(TEST, { url: receiver.url }, { 'x-user-id': 'bob' })).testWebhook.statusCode).toBe(503);
    expect((await failure(TEST, { url: receiver.url }, {})).code).toBe('UNAUTHENTICATED');
  });

  it('names the kind of each result file', async () => {
    api = await startApi();
    const id = await submit({ type: 'files', parameters: { title: 'kinds' } });
    await expect.poll(() => jobStatus(id)).toBe('COMPLETED');
    const { job } = await ok('query ($id: ID!) { job(id: $id) { results { files { name kind } } } }', { id });
    expect(Object.fromEntries(job.results.files.map((f: Data) => [f.name, f.kind]))).toEqual({
      'report.md': 'markdown',
      'assets/figure 1.png': 'image',
      'data.json': 'json',
    });
  });
});
