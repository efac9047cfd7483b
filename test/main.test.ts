/** The real entry point, as `npm start` runs it: start, serve, stop on SIGTERM; refuse bad config. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startBanner } from '../src/main.js';
import { SLIDES_TEXT } from './helpers/make-pdf-fixtures.js';
import { watchLines } from './helpers/processes.js';
import { startReceiver } from './helpers/receiver.js';
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
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const url = await listening;
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('"msg":"shutting down"');
  });

  it('runs a job submitted over GraphQL and sends it a signed webhook callback', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'conveyor-main-'));
    dirs.push(dataDir);
    const receiver = await startReceiver(() => 204);
    const child = startMain({
      CONVEYOR_PORT: '0',
      CONVEYOR_DATA_DIR: dataDir,
      CONVEYOR_WEBHOOKS__ALLOW_HTTP: 'true',
      CONVEYOR_NET_ALLOW: '127.0.0.1',
      CONVEYOR_HANDLERS__MODULES: 'test/fixtures/handlers/test-handlers.ts',
    });
    try {
      let stderr = '';
      const url = await new Promise<string>((resolve) => {
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          const match = /"url":"(http:[^"]+)"/.exec(stderr);
          if (match?.[1]) resolve(match[1]);
        });
      });
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
      const deadline = Date.now() + 15_000;
      while (receiver.requests.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
      const [callback] = receiver.requests;
      const payload = new Webhook(secret).verify(callback?.body as string, callback?.headers as Record<string, string>);
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
      let job = { status: 'PENDING', archiveUrl: '', results: { markdown: { file: { url: '' } } } };
      while (job.status !== 'COMPLETED' && Date.now() < deadline + 15_000) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        job = (await gql('query ($id: ID!) { job(id: $id) { status archiveUrl results { markdown { file { url } } } } }', { id: jobId }))
          .data.job as typeof job;
      }
      expect(job.status).toBe('COMPLETED');
      const markdown = await (await fetch(job.results.markdown.file.url)).text();
      expect(markdown).toContain(SLIDES_TEXT[0]);
      const zip = await unzip(Buffer.from(await (await fetch(job.archiveUrl)).arrayBuffer()));
      expect([...zip.keys()].sort()).toEqual(['document.json', 'document.md', 'manifest.json']);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.on('exit', resolve));
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
