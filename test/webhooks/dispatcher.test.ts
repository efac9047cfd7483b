/**
 * Webhook delivery end to end: a real server and worker (startApi), a real receiver
 * on 127.0.0.1, `got` in between. Schedules are shortened through configuration.
 */
import { randomBytes } from 'node:crypto';
import type { lookup as dnsLookup } from 'node:dns';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config.js';
import type { Delivery, Job } from '../../src/domain/types.js';
import { createLogger } from '../../src/log.js';
import { createNetGuard } from '../../src/net/guard.js';
import { createFsResultStore } from '../../src/results/fs/fs-result-store.js';
import { createUrlSigner } from '../../src/results/urls.js';
import { createDispatcher } from '../../src/webhooks/dispatcher.js';
import { sqliteAdapter } from '../helpers/adapters.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { startGzipBomb } from '../helpers/gzip-bomb.js';
import { type Answer, type Receiver, startReceiver } from '../helpers/receiver.js';

let api: TestApi;
let receiver: Receiver;

afterEach(async () => {
  await api?.stop();
  api = undefined as unknown as TestApi;
  await receiver?.close();
});

const FAST = {
  'webhooks.allowHttp': true,
  'net.allow': ['127.0.0.1'],
  'webhooks.schedule': [150, 150, 150],
  // Generous: a request that times out (or outlives its lease) on a loaded machine is
  // rightly sent again, which would break the exact counts below. Only the test of a
  // hanging receiver, where the timeout is the subject, shortens it.
  'webhooks.timeoutMs': 10_000,
  'webhooks.leaseMs': 20_000,
  'webhooks.pollMs': 50,
};

const secret = () => `whsec_${randomBytes(32).toString('base64')}`;

async function start(answer: (request: { body: string }, index: number) => Answer, overrides: Record<string, unknown> = {}) {
  receiver = await startReceiver(answer);
  api = await startApi({ overrides: { ...FAST, ...overrides } });
}

async function submitEcho(webhook: Record<string, unknown>): Promise<string> {
  const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
    'mutation ($webhook: WebhookInput!) { submitJob(input: { type: "echo", parameters: { text: "hi" }, webhook: $webhook }) { job { id } } }',
    { webhook },
  );
  expect(body.errors).toBeUndefined();
  return body.data?.submitJob.job.id as string;
}

/** The job's deliveries once every one of them has settled (not PENDING or SENDING). */
async function settled(jobId: string, count = 1, timeout = 10_000): Promise<Delivery[]> {
  let deliveries: Delivery[] = [];
  await expect
    .poll(
      async () => {
        deliveries = await api.conveyor.store.listDeliveries({ jobId });
        return deliveries.length >= count && deliveries.every((d) => d.status !== 'PENDING' && d.status !== 'SENDING');
      },
      { timeout, interval: 25, message: `deliveries of ${jobId}` },
    )
    .toBe(true);
  return deliveries;
}

describe('webhook dispatcher', () => {
  it('retries 500, 500, then succeeds on schedule with the same webhook-id, and the log shows all three', async () => {
    await start((_r, i) => (i < 2 ? 500 : 200));
    const key = secret();
    const jobId = await submitEcho({ url: receiver.url, secret: key, token: 'tok-123', headers: { 'x-tenant': 'acme' } });
    const [delivery] = await settled(jobId);
    expect(delivery?.status).toBe('DELIVERED');
    expect(receiver.requests).toHaveLength(3);
    const ids = new Set(receiver.requests.map((r) => r.headers['webhook-id']));
    expect([...ids]).toEqual([delivery?.id]);
    const [a, b, c] = receiver.requests.map((r) => r.at) as [number, number, number];
    expect(b - a).toBeGreaterThanOrEqual(150 * 0.8 - 5);
    expect(c - b).toBeGreaterThanOrEqual(150 * 0.8 - 5);

    const first = receiver.requests[0];
    expect(first?.headers).toMatchObject({
      'content-type': 'application/json',
      authorization: 'Bearer tok-123',
      'x-callback-token': 'tok-123',
      'x-tenant': 'acme',
      'user-agent': expect.stringMatching(/^Conveyor\/\d+\.\d+\.\d+/),
    });
    const payload = JSON.parse(first?.body as string);
    expect(payload).toMatchObject({
      type: 'job.completed',
      id: delivery?.id,
      jobId,
      batchId: null,
      status: 'COMPLETED',
      error: null,
      data: { type: 'echo', results: { text: 'hi' } },
    });

    const { body } = await api.gql<{
      job: {
        deliveries: {
          id: string;
          status: string;
          attempts: { statusCode: number; error: string | null; durationMs: number; responseSnippet: string }[];
        }[];
      };
    }>('query ($id: ID!) { job(id: $id) { deliveries { id status attempts { at statusCode error durationMs responseSnippet } } } }', {
      id: jobId,
    });
    const log = body.data?.job.deliveries[0];
    expect(log?.attempts.map((x) => [x.statusCode, x.error])).toEqual([
      [500, 'HTTP_500'],
      [500, 'HTTP_500'],
      [200, null],
    ]);
    expect(log?.attempts[2]?.responseSnippet).toBe('ok');
  });

  it('puts Markdown and metadata into the payload only when asked, and lists the result files', async () => {
    await start(() => 200);
    const submit = async (include: boolean) => {
      const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
        'mutation ($url: String!, $include: Boolean) { submitJob(input: { type: "markdown", parameters: { title: "Slides" }, webhook: { url: $url, includeMarkdown: $include, includeMetadata: $include } }) { job { id } } }',
        { url: receiver.url, include },
      );
      const id = body.data?.submitJob.job.id as string;
      await settled(id);
      return id;
    };
    const withExtras = await submit(true);
    const without = await submit(false);
    const payloadOf = (jobId: string) => JSON.parse(receiver.requests.find((r) => r.body.includes(jobId))?.body as string).data;
    expect(payloadOf(withExtras)).toMatchObject({
      type: 'markdown',
      results: { pages: 1 },
      markdown: '# Slides\n',
      metadata: { title: 'Slides' },
      files: [{ name: 'out.md', contentType: 'text/markdown', size: 9, url: expect.stringContaining(`/files/${withExtras}/out.md?exp=`) }],
      archiveUrl: expect.stringContaining(`/archives/jobs/${withExtras}.zip?exp=`),
    });
    const plain = payloadOf(without);
    expect(plain).not.toHaveProperty('markdown');
    expect(plain).not.toHaveProperty('metadata');
    expect(plain.files).toHaveLength(1);
  });

  it('keeps the first 1 KB of a gzip-bomb answer and cuts the response there instead of inflating it', async () => {
    const bomb = await startGzipBomb();
    try {
      api = await startApi({ overrides: FAST });
      const jobId = await submitEcho({ url: `${bomb.url}/hook` });
      const [delivery] = await settled(jobId);
      expect(delivery).toMatchObject({ status: 'DELIVERED', attempts: [{ statusCode: 200, error: null }] });
      expect(delivery?.attempts[0]?.responseSnippet).toBe('\0'.repeat(1024));
      // The dispatcher hung up after the snippet: the receiver never got to write the whole body.
      await expect.poll(() => bomb.closed).toBe(true);
      expect(bomb.finished).toBe(false);
      expect(bomb.written).toBeLessThan(bomb.total);
    } finally {
      await bomb.close();
    }
  });

  it('signs so that the standardwebhooks library verifies, and rejects a changed byte', async () => {
    await start(() => 200);
    const key = secret();
    const jobId = await submitEcho({ url: receiver.url, secret: key });
    await settled(jobId);
    const request = receiver.requests[0] as { headers: Record<string, string>; body: string };
    const headers = {
      'webhook-id': request.headers['webhook-id'] as string,
      'webhook-timestamp': request.headers['webhook-timestamp'] as string,
      'webhook-signature': request.headers['webhook-signature'] as string,
    };
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(key).verify(request.body, headers)).toMatchObject({ jobId });
    const tampered = request.body.replace('"hi"', '"ho"');
    expect(() => new Webhook(key).verify(tampered, headers)).toThrow();
    expect(() => new Webhook(secret()).verify(request.body, headers)).toThrow();
  });

  it('caps a Retry-After at webhooks.maxRetryAfterMs', async () => {
    // The receiver asks for an hour; the cap makes it 300 ms (else the test could not end).
    await start((_r, i) => (i === 0 ? { status: 429, headers: { 'retry-after': '3600' } } : 200), { 'webhooks.maxRetryAfterMs': 300 });
    const jobId = await submitEcho({ url: receiver.url });
    const [delivery] = await settled(jobId);
    expect(delivery?.status).toBe('DELIVERED');
    expect(delivery?.attempts.map((a) => a.statusCode)).toEqual([429, 200]);
    const [first, second] = (delivery as Delivery).attempts.map((a) => a.at.getTime()) as [number, number];
    // Not earlier than the capped wait (the schedule's 150 ms would be).
    expect(second - first).toBeGreaterThanOrEqual(290);
  });

  it('handles a refused connection, a hanging receiver, 429 with Retry-After, 410 and 400 as documented', async () => {
    await start(
      (request) => {
        const kind = (JSON.parse(request.body) as { data: { results: { text: string } } }).data.results.text;
        if (kind === 'hang') return 'hang';
        if (kind === 'retry-after') return { status: 429, headers: { 'retry-after': '2' } };
        if (kind === 'gone') return 410;
        if (kind === 'bad') return 400;
        return 200;
      },
      { 'webhooks.timeoutMs': 400, 'webhooks.leaseMs': 2000 },
    );
    const closed = await startReceiver();
    const refusedUrl = closed.url;
    await closed.close();
    const submit = async (text: string, url = receiver.url) => {
      const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
        'mutation ($text: String!, $url: String!) { submitJob(input: { type: "echo", parameters: { text: $text }, webhook: { url: $url } }) { job { id } } }',
        { text, url },
      );
      return body.data?.submitJob.job.id as string;
    };
    const [refused, hang, limited, gone, bad] = [
      await submit('refused', refusedUrl),
      await submit('hang'),
      await submit('retry-after'),
      await submit('gone'),
      await submit('bad'),
    ];

    const refusedLog = (await settled(refused))[0] as Delivery;
    expect(refusedLog.status).toBe('FAILED');
    expect(refusedLog.attempts.map((a) => a.error)).toEqual(['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED']);

    const hangLog = (await settled(hang))[0] as Delivery;
    expect(hangLog.status).toBe('FAILED');
    expect(hangLog.attempts).toHaveLength(4);
    expect(hangLog.attempts.every((a) => a.error === 'TIMEOUT' && a.statusCode === null)).toBe(true);

    const limitedLog = (await settled(limited, 1, 15_000))[0] as Delivery;
    expect(limitedLog.attempts.map((a) => a.statusCode)).toEqual([429, 429, 429, 429]);
    const gaps = limitedLog.attempts.slice(1).map((a, i) => a.at.getTime() - (limitedLog.attempts[i] as { at: Date }).at.getTime());
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(1900);

    const goneLog = (await settled(gone))[0] as Delivery;
    expect(goneLog).toMatchObject({ status: 'DISABLED' });
    expect(goneLog.attempts).toHaveLength(1);
    // The endpoint stays disabled for this job: a second event is not sent to it.
    const sentBefore = receiver.requests.length;
    await api.gql('mutation ($id: ID!) { restartJob(id: $id) { id } }', { id: gone });
    const again = await settled(gone, 2);
    expect(again[1]).toMatchObject({ status: 'DISABLED', attempts: [{ error: 'ENDPOINT_DISABLED', statusCode: null }] });
    expect(receiver.requests.length).toBe(sentBefore);

    const badLog = (await settled(bad))[0] as Delivery;
    expect(badLog).toMatchObject({ status: 'FAILED', attempts: [{ statusCode: 400, error: 'HTTP_400' }] });
  }, 30_000);

  it('never has more than webhooks.concurrency requests in flight, and delivers all 200', async () => {
    await start(() => ({ status: 200, delayMs: 20 }), { 'worker.concurrency': 50 });
    const jobs = Array.from({ length: 200 }, (_, i) => ({ type: 'echo', parameters: { text: `n${i}` } }));
    const { body } = await api.gql<{ submitBatch: { batch: { id: string } } }>(
      'mutation ($jobs: [BatchJobInput!]!, $url: String!) { submitBatch(input: { name: "many", jobs: $jobs, webhook: { url: $url, events: ["job.completed"] } }) { batch { id } } }',
      { jobs, url: receiver.url },
    );
    const batchId = body.data?.submitBatch.batch.id as string;
    await expect
      .poll(async () => (await api.conveyor.store.listDeliveries({ batchId })).filter((d) => d.status === 'DELIVERED').length, {
        timeout: 30_000,
      })
      .toBe(200);
    expect(receiver.requests).toHaveLength(200);
    expect(new Set(receiver.requests.map((r) => r.headers['webhook-id'])).size).toBe(200);
    expect(receiver.maxInFlight).toBeLessThanOrEqual(10);
    expect(receiver.maxInFlight).toBeGreaterThan(1);
  }, 60_000);

  it('replays a dead letter with redeliverWebhook (same webhook-id) and shows attempts live in deliveryUpdated', async () => {
    let healthy = false;
    await start(() => (healthy ? 200 : 400));
    const jobId = await submitEcho({ url: receiver.url });
    const [dead] = await settled(jobId);
    expect(dead?.status).toBe('FAILED');
    healthy = true;
    const { subscribe } = await import('../helpers/api.js');
    const live = subscribe<{ op: string; status: string; delivery: { attempts: { statusCode: number }[] } }>(
      api.client(),
      'subscription ($jobId: ID!) { deliveryUpdated(jobId: $jobId) { op status deliveryId delivery { attempts { statusCode } } } }',
      { jobId },
      (values) => values.some((v) => v.status === 'DELIVERED'),
    );
    await expect.poll(() => live.values.length).toBeGreaterThan(0);
    expect(live.values[0]).toMatchObject({ op: 'SNAPSHOT', status: 'FAILED' });
    const { body } = await api.gql<{ redeliverWebhook: { id: string; status: string } }>(
      'mutation ($id: ID!) { redeliverWebhook(id: $id) { id status } }',
      { id: dead?.id },
    );
    expect(body.data?.redeliverWebhook).toEqual({ id: dead?.id, status: 'PENDING' });
    const values = await live.finished;
    expect(values.at(-1)?.delivery.attempts.map((a) => a.statusCode)).toEqual([400, 200]);
    expect(receiver.requests.map((r) => r.headers['webhook-id'])).toEqual([dead?.id, dead?.id]);
    // Someone else may not replay it, nor learn that it exists.
    const other = await api.gql('mutation ($id: ID!) { redeliverWebhook(id: $id) { id } }', { id: dead?.id }, { 'x-user-id': 'mallory' });
    expect(other.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  it('refuses private-network targets and never shows a secret in responses or logs', async () => {
    await start(() => 200, { 'net.allow': [] });
    const key = secret();
    const refuse = async (url: string) => {
      const { body } = await api.gql(
        'mutation ($url: String!, $secret: String) { submitJob(input: { type: "echo", webhook: { url: $url, secret: $secret } }) { job { id } } }',
        { url, secret: key },
      );
      return { code: body.errors?.[0]?.extensions?.code, message: body.errors?.[0]?.message ?? '' };
    };
    for (const url of [
      'http://10.0.0.1/',
      'http://169.254.169.254/latest/meta-data',
      'http://[::ffff:127.0.0.1]/',
      'http://localhost:1/',
      receiver.url,
    ]) {
      const result = await refuse(url);
      expect(result.code, url).toBe('BAD_USER_INPUT');
      expect(result.message).toMatch(/TARGET_FORBIDDEN|private, loopback/);
    }
    expect((await refuse('ftp://example.com/')).message).toMatch(/https/);
    expect((await refuse('not a url')).message).toMatch(/absolute URL/);
    expect(await api.conveyor.store.countJobs({})).toBe(0);

    // A name (not a literal) that resolves to a private address: see 'refuses at send time…' below.

    // Secrets and tokens are write-only.
    const jobId = await submitEcho({ url: 'https://example.test/hook', secret: key, token: 'very-secret-token' });
    const { body } = await api.gql(
      'query ($id: ID!) { job(id: $id) { webhook { url events hasSecret hasToken headerNames includeMarkdown } deliveries { id } } }',
      { id: jobId },
    );
    expect((body.data as { job: { webhook: unknown } }).job.webhook).toEqual({
      url: 'https://example.test/hook',
      events: null,
      hasSecret: true,
      hasToken: true,
      headerNames: [],
      includeMarkdown: false,
    });
    const introspect = await api.gql('{ jobs { edges { node { parameters results { data } webhook { url } } } } }');
    for (const text of [JSON.stringify(body), JSON.stringify(introspect.body), api.logs.join('\n')]) {
      expect(text).not.toContain(key);
      expect(text).not.toContain(key.slice(6));
      expect(text).not.toContain('very-secret-token');
    }
  });
});

describe('webhook dispatcher on its own', () => {
  it('refuses at send time a target whose name resolves to a private address, and records TARGET_FORBIDDEN', async () => {
    const adapter = sqliteAdapter();
    const store = await adapter.open();
    receiver = await startReceiver(() => 200);
    // The guard's real lookup, with a resolver that says what DNS would for a rebinding name.
    const port = Number(new URL(receiver.url).port);
    const resolve = ((
      _host: string,
      _options: unknown,
      callback: (error: null, addresses: { address: string; family: number }[]) => void,
    ) => callback(null, [{ address: '127.0.0.1', family: 4 }])) as unknown as typeof dnsLookup;
    const guard = createNetGuard([], { resolve });
    const dispatcher = createDispatcher({
      store,
      results: createFsResultStore(join(tmpdir(), 'conveyor-unused-results')),
      signer: createUrlSigner({ secret: 'test', ttl: 60, baseUrl: 'http://localhost' }),
      guard,
      config: { ...DEFAULTS.webhooks, pollMs: 50, allowHttp: true },
      logger: createLogger('error'),
      workerId: 'd',
      version: 'test',
    });
    try {
      const webhook = {
        url: `http://hooks.internal.test:${port}/hook`,
        secret: null,
        token: null,
        headers: {},
        events: null,
        includeMarkdown: false,
        includeMetadata: false,
      };
      // Submit-time validation passes a name: only the lookup at send time can see where it leads.
      expect(() => guard.checkUrl(new URL(webhook.url))).not.toThrow();
      const [created] = await store.createJobs([{ type: 'noop', parameters: {}, maxAttempts: 1, ownerId: 'o', webhook }]);
      const job = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
      await store.complete({ jobId: job.id, workerId: 'w', leaseToken: job.leaseToken }, null);
      dispatcher.start();
      await expect.poll(async () => (await store.listDeliveries({ jobId: created?.value.id as string }))[0]?.status).toBe('FAILED');
      const [delivery] = await store.listDeliveries({ jobId: created?.value.id as string });
      expect(delivery?.attempts).toEqual([expect.objectContaining({ error: 'TARGET_FORBIDDEN', statusCode: null })]);
      expect(receiver.requests).toHaveLength(0);
    } finally {
      await dispatcher.stop();
      await store.close();
      await adapter.cleanup();
    }
  });

  it('hands prefetched deliveries back unsent when stopped, and records the ones in flight', async () => {
    const adapter = sqliteAdapter();
    const store = await adapter.open();
    // The first two requests take a while, so the dispatcher is stopped with both in flight.
    receiver = await startReceiver((_r, index) => ({ status: 200, delayMs: index < 2 ? 300 : 0 }));
    const dispatcherFor = (workerId: string) =>
      createDispatcher({
        store,
        results: createFsResultStore(join(tmpdir(), 'conveyor-unused-results')),
        signer: createUrlSigner({ secret: 'test', ttl: 60, baseUrl: 'http://localhost' }),
        guard: createNetGuard(['127.0.0.1']),
        config: { ...DEFAULTS.webhooks, concurrency: 2, pollMs: 50, allowHttp: true },
        logger: createLogger('error'),
        workerId,
        version: 'test',
      });
    try {
      const webhook = {
        url: receiver.url,
        secret: null,
        token: null,
        headers: {},
        events: null,
        includeMarkdown: false,
        includeMetadata: false,
      };
      const { value } = await store.createBatch({
        name: 'b',
        ownerId: 'o',
        jobs: Array.from({ length: 12 }, (_, n) => ({ type: 'noop', parameters: { n }, maxAttempts: 1, webhook })),
      });
      const list = (status: Delivery['status']) => store.listDeliveries({ batchId: value.batch.id, status });
      for (let i = 0; i < 12; i++) {
        const job = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
        await store.complete({ jobId: job.id, workerId: 'w', leaseToken: job.leaseToken }, null);
      }
      const first = dispatcherFor('d1');
      first.start();
      await expect.poll(() => receiver.requests.length).toBe(2);
      await first.stop();
      expect(await list('SENDING')).toEqual([]);
      expect(await list('DELIVERED')).toHaveLength(2);
      const pending = await list('PENDING');
      expect(pending).toHaveLength(10);
      expect(pending.every((d) => d.attempts.length === 0 && d.leaseOwner === null)).toBe(true);

      const second = dispatcherFor('d2');
      second.start();
      await expect.poll(async () => (await list('DELIVERED')).length, { timeout: 10_000 }).toBe(12);
      await second.stop();
      expect(receiver.requests).toHaveLength(12);
      expect(new Set(receiver.requests.map((r) => r.headers['webhook-id'])).size).toBe(12);
    } finally {
      await store.close();
      await adapter.cleanup();
    }
  });
});
