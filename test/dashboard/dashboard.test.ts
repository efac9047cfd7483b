/**
 * The dashboard in real headless Chromium (playwright-core, the system's browser; never
 * a download): live progress of a batch without reload, a job's page, cancelling from
 * the UI. A failing test leaves a screenshot in test-results/.
 */
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../helpers/api.js';
import { findBrowser } from '../helpers/browser.js';
import { startReceiver } from '../helpers/receiver.js';

const executablePath = findBrowser();

let browser: Browser;
let api: TestApi;
let page: Page;
let consoleErrors: string[];

beforeAll(async () => {
  if (executablePath === null) return;
  browser = await chromium.launch({ executablePath, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async (context) => {
  if (context.task.result?.state === 'fail' && page !== undefined) {
    mkdirSync('test-results', { recursive: true });
    await page
      .screenshot({ path: join('test-results', `${context.task.name.replace(/[^a-z0-9]+/gi, '-')}.png`), fullPage: true })
      .catch(() => undefined);
  }
  await page?.close();
  await api?.stop();
});

async function open(overrides: Record<string, unknown> = {}, options: { blockWebsockets?: boolean } = {}): Promise<void> {
  api = await startApi({ overrides });
  page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  // As behind a proxy that refuses websocket upgrades: every websocket closes unopened.
  if (options.blockWebsockets === true) await page.routeWebSocket(/\/graphql$/, (socket) => socket.close());
  consoleErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  await page.goto(api.url);
  await page.getByPlaceholder('User id').fill('alice');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
}

describe.skipIf(executablePath === null)('dashboard', () => {
  it('shows a batch submitted through the API and moves its progress bar to 100 % without reload', async () => {
    await open();
    const { body } = await api.gql<{ submitBatch: { batch: { id: string } } }>(
      'mutation { submitBatch(input: { name: "Day 2", jobs: [{ type: "gate", parameters: { key: "a" } }, { type: "gate", parameters: { key: "b" } }, { type: "gate", parameters: { key: "c" } }] }) { batch { id } } }',
    );
    const batchId = body.data?.submitBatch.batch.id as string;
    const bar = page.getByRole('progressbar', { name: 'Day 2 progress' });
    await bar.waitFor();
    expect(await bar.getAttribute('value')).toBe('0');
    api.gates.open('a');
    await expect.poll(() => bar.evaluate((el) => (el as unknown as { value: number }).value)).toBe(33);
    api.gates.open('b');
    api.gates.open('c');
    await expect.poll(() => bar.evaluate((el) => (el as unknown as { value: number }).value)).toBe(100);
    await expect.poll(() => page.locator(`[data-batch="${batchId}"] [data-field=status]`).textContent()).toBe('COMPLETED');

    // Keyboard: the batch link is reachable and opens the batch page.
    await page.getByRole('link', { name: 'Day 2' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: /Day 2/ }).waitFor();
    expect(
      await page.getByRole('progressbar', { name: 'Batch progress' }).evaluate((el) => (el as unknown as { value: number }).value),
    ).toBe(100);
    expect(consoleErrors).toEqual([]);
  }, 60_000);

  it('falls back to Server-Sent Events when a websocket cannot connect, and stays live', async () => {
    await open({}, { blockWebsockets: true });
    const { body } = await api.gql<{ submitBatch: { batch: { id: string } } }>(
      'mutation { submitBatch(input: { name: "Day 3", jobs: [{ type: "gate", parameters: { key: "x" } }, { type: "gate", parameters: { key: "y" } }] }) { batch { id } } }',
    );
    const batchId = body.data?.submitBatch.batch.id as string;
    await expect.poll(() => page.locator('body').getAttribute('data-transport')).toBe('sse');
    const bar = page.getByRole('progressbar', { name: 'Day 3 progress' });
    await bar.waitFor();
    api.gates.open('x');
    await expect.poll(() => bar.evaluate((el) => (el as unknown as { value: number }).value)).toBe(50);
    api.gates.open('y');
    await expect.poll(() => page.locator(`[data-batch="${batchId}"] [data-field=status]`).textContent()).toBe('COMPLETED');
    expect(consoleErrors).toEqual([]);
  }, 60_000);

  it('opens a running job with its log, and cancels it from the UI', async () => {
    await open();
    const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
      'mutation { submitJob(input: { type: "gate", parameters: { key: "never" } }) { job { id } } }',
    );
    const id = body.data?.submitJob.job.id as string;
    await expect.poll(async () => (await api.conveyor.client.getJob(id))?.status).toBe('PROCESSING');
    await page.goto(`${api.url}/#/job/${id}`);
    await expect.poll(() => page.locator('#job-status').textContent()).toBe('PROCESSING');
    await expect.poll(() => page.locator('#logs').textContent()).toContain('waiting for never');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => page.locator('#job-status').textContent(), { timeout: 10_000 }).toBe('CANCELLED');
    expect((await api.conveyor.client.getJob(id))?.status).toBe('CANCELLED');
    expect(consoleErrors).toEqual([]);
  }, 60_000);

  it('shows results with file links of a completed job', async () => {
    await open();
    const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
      'mutation { submitJob(input: { type: "files", parameters: { title: "Shown" } }) { job { id } } }',
    );
    const id = body.data?.submitJob.job.id as string;
    await page.goto(`${api.url}/#/job/${id}`);
    await expect.poll(() => page.locator('#job-status').textContent()).toBe('COMPLETED');
    const link = page.getByRole('link', { name: 'report.md' });
    await link.waitFor();
    const response = await fetch((await link.getAttribute('href')) as string);
    expect(await response.text()).toContain('# Shown');
    expect(consoleErrors).toEqual([]);
  }, 60_000);

  it('shows webhook delivery attempts as they happen, retries included', async () => {
    const receiver = await startReceiver((_request, index) => (index === 0 ? 500 : 200));
    try {
      await open({ 'webhooks.allowHttp': true, 'net.allow': ['127.0.0.1'], 'webhooks.schedule': [1500], 'webhooks.jitter': 0 });
      const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
        `mutation { submitJob(input: { type: "gate", parameters: { key: "hook" }, webhook: { url: "${receiver.url}/hook" } }) { job { id } } }`,
      );
      const id = body.data?.submitJob.job.id as string;
      await page.goto(`${api.url}/#/job/${id}`);
      await expect.poll(() => page.locator('#job-status').textContent()).toBe('PROCESSING');
      api.gates.open('hook');
      const deliveries = page.locator('#job-deliveries');
      // The first attempt fails (500) and is retried; both show without a reload.
      await expect.poll(() => deliveries.textContent(), { timeout: 10_000 }).toContain('500');
      await expect.poll(() => deliveries.textContent(), { timeout: 10_000 }).toContain('DELIVERED');
      expect(await deliveries.textContent()).toMatch(/500[\s\S]*200/);
      expect(receiver.requests).toHaveLength(2);
      expect(consoleErrors).toEqual([]);
    } finally {
      await receiver.close();
    }
  }, 60_000);

  it('pauses, restarts failed jobs, resumes and archives a batch from its page', async () => {
    await open();
    const { body } = await api.gql<{
      submitBatch: { batch: { id: string; jobs: { edges: { node: { id: string; parameters: { key: string } } }[] } } };
    }>(
      'mutation { submitBatch(input: { name: "Ops", jobs: [{ type: "gate", parameters: { key: "ok" } }, { type: "gate", parameters: { key: "bad", fail: true } }] }) { batch { id jobs { edges { node { id parameters } } } } } }',
    );
    const batch = body.data?.submitBatch.batch as { id: string; jobs: { edges: { node: { id: string; parameters: { key: string } } }[] } };
    const bad = batch.jobs.edges.find((e) => e.node.parameters.key === 'bad')?.node.id as string;
    await page.goto(`${api.url}/#/batch/${batch.id}`);
    await page.getByRole('heading', { name: /Ops/ }).waitFor();
    const badStatus = page.locator(`[data-job="${bad}"] [data-field=status]`);
    api.gates.open('ok');
    api.gates.open('bad');
    await expect.poll(() => badStatus.textContent()).toBe('FAILED');

    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('button', { name: 'Resume' }).waitFor();
    expect((await api.conveyor.client.getBatch(batch.id))?.active).toBe(false);
    await page.getByRole('button', { name: 'Restart failed' }).click();
    // Paused: the restarted job waits in the queue.
    await expect.poll(() => page.locator(`[data-job="${bad}"] [data-field=status]`).textContent()).toBe('PENDING');
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('button', { name: 'Pause' }).waitFor();
    await expect.poll(async () => (await api.conveyor.client.getJob(bad))?.status).toBe('FAILED');
    await expect.poll(() => page.locator(`[data-job="${bad}"] [data-field=status]`).textContent()).toBe('FAILED');

    await page.getByRole('button', { name: 'Archive' }).click();
    await page.getByRole('button', { name: 'Unarchive' }).waitFor();
    expect((await api.conveyor.client.getBatch(batch.id))?.archived).toBe(true);
    expect(consoleErrors).toEqual([]);
  }, 60_000);

  it('shows jobs made from inbound webhooks as they arrive, with the source figures', async () => {
    const secret = 'dashboard secret';
    await open({
      'ingest.sources': {
        github: { kind: 'github', secret, owner: { userId: 'alice' }, routes: [{ event: 'pull_request', type: 'review' }] },
      },
    });
    await page.getByRole('heading', { name: 'Inbound webhooks' }).waitFor();
    const body = JSON.stringify({ action: 'opened', number: 7 });
    const response = await fetch(`${api.url}/hooks/github`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'pull_request',
        'x-github-delivery': 'dash-1',
        'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
      },
      body,
    });
    const { jobId } = (await response.json()) as { jobId: string };
    const row = page.locator(`tr[data-job="${jobId}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('webhook github · pull_request');
    await expect.poll(() => row.locator('[data-field=status]').textContent()).toBe('COMPLETED');
    await expect.poll(() => page.locator('[data-source="github"] [data-field=accepted]').textContent()).toBe('1');
    expect(consoleErrors).toEqual([]);
  }, 60_000);

  it('shows the worker and a retrying badge on the job page, and jobs per track in the overview', async () => {
    await open({ 'worker.backoff.baseMs': 600_000, 'worker.backoff.maxMs': 600_000 });
    for (const track of ['ai', 'ai', 'web']) {
      await api.gql('mutation ($t: String!) { submitJob(input: { type: "echo", parameters: { track: $t } }) { job { id } } }', {
        t: track,
      });
    }
    const ai = page.locator('tr[data-track="ai"]');
    await expect.poll(() => ai.locator('[data-field=completed]').textContent(), { timeout: 10_000 }).toBe('2');
    expect(await ai.locator('[data-field=total]').textContent()).toBe('2');
    expect(await page.locator('tr[data-track="web"] [data-field=total]').textContent()).toBe('1');

    const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
      'mutation { submitJob(input: { type: "flaky" }) { job { id } } }',
    );
    const id = body.data?.submitJob.job.id as string;
    const read = async () =>
      (await api.gql<{ job: { retrying: boolean; workerId: string } }>('query ($id: ID!) { job(id: $id) { retrying workerId } }', { id }))
        .body.data?.job;
    await expect.poll(async () => (await read())?.retrying).toBe(true);
    await page.goto(`${api.url}/#/job/${id}`);
    await expect.poll(() => page.locator('#job-status').textContent()).toBe('PENDING retrying');
    expect(await page.locator('#job-worker').textContent()).toBe((await read())?.workerId);
    await api.gql('mutation ($id: ID!, $at: DateTime!) { updateJob(id: $id, input: { runAt: $at }) { id } }', {
      id,
      at: new Date().toISOString(),
    });
    await expect.poll(() => page.locator('#job-status').textContent(), { timeout: 10_000 }).toBe('COMPLETED');
    expect(consoleErrors).toEqual([]);
  }, 60_000);
});
