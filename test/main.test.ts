/** The real entry point, as `npm start` runs it: start, serve, stop on SIGTERM; refuse bad config. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Client, createClient } from 'graphql-ws';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startBanner } from '../src/main.js';
import { subscribe, withHeaders } from './helpers/api.js';
import { SLIDES_TEXT } from './helpers/make-pdf-fixtures.js';
import { watchLines, whileRunning } from './helpers/processes.js';
import { type Received, startReceiver } from './helpers/receiver.js';
import { unzip } from './helpers/zip.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function startMain(env: Record<string, string>) {
  return spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
}

describe('conveyor main', () => {
  it('starts on the embedded store, serves /readyz, and exits 0 on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'conveyor-main-'));
    dirs.push(dataDir);
    const child = startMain({ CONVEYOR_PORT: '0', CONVEYOR_DATA_DIR: dataDir });
    let stderr = '';
    const listening = new Promise<string>((resolve) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const match = /"url":"(http:[^"]+)"/.exec(stderr);
        if (match?.[1]) resolve(match[1]);
      });
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal, stderr })),
    );
    const url = await whileRunning(listening, exited);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    child.kill('SIGTERM');
    expect((await exited).code).toBe(0);
    expect(stderr).toContain('"msg":"shutting down"');
  });

  it('runs a job submitted over GraphQL and sends it a signed webhook callback', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'conveyor-main-'));
    dirs.push(dataDir);
    let called: (request: Received) => void = () => undefined;
    const firstCallback = new Promise<Received>((resolve) => {
      called = resolve;
    });
    const receiver = await startReceiver((request) => {
      called(request);
      return 204;
    });
    const child = startMain({
      CONVEYOR_PORT: '0',
      CONVEYOR_DATA_DIR: dataDir,
      CONVEYOR_WEBHOOKS__ALLOW_HTTP: 'true',
      CONVEYOR_NET_ALLOW: '127.0.0.1',
      CONVEYOR_HANDLERS__MODULES: 'test/fixtures/handlers/test-handlers.ts',
    });
    let stderr = '';
    // 'close', not 'exit': the child's stderr has been read to the end by then.
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal, stderr })),
    );
    let client: Client | null = null;
    try {
      const url = await whileRunning(
        new Promise<string>((resolve) => {
          child.stderr.on('data', (chunk: Buffer) => {
            stderr += chunk.toString();
            const match = /"url":"(http:[^"]+)"/.exec(stderr);
            if (match?.[1]) resolve(match[1]);
          });
        }),
        exited,
      );
      const secret = `whsec_${randomBytes(32).toString('base64')}`;
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-user-id': 'alice' },
        body: JSON.stringify({
          query:
            'mutation ($webhook: WebhookInput!) { submitJob(input: { type: "sleepy", parameters: { ms: 10 }, webhook: $webhook }) { job { id } } }',
          variables: { webhook: { url: receiver.url, secret } },
        }),
      });
      const { data } = (await response.json()) as { data: { submitJob: { job: { id: string } } } };
      const callback = await whileRunning(firstCallback, exited);
      const payload = new Webhook(secret).verify(callback.body, callback.headers as Record<string, string>);
      expect(payload).toMatchObject({ type: 'job.completed', jobId: data.submitJob.job.id, status: 'COMPLETED' });

      // A real pdf job from an upload: its Markdown and its ZIP by signed URL, without credentials.
      const slides = readFileSync('test/fixtures/pdf/slides.pdf');
      const upload = await fetch(`${url}/uploads`, {
        method: 'POST',
        headers: { 'x-user-id': 'alice', 'content-type': 'application/pdf' },
        body: slides,
      });
      const { uploadId } = (await upload.json()) as { uploadId: string };
      const gql = async (query: string, variables: Record<string, unknown>) =>
        (await (
          await fetch(`${url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-user-id': 'alice' },
            body: JSON.stringify({ query, variables }),
          })
        ).json()) as {
          data: Record<
            string,
            { job: { id: string } } & { status: string; archiveUrl: string; results: { markdown: { file: { url: string } } } }
          >;
        };
      const submitted = await gql(
        'mutation ($id: String!) { submitJob(input: { type: "pdf", parameters: { uploadId: $id } }) { job { id } } }',
        { id: uploadId },
      );
      const jobId = submitted.data.submitJob?.job.id as string;
      // Followed over graphql-ws: the current state first, then every change up to the end.
      client = createClient({
        url: `${url.replace('http', 'ws')}/graphql`,
        webSocketImpl: withHeaders({ 'x-user-id': 'alice' }),
        retryAttempts: 0,
        lazy: true,
      });
      const updates = subscribe<{ status: string }>(
        client,
        'subscription ($id: ID!) { jobUpdated(id: $id) { status } }',
        { id: jobId },
        (values) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(values.at(-1)?.status ?? ''),
        30_000,
      );
      expect((await whileRunning(updates.finished, exited)).at(-1)?.status).toBe('COMPLETED');
      const job = (
        await gql('query ($id: ID!) { job(id: $id) { status archiveUrl results { markdown { file { url } } } } }', { id: jobId })
      ).data.job as { status: string; archiveUrl: string; results: { markdown: { file: { url: string } } } };
      expect(job.status).toBe('COMPLETED');
      const markdown = await (await fetch(job.results.markdown.file.url)).text();
      expect(markdown).toContain(SLIDES_TEXT[0]);
      const zip = await unzip(Buffer.from(await (await fetch(job.archiveUrl)).arrayBuffer()));
      expect([...zip.keys()].sort()).toEqual(['document.json', 'document.md', 'manifest.json']);
    } finally {
      await client?.dispose();
      child.kill('SIGTERM');
      await exited;
      await receiver.close();
    }
  });

  it('refuses to start on invalid configuration, naming the key, without a stack trace', async () => {
    const result = await watchLines(startMain({ CONVEYOR_STORE: 'postgres' }), () => {});
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('store.driver (from CONVEYOR_STORE)');
    expect(result.stderr).not.toContain('    at ');
  });

  it('refuses the mongodb driver without a URI, saying what to set', async () => {
    const result = await watchLines(startMain({ CONVEYOR_STORE: 'mongodb', MONGODB_URI: '' }), () => {});
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('set MONGODB_URI');
  });
});

describe('the start banner', () => {
  it('names what each role serves', () => {
    const all = startBanner('http://127.0.0.1:4000', loadConfig({ env: {}, file: null }));
    expect(all).toContain('dashboard  http://127.0.0.1:4000/');
    expect(all).toContain('GraphQL    http://127.0.0.1:4000/graphql');
    expect(all).toContain('metrics    http://127.0.0.1:4000/metrics');
    expect(all).toContain('npm run demo');
    const worker = startBanner(
      'http://127.0.0.1:4001',
      loadConfig({ env: {}, file: null, overrides: { role: 'worker', 'metrics.enabled': false } }),
    );
    expect(worker).toContain('(worker, sqlite)');
    expect(worker).toContain('health     http://127.0.0.1:4001/readyz');
    expect(worker).not.toContain('dashboard');
    expect(worker).not.toContain('metrics');
  });
});
