/** /metrics read with a Prometheus text-format parser written by others, around a known workload. */
import parse from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../helpers/api.js';
import { type Receiver, startReceiver } from '../helpers/receiver.js';

let api: TestApi;
let receiver: Receiver | null = null;
afterEach(async () => {
  await api?.stop();
  await receiver?.close();
  receiver = null;
});

type Families = ReturnType<typeof parse>;

type Scrape = Families & { text: string };

async function scrape(headers: Record<string, string> = {}): Promise<Scrape> {
  const response = await fetch(`${api.url}/metrics`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  const text = await response.text();
  return Object.assign(parse(text), { text });
}

/**
 * The value of one counter or gauge series (0 when absent); for a histogram, its
 * `_count` (read from the text: the parser merges labelled histogram series).
 */
function value(families: Scrape, name: string, labels: Record<string, string> = {}): number {
  const family = families.find((f) => f.name === name);
  if (family?.type === 'HISTOGRAM') {
    const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    const line = families.text.split('\n').find((l) => l.startsWith(`${name}_count{`) && pairs.every((p) => l.includes(p)));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  }
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return sample === undefined ? 0 : Number(sample.value ?? 0);
}

async function finished(id: string): Promise<void> {
  await expect
    .poll(
      async () =>
        (await api.gql<{ job: { status: string } }>('query ($id: ID!) { job(id: $id) { status } }', { id })).body.data?.job.status,
    )
    .toMatch(/COMPLETED|FAILED/);
}

describe('/metrics', () => {
  it('counts a known workload: completed, failed, retried, webhook attempts, durations, queue wait, subscriptions, store latency', async () => {
    receiver = await startReceiver(() => 200);
    api = await startApi({ overrides: { 'webhooks.allowHttp': true, 'net.allow': ['127.0.0.1'], 'worker.backoff.baseMs': 10 } });
    const before = await scrape();
    const submit = async (type: string, parameters: Record<string, unknown>, extra = '') => {
      const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
        `mutation ($p: JSON) { submitJob(input: { type: "${type}", parameters: $p ${extra} }) { job { id } } }`,
        { p: parameters },
      );
      return body.data?.submitJob.job.id as string;
    };
    const echoes = [
      await submit('echo', { text: 'a' }),
      await submit('echo', { text: 'b' }),
      await submit('echo', { text: 'c' }, `, webhook: { url: "${receiver.url}" }`),
    ];
    for (const id of echoes) await finished(id);
    api.gates.open('boom');
    await finished(await submit('gate', { key: 'boom', fail: true }, ', maxAttempts: 1'));
    await finished(await submit('gate', { key: 'boom', fail: true }, ', maxAttempts: 2'));
    // Two attempts: the first fails and is retried, the second completes.
    await finished(await submit('flaky', {}));
    await expect.poll(() => receiver?.requests.length).toBe(1);

    const client = api.client();
    const events: unknown[] = [];
    const stop = client.subscribe(
      { query: 'subscription { jobEvents { op } }' },
      { next: (v) => events.push(v), error: () => undefined, complete: () => undefined },
    );
    await expect.poll(async () => value(await scrape(), 'conveyor_subscriptions_active')).toBe(1);

    await expect.poll(async () => value(await scrape(), 'conveyor_webhook_attempts_total', { outcome: 'DELIVERED' })).toBe(1);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
    expect(delta('conveyor_jobs_claimed_total', { type: 'echo' })).toBe(3);
    expect(delta('conveyor_jobs_completed_total', { type: 'echo' })).toBe(3);
    expect(delta('conveyor_jobs_claimed_total', { type: 'gate' })).toBe(2);
    expect(delta('conveyor_jobs_failed_total', { type: 'gate' })).toBe(2);
    expect(delta('conveyor_jobs_retried_total', { type: 'gate' })).toBe(0);
    expect(delta('conveyor_jobs_claimed_total', { type: 'flaky' })).toBe(2);
    expect(delta('conveyor_jobs_retried_total', { type: 'flaky' })).toBe(1);
    expect(delta('conveyor_jobs_completed_total', { type: 'flaky' })).toBe(1);
    expect(delta('conveyor_job_duration_seconds', { type: 'echo', status: 'COMPLETED' })).toBe(3);
    expect(delta('conveyor_job_queue_wait_seconds', { type: 'echo' })).toBe(3);
    expect(delta('conveyor_webhook_attempt_duration_seconds', { outcome: 'DELIVERED' })).toBe(1);
    expect(value(after, 'conveyor_jobs', { type: 'echo', status: 'COMPLETED' })).toBe(3);
    expect(value(after, 'conveyor_jobs', { type: 'gate', status: 'FAILED' })).toBe(2);
    expect(value(after, 'conveyor_store_operation_duration_seconds', { operation: 'createJobs' })).toBeGreaterThanOrEqual(5);
    expect(value(after, 'conveyor_process_resident_memory_bytes')).toBeGreaterThan(0);
    stop();
    await expect.poll(async () => value(await scrape(), 'conveyor_subscriptions_active')).toBe(0);
  }, 30_000);

  it('needs the bearer token when metrics.token is set', async () => {
    api = await startApi({ overrides: { 'metrics.token': 's3cret' } });
    expect((await fetch(`${api.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${api.url}/metrics`, { headers: { authorization: 'Bearer wrong!' } })).status).toBe(401);
    expect(value(await scrape({ authorization: 'Bearer s3cret' }), 'conveyor_subscriptions_active')).toBe(0);
  });
});
