/**
 * Inbound webhooks through real HTTP: senders' signatures (GitHub, GitLab, Standard
 * Webhooks with the reference library, bearer tokens), routing, deduplication by
 * delivery id, refusals that store nothing, and many concurrent senders.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createConveyor } from '../../src/conveyor.js';
import { createIngest, type IngestSource } from '../../src/ingest/ingest.js';
import { createSubmitter } from '../../src/jobs/submit.js';
import { createLogger } from '../../src/log.js';
import { createNetGuard } from '../../src/net/guard.js';
import type { JobStore } from '../../src/store/port.js';
import { Gates, startApi, subscribe, type TestApi, testHandlers } from '../helpers/api.js';

const GITHUB_SECRET = 'It is a secret to everybody';
const STANDARD_SECRET = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;

const SOURCES = {
  github: {
    kind: 'github',
    secret: GITHUB_SECRET,
    owner: { userId: 'review-bot', teams: ['reviewers'] },
    maxBodyBytes: 4096,
    routes: [
      { event: 'pull_request', match: { action: ['opened', 'synchronize'] }, type: 'review' },
      { event: 'issues', type: 'echo', parameters: { text: 'issue.title' } },
    ],
  },
  gitlab: {
    kind: 'gitlab',
    secret: 'gl-token',
    owner: { userId: 'review-bot' },
    routes: [{ event: 'Merge Request Hook', match: { 'object_attributes.action': 'open' }, type: 'review' }],
  },
  billing: { kind: 'standard', secret: STANDARD_SECRET, owner: { userId: 'billing' }, routes: [{ event: 'invoice.paid', type: 'review' }] },
  ci: { kind: 'token', secret: 'ci-token', owner: { userId: 'ci' }, visibility: 'PRIVATE', routes: [{ event: '*', type: 'review' }] },
};

let api: TestApi;
afterEach(async () => {
  await api?.stop();
});

async function start(role: 'all' | 'api' = 'all'): Promise<TestApi> {
  api = await startApi({ role, overrides: { 'ingest.sources': structuredClone(SOURCES) } });
  return api;
}

interface Sent {
  status: number;
  body: { jobId?: string; duplicate?: boolean; ignored?: boolean; error?: { code: string; message: string } };
}

async function post(source: string, body: string | Buffer, headers: Record<string, string>): Promise<Sent> {
  const response = await fetch(`${api.url}/hooks/${source}`, { method: 'POST', headers, body });
  return { status: response.status, body: (await response.json()) as Sent['body'] };
}

function github(payload: unknown, options: { event?: string; delivery?: string; secret?: string } = {}) {
  const body = JSON.stringify(payload);
  const signature = `sha256=${createHmac('sha256', options.secret ?? GITHUB_SECRET)
    .update(body)
    .digest('hex')}`;
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'x-github-event': options.event ?? 'pull_request',
      'x-github-delivery': options.delivery ?? randomUUID(),
      'x-hub-signature-256': signature,
    },
  };
}

const jobCount = () => api.conveyor.store.countJobs({});

/** The job's final status, read on each change of the store's feed (fails after 10 s). */
async function settled(id: string): Promise<string> {
  const finished = (status: string | undefined) => status === 'COMPLETED' || status === 'FAILED' || status === 'CANCELLED';
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 10_000);
  try {
    // Cursor first, then read: a change in between is replayed, never missed.
    const after = await api.conveyor.store.headCursor();
    let status: string | undefined = (await api.conveyor.client.getJob(id))?.status;
    if (finished(status)) return status as string;
    for await (const event of api.conveyor.store.watch({ after, signal: controller.signal })) {
      if (event.entity !== 'job' || event.id !== id) continue;
      status = event.status ?? undefined;
      if (finished(status)) return status as string;
    }
  } finally {
    clearTimeout(timer);
  }
  throw new Error(`job ${id} did not finish`);
}

describe('inbound webhooks', () => {
  it('turns a signed GitHub delivery into a job that runs, and answers its retry with the same job', async () => {
    await start();
    const delivery = github({ action: 'opened', number: 42, pull_request: { title: 'Faster claims' } }, { delivery: 'gh-1' });
    const first = await post('github', delivery.body, delivery.headers);
    expect(first).toMatchObject({ status: 202, body: { duplicate: false } });
    const jobId = first.body.jobId as string;
    expect(jobId).toMatch(/^job_/);
    // Stored before the answer: the job is readable at once.
    expect(await api.conveyor.client.getJob(jobId)).toMatchObject({
      type: 'review',
      ownerId: 'review-bot',
      ingest: { source: 'github', event: 'pull_request', deliveryId: 'gh-1' },
    });
    expect(await settled(jobId)).toBe('COMPLETED');
    expect((await api.conveyor.client.getJob(jobId))?.results).toMatchObject({ action: 'opened', number: 42 });

    const again = await post('github', delivery.body, delivery.headers);
    expect(again).toEqual({ status: 202, body: { jobId, duplicate: true, event: 'pull_request', deliveryId: 'gh-1' } });
    expect(await jobCount()).toBe(1);

    // The owner (and its team) see the job in GraphQL, with where it came from.
    const { body } = await api.gql<{ jobs: { edges: { node: { id: string; ingest: unknown } }[] }; stats: { ingest: unknown[] } }>(
      '{ jobs(filter: { source: "github" }) { edges { node { id ingest { source event deliveryId } } } } stats { ingest { source kind received verified rejected accepted duplicate ignored } } }',
      {},
      { 'x-user-id': 'carol', 'x-team-ids': 'reviewers' },
    );
    expect(body.data?.jobs.edges).toEqual([
      { node: { id: jobId, ingest: { source: 'github', event: 'pull_request', deliveryId: 'gh-1' } } },
    ]);
    expect(body.data?.stats.ingest).toEqual([
      { source: 'github', kind: 'github', received: 2, verified: 2, rejected: 0, accepted: 1, duplicate: 1, ignored: 0 },
      // gitlab's owner is review-bot without teams: carol does not see it; the others belong to other users.
    ]);
    // Someone else sees neither the job nor the source's figures.
    const stranger = await api.gql<{ jobs: { edges: unknown[] }; stats: { ingest: unknown[] } }>(
      '{ jobs(filter: { source: "github" }) { edges { node { id } } } stats { ingest { source } } }',
      {},
      { 'x-user-id': 'mallory' },
    );
    expect(stranger.body.data).toEqual({ jobs: { edges: [] }, stats: { ingest: [] } });
  });

  it('refuses wrong and missing signatures, expired timestamps, oversized bodies and unknown sources, storing nothing', async () => {
    await start();
    const good = github({ action: 'opened' });
    const wrong = await post('github', good.body, { ...good.headers, 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` });
    expect(wrong).toMatchObject({ status: 401, body: { error: { code: 'SIGNATURE_INVALID' } } });
    const { 'x-hub-signature-256': _, ...unsigned } = good.headers;
    const missing = await post('github', good.body, unsigned);
    expect(missing).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHENTICATED' } } });
    // One byte changed after signing.
    const tampered = await post('github', good.body.replace('opened', 'opene_'), good.headers);
    expect(tampered.status).toBe(401);

    const payload = JSON.stringify({ type: 'invoice.paid', id: 'in_1' });
    const old = new Date(Date.now() - 10 * 60_000);
    const expired = await post('billing', payload, {
      'content-type': 'application/json',
      'webhook-id': 'msg_old',
      'webhook-timestamp': String(Math.floor(old.getTime() / 1000)),
      'webhook-signature': new Webhook(STANDARD_SECRET).sign('msg_old', old, payload),
    });
    expect(expired).toMatchObject({ status: 401, body: { error: { code: 'SIGNATURE_INVALID' } } });
    expect(expired.body.error?.message).toContain('webhook-timestamp');

    const big = github({ action: 'opened', padding: 'x'.repeat(5000) });
    expect((await post('github', big.body, big.headers)).status).toBe(413);
    // Without a Content-Length (chunked), the limit holds while reading.
    const chunked = await fetch(`${api.url}/hooks/github`, {
      method: 'POST',
      headers: big.headers,
      body: new Blob([big.body]).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);

    const unknown = await post('nope', good.body, good.headers);
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    expect((await fetch(`${api.url}/hooks/github`)).status).toBe(405);

    expect(await jobCount()).toBe(0);
    // Counters reach the store within a second; GraphQL flushes this process's first.
    const { body } = await api.gql<{ stats: { ingest: { source: string; received: number; rejected: number; verified: number }[] } }>(
      '{ stats { ingest { source received verified rejected } } }',
      {},
      { 'x-user-id': 'admin', 'x-admin': 'true' },
    );
    expect(body.data?.stats.ingest).toEqual(
      expect.arrayContaining([
        { source: 'github', received: 5, verified: 0, rejected: 5 },
        { source: 'billing', received: 1, verified: 0, rejected: 1 },
      ]),
    );
  });

  it('acknowledges events without a route as ignored, and refuses payloads the job type rejects', async () => {
    await start();
    const closed = github({ action: 'closed' });
    expect(await post('github', closed.body, closed.headers)).toMatchObject({ status: 202, body: { ignored: true } });
    const ping = github({ zen: 'Keep it logically awesome.' }, { event: 'ping' });
    expect(await post('github', ping.body, ping.headers)).toMatchObject({ status: 202, body: { ignored: true } });
    // issues → echo with text from issue.title; a number there fails echo's schema.
    const invalid = github({ issue: { title: 42 } }, { event: 'issues' });
    const refused = await post('github', invalid.body, invalid.headers);
    expect(refused).toMatchObject({ status: 422, body: { error: { code: 'BAD_USER_INPUT' } } });
    const notJson = github({}, {});
    const body = 'not json';
    const signature = `sha256=${createHmac('sha256', GITHUB_SECRET).update(body).digest('hex')}`;
    expect(await post('github', body, { ...notJson.headers, 'x-hub-signature-256': signature })).toMatchObject({
      status: 400,
      body: { error: { code: 'BAD_USER_INPUT' } },
    });
    expect(await jobCount()).toBe(0);

    const issue = github({ issue: { title: 'Docs' } }, { event: 'issues' });
    const made = await post('github', issue.body, issue.headers);
    expect(made.status).toBe(202);
    expect((await api.conveyor.client.getJob(made.body.jobId as string))?.parameters).toEqual({ text: 'Docs' });

    // GitHub's form encoding carries the same JSON in `payload`.
    const form = `payload=${encodeURIComponent(JSON.stringify({ action: 'synchronize' }))}`;
    const formSignature = `sha256=${createHmac('sha256', GITHUB_SECRET).update(form).digest('hex')}`;
    const viaForm = await post('github', form, {
      ...issue.headers,
      'x-github-event': 'pull_request',
      'x-github-delivery': 'form-1',
      'content-type': 'application/x-www-form-urlencoded',
      'x-hub-signature-256': formSignature,
    });
    expect(viaForm).toMatchObject({ status: 202, body: { duplicate: false } });
    expect(await jobCount()).toBe(2);

    const { body: stats } = await api.gql<{ stats: { ingest: { source: string; ignored: number; rejected: number; accepted: number }[] } }>(
      '{ stats { ingest { source ignored rejected accepted } } }',
      {},
      { 'x-user-id': 'review-bot' },
    );
    expect(stats.data?.stats.ingest).toEqual([
      { source: 'github', ignored: 2, rejected: 2, accepted: 2 },
      { source: 'gitlab', ignored: 0, rejected: 0, accepted: 0 },
    ]);
  });

  it("shows a PUBLIC source's jobs and counters to every signed-in user, and to no anonymous caller", async () => {
    api = await startApi({
      user: null,
      overrides: { 'ingest.sources': { ...structuredClone(SOURCES), ci: { ...SOURCES.ci, visibility: 'PUBLIC' } } },
    });
    const ci = {
      'content-type': 'application/json',
      'x-delivery-id': 'pub-1',
      'x-event-type': 'build.finished',
      authorization: 'Bearer ci-token',
    };
    const made = await post('ci', '{"ok":true}', ci);
    expect(made.status).toBe(202);
    const query = '{ jobs(filter: { source: "ci" }) { edges { node { id } } } stats { ingest { source accepted } } }';
    const job = (id: string) => api.gql<{ job: { id: string } | null }>('query ($id: ID!) { job(id: $id) { id } }', { id }, {});
    const signedIn = await api.gql(query, {}, { 'x-user-id': 'mallory' });
    expect(signedIn.body.data).toEqual({
      jobs: { edges: [{ node: { id: made.body.jobId } }] },
      stats: { ingest: [{ source: 'ci', accepted: 1 }] },
    });
    const anonymous = await api.gql(query, {}, {});
    expect(anonymous.body.data).toEqual({ jobs: { edges: [] }, stats: { ingest: [] } });
    expect((await job(made.body.jobId as string)).body.data?.job ?? null).toBeNull();
  });

  it('answers a deeply nested payload with 400 (not 500) and counts it as rejected', async () => {
    await start();
    // 200,000 levels in 400 KB: within the source's body limit, far beyond what recursive code survives.
    const depth = 200_000;
    const nested = `{"ok":true,"deep":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const ci = {
      'content-type': 'application/json',
      'x-delivery-id': 'deep-1',
      'x-event-type': 'build.finished',
      authorization: 'Bearer ci-token',
    };
    const sent = await post('ci', nested, ci);
    expect(sent).toMatchObject({ status: 400, body: { error: { code: 'BAD_USER_INPUT', message: expect.stringContaining('nested') } } });
    expect(await jobCount()).toBe(0);
    // A shallow one from the same sender still goes through.
    expect((await post('ci', '{"ok":true}', { ...ci, 'x-delivery-id': 'flat-1' })).status).toBe(202);
    const { body: stats } = await api.gql<{
      stats: { ingest: { source: string; received: number; verified: number; rejected: number; accepted: number }[] };
    }>('{ stats { ingest { source received verified rejected accepted } } }', {}, { 'x-user-id': 'ci' });
    expect(stats.data?.stats.ingest).toEqual([{ source: 'ci', received: 2, verified: 2, rejected: 1, accepted: 1 }]);
  });

  it('verifies GitLab tokens, Standard Webhooks signatures and bearer tokens', async () => {
    await start('api');
    const mr = JSON.stringify({ object_kind: 'merge_request', object_attributes: { action: 'open', iid: 7 } });
    const gitlab = { 'content-type': 'application/json', 'x-gitlab-event': 'Merge Request Hook', 'idempotency-key': 'gl-1' };
    expect((await post('gitlab', mr, { ...gitlab, 'x-gitlab-token': 'wrong' })).status).toBe(401);
    const fromGitlab = await post('gitlab', mr, { ...gitlab, 'x-gitlab-token': 'gl-token' });
    expect(fromGitlab).toMatchObject({ status: 202, body: { duplicate: false } });
    expect((await api.conveyor.client.getJob(fromGitlab.body.jobId as string))?.ingest).toEqual({
      source: 'gitlab',
      event: 'Merge Request Hook',
      deliveryId: 'gl-1',
    });

    const invoice = JSON.stringify({ type: 'invoice.paid', data: { id: 'in_1' } });
    const now = new Date();
    const standard = {
      'content-type': 'application/json',
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': new Webhook(STANDARD_SECRET).sign('msg_1', now, invoice),
    };
    const fromBilling = await post('billing', invoice, standard);
    expect(fromBilling).toMatchObject({ status: 202, body: { duplicate: false, event: 'invoice.paid', deliveryId: 'msg_1' } });
    expect(await post('billing', invoice.replace('in_1', 'in_2'), standard)).toMatchObject({ status: 401 });
    // Rotating keys: one of several signatures matching is enough.
    const rotated = { ...standard, 'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')} ${standard['webhook-signature']}` };
    expect(await post('billing', invoice, rotated)).toMatchObject({ status: 202, body: { duplicate: true } });

    const ci = { 'content-type': 'application/json', 'x-delivery-id': 'ci-1', 'x-event-type': 'build.finished' };
    expect((await post('ci', '{"ok":true}', ci)).status).toBe(401);
    expect((await post('ci', '{"ok":true}', { ...ci, authorization: 'Bearer nope' })).status).toBe(401);
    const fromCi = await post('ci', '{"ok":true}', { ...ci, authorization: 'Bearer ci-token' });
    expect(fromCi).toMatchObject({ status: 202, body: { duplicate: false, event: 'build.finished', deliveryId: 'ci-1' } });
    // PRIVATE: only the source's owner reads it.
    const job = await api.conveyor.client.getJob(fromCi.body.jobId as string);
    expect(job).toMatchObject({ ownerId: 'ci', accessControl: { visibility: 'PRIVATE' } });
    expect(await jobCount()).toBe(3);
  });

  it('answers 500 deliveries from 50 concurrent senders, storing each exactly once', async () => {
    await start('api');
    const deliveries = Array.from({ length: 500 }, (_, i) => github({ action: 'opened', number: i }, { delivery: `d-${i}` }));
    const answers: Sent[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < deliveries.length) {
          const delivery = deliveries[next++] as (typeof deliveries)[number];
          answers.push(await post('github', delivery.body, delivery.headers));
        }
      }),
    );
    expect(answers).toHaveLength(500);
    expect(answers.every((a) => a.status === 202 && a.body.duplicate === false)).toBe(true);
    expect(new Set(answers.map((a) => a.body.jobId)).size).toBe(500);
    expect(await jobCount()).toBe(500);
    const numbers = (await api.conveyor.store.listJobs({ source: 'github' }, { first: 1000 })).items.map((j) => j.parameters.number);
    expect(new Set(numbers).size).toBe(500);
  });

  it('answers 409 when a delivery id comes again with another payload, storing nothing new', async () => {
    await start('api');
    const first = github({ action: 'opened', number: 1 }, { delivery: 'reused' });
    const accepted = await post('github', first.body, first.headers);
    expect(accepted).toMatchObject({ status: 202, body: { duplicate: false } });
    const other = github({ action: 'opened', number: 2 }, { delivery: 'reused' });
    const conflict = await post('github', other.body, other.headers);
    expect(conflict).toMatchObject({ status: 409, body: { error: { code: 'CONFLICT' } } });
    expect(conflict.body.error?.message).toContain('reused');
    expect(await jobCount()).toBe(1);
    expect((await api.conveyor.client.getJob(accepted.body.jobId as string))?.parameters).toMatchObject({ number: 1 });
  });

  it('stores deliveries that arrive together in one write, and when that write is refused, each on its own', async () => {
    const config = loadConfig({
      file: null,
      env: {},
      overrides: { dataDir: mkdtempSync(join(tmpdir(), 'conveyor-ingest-')), 'ingest.sources': structuredClone(SOURCES) },
    });
    const conveyor = await createConveyor({ config, handlers: testHandlers(new Gates()), logger: createLogger('error') });
    // The real store, with each createJobs call's size recorded.
    const writes: number[] = [];
    const store = new Proxy(conveyor.store, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (property === 'createJobs') {
          return (jobs: Parameters<JobStore['createJobs']>[0]) => {
            writes.push(jobs.length);
            return target.createJobs(jobs);
          };
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const ingest = createIngest({
      config: config.ingest,
      store,
      submitter: createSubmitter(store, conveyor.registry, config, createNetGuard([])),
      registry: conveyor.registry,
      logger: createLogger('error'),
    });
    try {
      const source = ingest.sources.get('github') as IngestSource;
      const receive = (delivery: { body: string; headers: Record<string, string> }) =>
        ingest.receive(source, delivery.headers, Buffer.from(delivery.body));
      const old = github({ action: 'opened', number: 1 }, { delivery: 'taken' });
      expect((await receive(old)).status).toBe(202);
      writes.length = 0;
      // Three requests in the same turn: one reuses a delivery id with another payload.
      const answers = await Promise.all([
        receive(github({ action: 'opened', number: 2 }, { delivery: 'fresh-1' })),
        receive(github({ action: 'opened', number: 3 }, { delivery: 'taken' })),
        receive(github({ action: 'opened', number: 4 }, { delivery: 'fresh-2' })),
      ]);
      expect(answers.map((a) => a.status)).toEqual([202, 409, 202]);
      // The group was tried as one write, refused, then each job alone.
      expect(writes).toEqual([3, 1, 1, 1]);
      expect(await conveyor.store.countJobs({})).toBe(3);
    } finally {
      await ingest.stop();
      await conveyor.stop();
      rmSync(config.dataDir, { recursive: true, force: true });
    }
  });

  it('shows ingested jobs live to subscribers, filtered by source', async () => {
    await start('api');
    const client = api.client({ 'x-user-id': 'review-bot' });
    // after: "" replays from the first change, so the deliveries may come before the subscriptions listen.
    const query = 'subscription ($source: String) { jobEvents(filter: { source: $source }, after: "") { jobId op } }';
    const created = (values: { op: string }[]) => values.some((v) => v.op === 'CREATED');
    const all = subscribe<{ jobId: string; op: string }>(
      client,
      query,
      {},
      (values) => values.filter((v) => v.op === 'CREATED').length === 2,
    );
    const fromGithub = subscribe<{ jobId: string; op: string }>(client, query, { source: 'github' }, created);
    const fromGitlab = subscribe<{ jobId: string; op: string }>(client, query, { source: 'gitlab' }, created);
    const delivery = github({ action: 'opened' });
    const { body: fromHub } = await post('github', delivery.body, delivery.headers);
    const mr = JSON.stringify({ object_attributes: { action: 'open' } });
    const { body: fromLab } = await post('gitlab', mr, {
      'content-type': 'application/json',
      'x-gitlab-event': 'Merge Request Hook',
      'x-gitlab-token': 'gl-token',
    });
    expect((await all.finished).filter((v) => v.op === 'CREATED').map((v) => v.jobId)).toEqual([fromHub.jobId, fromLab.jobId]);
    expect(new Set((await fromGithub.finished).map((v) => v.jobId))).toEqual(new Set([fromHub.jobId]));
    expect(new Set((await fromGitlab.finished).map((v) => v.jobId))).toEqual(new Set([fromLab.jobId]));
  });

  it('counts answers in the metrics', async () => {
    await start('api');
    const delivery = github({ action: 'opened' });
    await post('github', delivery.body, delivery.headers);
    await post('github', delivery.body, delivery.headers);
    await post('github', delivery.body, { ...delivery.headers, 'x-hub-signature-256': 'sha256=00' });
    const text = await (await fetch(`${api.url}/metrics`)).text();
    for (const [outcome, n] of Object.entries({ received: 3, verified: 2, accepted: 1, duplicate: 1, rejected: 1 })) {
      expect(text).toContain(`conveyor_ingest_total{source="github",outcome="${outcome}"} ${n}`);
    }
    expect(text).not.toContain('outcome="ignored"');
    expect(text).toContain('conveyor_ingest_answer_seconds_count{source="github"} 3');
  });
});

describe('the documented GitHub example (examples/pr-review.ts)', () => {
  it('reviews an opened pull request from a signed delivery', async () => {
    api = await startApi({
      overrides: {
        'handlers.modules': ['examples/pr-review.ts'],
        'ingest.sources': {
          github: {
            kind: 'github',
            secret: GITHUB_SECRET,
            owner: { userId: 'review-bot', teams: ['reviewers'] },
            routes: [
              {
                event: 'pull_request',
                match: { action: ['opened', 'synchronize', 'reopened'] },
                type: 'pr-review',
                parameters: {
                  repo: 'repository.full_name',
                  number: 'pull_request.number',
                  title: 'pull_request.title',
                  author: 'pull_request.user.login',
                  sha: 'pull_request.head.sha',
                  additions: 'pull_request.additions',
                  deletions: 'pull_request.deletions',
                },
              },
            ],
          },
        },
      },
    });
    const pr = {
      action: 'opened',
      number: 12,
      pull_request: {
        number: 12,
        title: 'Group commit for ingest',
        user: { login: 'octocat' },
        head: { sha: 'a'.repeat(40) },
        additions: 40,
        deletions: 2,
      },
      repository: { full_name: 'acme/conveyor' },
    };
    const delivery = github(pr);
    const answer = await post('github', delivery.body, delivery.headers);
    expect(answer.status).toBe(202);
    const jobId = answer.body.jobId as string;
    expect(await settled(jobId)).toBe('COMPLETED');
    const { body } = await api.gql<{ job: { results: { markdown: { text: string } } } }>(
      'query ($id: ID!) { job(id: $id) { results { markdown { text } } } }',
      { id: jobId },
      { 'x-user-id': 'review-bot' },
    );
    expect(body.data?.job.results.markdown.text).toContain('# Review of acme/conveyor#12: Group commit for ingest');
    expect(body.data?.job.results.markdown.text).toContain('+40 −2');
  });
});

describe('ingest configuration', () => {
  const base = { file: null, env: {} } as const;

  it('stops start-up on a route to an unknown job type, naming the key', async () => {
    const config = loadConfig({
      ...base,
      overrides: {
        'ingest.sources': { gh: { kind: 'github', secret: 's', owner: { userId: 'u' }, routes: [{ event: 'push', type: 'nope' }] } },
      },
    });
    await expect(createConveyor({ config })).rejects.toThrow(/ingest\.sources\.gh\.routes\[0\]\.type: unknown job type "nope"/);
  });

  it('takes a declared source secret from the environment, and refuses secrets of undeclared sources', () => {
    const overrides = { 'ingest.sources': { 'gh-main': { kind: 'github', owner: { userId: 'u' } } } };
    expect(() => loadConfig({ ...base, overrides })).toThrow(/ingest\.sources\.gh-main\.secret/);
    const config = loadConfig({
      file: null,
      env: { CONVEYOR_INGEST__SOURCES: JSON.stringify(overrides['ingest.sources']), CONVEYOR_INGEST__SOURCES__GH_MAIN__SECRET: 's3' },
    });
    expect(config.ingest.sources['gh-main']).toMatchObject({ secret: 's3', visibility: 'TEAM', maxBodyBytes: 1048576, routes: [] });
    expect(() => loadConfig({ file: null, env: { CONVEYOR_INGEST__SOURCES__OTHER__SECRET: 'x' } })).toThrow(
      /CONVEYOR_INGEST__SOURCES__OTHER__SECRET/,
    );
    expect(() =>
      loadConfig({ ...base, overrides: { 'ingest.sources': { 'Bad Name': { kind: 'token', secret: 's', owner: { userId: 'u' } } } } }),
    ).toThrow(/source names/);
  });

  it('refuses a Standard Webhooks secret that is not base64', async () => {
    const config = loadConfig({
      ...base,
      overrides: { 'ingest.sources': { s: { kind: 'standard', secret: 'whsec_not base64!', owner: { userId: 'u' } } } },
    });
    await expect(createConveyor({ config })).rejects.toThrow(/ingest\.sources\.s\.secret: a Standard Webhooks secret/);
  });
});
