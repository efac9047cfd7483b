/**
 * The `session` type end to end: a local site serving a realistic session page (with
 * navigation, sidebar, speakers, an image and two PDF attachments), a real Conveyor,
 * the batch archive read back with yauzl, and an OpenAI-compatible transformer served
 * locally for translation and transcription.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startApi, type TestApi } from '../helpers/api.js';
import { startGzipBomb } from '../helpers/gzip-bomb.js';
import { SLIDES_TEXT } from '../helpers/make-pdf-fixtures.js';
import { startReceiver } from '../helpers/receiver.js';
import { unzip } from '../helpers/zip.js';

// A 1×1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const PAPER_TEXT = 'Fencing tokens make stale writes harmless';

let paper: Uint8Array;
let site: { server: Server; url: string; requests: string[] };
/** What the local site serves, by path; a test may add its own page. */
const pages: Record<string, { type: string; body: Buffer | Uint8Array | string }> = {};
let api: TestApi;

beforeAll(async () => {
  const doc = await PDFDocument.create();
  doc.setTitle('Queues at scale, the paper');
  const font = await doc.embedFont(StandardFonts.Helvetica);
  doc.addPage([480, 270]).drawText(PAPER_TEXT, { x: 40, y: 180, size: 14, font });
  paper = await doc.save();
  Object.assign(pages, {
    '/sessions/queues-at-scale.html': {
      type: 'text/html; charset=utf-8',
      body: readFileSync('test/fixtures/session/queues-at-scale.html'),
    },
    '/media/lease-timeline.png': { type: 'image/png', body: PNG },
    '/files/queues-slides.pdf': { type: 'application/pdf', body: readFileSync('test/fixtures/pdf/slides.pdf') },
    '/files/queues-paper.pdf': { type: 'application/pdf', body: paper },
    '/video/talk.mp4': { type: 'video/mp4', body: Buffer.from('not really a video, but bytes to send') },
    '/data.json': { type: 'application/json', body: '{}' },
  });
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(path);
    const page = pages[path];
    if (page === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': page.type }).end(page.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  site = { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
});

afterEach(async () => {
  await api?.stop();
});

interface JobView {
  id: string;
  status: string;
  error: { code: string; message: string; details: Record<string, unknown> | null } | null;
  logs: { message: string }[];
  results: {
    markdown: { file: { name: string }; text: string } | null;
    files: { name: string; sha256: string }[];
    metadata: Record<string, unknown>;
  } | null;
}

async function waitFor(id: string): Promise<JobView> {
  let job: JobView | null = null;
  await expect
    .poll(
      async () => {
        const { body } = await api.gql<{ job: JobView }>(
          'query ($id: ID!) { job(id: $id) { id status error { code message details } logs { message } results { markdown { file { name } text } files { name sha256 } metadata } } }',
          { id },
        );
        job = body.data?.job ?? null;
        return job?.status === 'COMPLETED' || job?.status === 'FAILED';
      },
      { timeout: 30_000 },
    )
    .toBe(true);
  return job as unknown as JobView;
}

const session = (extra: Record<string, unknown> = {}) => ({
  url: `${site.url}/sessions/queues-at-scale.html`,
  event: 'ConfX 2026',
  session: 'Queues at scale',
  filename: 'queues-at-scale',
  track: 'Systems',
  day: '2026-06-12',
  starttime: '10:30',
  endtime: '11:15',
  speakers: ['Ada Lovelace', 'Grace Hopper'],
  ...extra,
});

describe('session handler', () => {
  it('turns a session page into Markdown with front matter, both PDFs as text and the image in assets; the batch ZIP holds it all', async () => {
    api = await startApi({ overrides: { 'net.allow': ['127.0.0.1'] } });
    const { body } = await api.gql<{ submitBatch: { batch: { id: string; archiveUrl: string } } }>(
      'mutation ($jobs: [BatchJobInput!]!) { submitBatch(input: { name: "ConfX day 2", jobs: $jobs }) { batch { id archiveUrl } } }',
      { jobs: [{ type: 'session', parameters: session({ targetLanguage: 'de', sourceLanguage: 'en' }) }] },
    );
    expect(body.errors).toBeUndefined();
    const batch = body.data?.submitBatch.batch as { id: string; archiveUrl: string };
    const list = await api.gql<{ jobs: { edges: { node: { id: string } }[] } }>(
      'query ($b: ID!) { jobs(filter: { batchId: $b }) { edges { node { id } } } }',
      { b: batch.id },
    );
    const job = await waitFor(list.body.data?.jobs.edges[0]?.node.id as string);
    expect(job.error).toBeNull();
    expect(job.status).toBe('COMPLETED');

    const markdown = job.results?.markdown?.text as string;
    expect(job.results?.markdown?.file.name).toBe('queues-at-scale.md');
    const [, frontText = '', rest = ''] = /^---\n([\s\S]*?)\n---\n([\s\S]*)$/.exec(markdown) ?? [];
    expect(parse(frontText)).toMatchObject({
      event: 'ConfX 2026',
      session: 'Queues at scale',
      track: 'Systems',
      day: '2026-06-12',
      starttime: '10:30',
      endtime: '11:15',
      speakers: ['Ada Lovelace', 'Grace Hopper'],
      source: `${site.url}/sessions/queues-at-scale.html`,
      sourceLanguage: 'en',
      targetLanguage: 'de',
      attachments: ['assets/queues-slides.pdf', 'assets/queues-paper.pdf'],
    });
    expect(rest).toContain('# Queues at scale');
    expect(rest).toContain('Durable job queues keep working when machines fail');
    expect(rest).toContain('two million jobs a day');
    expect(rest).toContain('![A lease timeline with two workers](assets/lease-timeline.png)');
    for (const line of [...SLIDES_TEXT, PAPER_TEXT]) expect(rest).toContain(line);
    // Navigation, sidebar and footer are not the talk.
    expect(rest).not.toContain('Tickets');
    expect(rest).not.toContain('Also in Room B');
    expect(rest).not.toContain('Imprint');

    expect(job.results?.files.map((f) => f.name).sort()).toEqual(
      ['assets/lease-timeline.png', 'assets/queues-paper.pdf', 'assets/queues-slides.pdf', 'queues-at-scale.md'].sort(),
    );
    // No transformer configured: the translation is skipped, and the job says so.
    expect(job.results?.metadata.transformer).toEqual({
      translation: { status: 'skipped', reason: 'no transformer configured (transformer.url)' },
    });
    expect(job.logs.map((l) => l.message)).toContain('translation skipped: no transformer configured (transformer.url)');

    const zip = await unzip(Buffer.from(await (await fetch(batch.archiveUrl)).arrayBuffer()));
    const manifest = JSON.parse((zip.get('manifest.json') as Buffer).toString()) as {
      jobs: { folder: string; files: { path: string; sha256: string }[] }[];
    };
    expect(manifest.jobs[0]?.folder).toBe('Systems/Queues at scale');
    const files = manifest.jobs.flatMap((j) => j.files);
    expect(files.map((f) => f.path).sort()).toEqual(
      [
        'Systems/Queues at scale/assets/lease-timeline.png',
        'Systems/Queues at scale/assets/queues-paper.pdf',
        'Systems/Queues at scale/assets/queues-slides.pdf',
        'Systems/Queues at scale/queues-at-scale.md',
      ].sort(),
    );
    for (const file of files)
      expect(
        createHash('sha256')
          .update(zip.get(file.path) as Buffer)
          .digest('hex'),
        file.path,
      ).toBe(file.sha256);
    expect(zip.get('Systems/Queues at scale/assets/lease-timeline.png')).toEqual(PNG);
    expect(zip.get('Systems/Queues at scale/assets/queues-paper.pdf')).toEqual(Buffer.from(paper));
  }, 60_000);

  it('translates and transcribes through an OpenAI-compatible transformer when one is configured', async () => {
    const calls: { path: string; auth: string | undefined; body: string }[] = [];
    const llm = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        calls.push({ path: req.url ?? '', auth: req.headers.authorization, body });
        res.setHeader('content-type', 'application/json');
        if (req.url === '/v1/chat/completions') {
          const { messages } = JSON.parse(body) as { messages: { content: string }[] };
          res.end(JSON.stringify({ choices: [{ message: { content: `ÜBERSETZT\n${messages[1]?.content.length}` } }] }));
        } else if (req.url === '/v1/audio/transcriptions') res.end(JSON.stringify({ text: 'Welcome to queues at scale.' }));
        else res.writeHead(404).end('{}');
      });
    });
    await new Promise<void>((resolve) => llm.listen(0, '127.0.0.1', resolve));
    try {
      api = await startApi({
        overrides: {
          'net.allow': ['127.0.0.1'],
          'transformer.url': `http://127.0.0.1:${(llm.address() as AddressInfo).port}/v1`,
          'transformer.apiKey': 'sk-test',
        },
      });
      const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
        'mutation ($p: JSON) { submitJob(input: { type: "session", parameters: $p }) { job { id } } }',
        { p: session({ targetLanguage: 'de', videoUrl: `${site.url}/video/talk.mp4` }) },
      );
      const job = await waitFor(body.data?.submitJob.job.id as string);
      expect(job.error).toBeNull();
      expect(job.results?.markdown?.text).toContain('## Transcript\n\nWelcome to queues at scale.');
      expect(job.results?.files.map((f) => f.name)).toContain('queues-at-scale.de.md');
      expect(job.results?.metadata.transformer).toMatchObject({
        transcription: { status: 'done' },
        translation: { status: 'done', file: 'queues-at-scale.de.md' },
      });
      expect(calls.map((c) => c.path).sort()).toEqual(['/v1/audio/transcriptions', '/v1/chat/completions']);
      expect(calls.every((c) => c.auth === 'Bearer sk-test')).toBe(true);
      expect(calls.find((c) => c.path.endsWith('transcriptions'))?.body).toContain('not really a video');
    } finally {
      await new Promise<void>((resolve) => llm.close(() => resolve()));
    }
  }, 60_000);

  it('takes the original snake_case names, fills languages from transformer defaults, and records the transformer usage', async () => {
    const llm = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.url === '/v1/chat/completions') {
          res.end(
            JSON.stringify({
              model: 'llm-x',
              choices: [{ message: { content: 'TRADUIT' } }],
              usage: { prompt_tokens: 100, completion_tokens: 40, total_tokens: 140 },
            }),
          );
        } else if (req.url === '/v1/audio/transcriptions') {
          res.end(JSON.stringify({ text: 'Hello.', usage: { type: 'tokens', input_tokens: 20, output_tokens: 5, total_tokens: 25 } }));
        } else res.writeHead(404).end('{}');
      });
    });
    await new Promise<void>((resolve) => llm.listen(0, '127.0.0.1', resolve));
    try {
      api = await startApi({
        overrides: {
          'net.allow': ['127.0.0.1'],
          'transformer.url': `http://127.0.0.1:${(llm.address() as AddressInfo).port}/v1`,
          'transformer.defaultTargetLanguage': 'fr',
        },
      });
      const submit = (p: Record<string, unknown>) =>
        api.gql<{ submitJob: { job: { id: string; parameters: Record<string, unknown> } } }>(
          'mutation ($p: JSON) { submitJob(input: { type: "session", parameters: $p }) { job { id parameters } } }',
          { p },
        );
      const { body } = await submit(session({ video_url: `${site.url}/video/talk.mp4`, source_language: 'en' }));
      const submitted = body.data?.submitJob.job;
      expect(submitted?.parameters).toMatchObject({ videoUrl: `${site.url}/video/talk.mp4`, sourceLanguage: 'en' });
      expect(Object.keys(submitted?.parameters ?? {}).filter((k) => k.includes('_'))).toEqual([]);
      const job = await waitFor(submitted?.id as string);
      expect(job.error).toBeNull();
      expect(job.results?.files.map((f) => f.name)).toContain('queues-at-scale.fr.md');
      expect(job.results?.metadata).toMatchObject({ sourceLanguage: 'en', targetLanguage: 'fr' });
      const { body: read } = await api.gql<{ job: { usage: Record<string, unknown> } }>(
        'query ($id: ID!) { job(id: $id) { usage { tokens inputTokens outputTokens costUsd models } } }',
        { id: job.id },
      );
      expect(read.data?.job.usage).toEqual({ tokens: 165, inputTokens: 120, outputTokens: 45, costUsd: 0, models: ['whisper-1', 'llm-x'] });

      // Both spellings with different values are refused at submit, naming the alias.
      const clash = await submit(session({ videoUrl: `${site.url}/video/a.mp4`, video_url: `${site.url}/video/b.mp4` }));
      expect(clash.body.errors?.[0]).toMatchObject({
        message: expect.stringContaining('job.parameters.video_url'),
        extensions: { code: 'BAD_USER_INPUT' },
      });
      const { body: types } = await api.gql<{ jobTypes: { name: string; parameterSchema: { properties: Record<string, unknown> } }[] }>(
        '{ jobTypes { name parameterSchema } }',
      );
      const schema = types.data?.jobTypes.find((t) => t.name === 'session')?.parameterSchema;
      expect(Object.keys(schema?.properties ?? {})).toEqual(expect.arrayContaining(['videoUrl', 'video_url', 'target_language']));
    } finally {
      await new Promise<void>((resolve) => llm.close(() => resolve()));
    }
  }, 60_000);

  it('reads a transformer answer only up to limits.maxDownloadBytes: a gzip bomb fails the job and is cut', async () => {
    const bomb = await startGzipBomb({ contentType: 'application/json' });
    try {
      api = await startApi({
        overrides: { 'net.allow': ['127.0.0.1'], 'transformer.url': `${bomb.url}/v1`, 'limits.maxDownloadBytes': 1_000_000 },
      });
      const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
        'mutation ($p: JSON) { submitJob(input: { type: "session", parameters: $p }) { job { id } } }',
        { p: session({ targetLanguage: 'de' }) },
      );
      const job = await waitFor(body.data?.submitJob.job.id as string);
      expect(job.error).toMatchObject({ code: 'TRANSFORMER_FAILED', message: expect.stringContaining('larger than 1000000 bytes') });
      expect(bomb.requests.map((r) => r.path)).toEqual(['/v1/chat/completions']);
      await expect.poll(() => bomb.closed).toBe(true);
      expect(bomb.finished).toBe(false);
      expect(bomb.written).toBeLessThan(bomb.total);
    } finally {
      await bomb.close();
    }
  }, 60_000);

  it('fails with TRANSFORMER_FAILED when the transformer answers 500 (retried), garbage (not retried) or hangs past transformer.timeoutMs', async () => {
    // The target language picks the answer: de → 500, fr → not JSON, es → never answers.
    const transformer = await startReceiver((request) => {
      const { messages } = JSON.parse(request.body) as { messages: { content: string }[] };
      const system = messages[0]?.content ?? '';
      if (system.includes(' into de.')) return { status: 500, headers: { 'content-type': 'application/json' }, body: '{"error":"boom"}' };
      if (system.includes(' into fr.'))
        return { status: 200, headers: { 'content-type': 'application/json' }, body: '{"choices": [{"mess' };
      return 'hang';
    });
    const into = (language: string) => transformer.requests.filter((r) => r.body.includes(` into ${language}.`)).length;
    try {
      api = await startApi({
        overrides: {
          'net.allow': ['127.0.0.1'],
          'transformer.url': `${transformer.url.replace(/\/hook$/, '')}/v1`,
          'transformer.timeoutMs': 500,
        },
      });
      const submit = async (targetLanguage: string, maxAttempts: number) => {
        const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
          'mutation ($p: JSON, $n: Int) { submitJob(input: { type: "session", parameters: $p, maxAttempts: $n }) { job { id } } }',
          { p: session({ targetLanguage }), n: maxAttempts },
        );
        expect(body.errors).toBeUndefined();
        return waitFor(body.data?.submitJob.job.id as string);
      };
      const failures = (job: JobView) => job.logs.map((l) => l.message).filter((m) => m.startsWith('failed: '));

      const refused = await submit('de', 3);
      expect(refused.status).toBe('FAILED');
      expect(refused.error).toMatchObject({ code: 'TRANSFORMER_FAILED', message: 'translation: the transformer answered 500' });
      expect(into('de')).toBe(3);
      expect(failures(refused)).toEqual([
        expect.stringMatching(/^failed: TRANSFORMER_FAILED translation: the transformer answered 500 \(attempt 1 of 3; next attempt at /),
        expect.stringMatching(/^failed: TRANSFORMER_FAILED translation: the transformer answered 500 \(attempt 2 of 3; next attempt at /),
        'failed: TRANSFORMER_FAILED translation: the transformer answered 500 (attempt 3 of 3; no attempts left (3 of 3))',
      ]);

      const garbage = await submit('fr', 3);
      expect(garbage.status).toBe('FAILED');
      expect(garbage.error).toMatchObject({ code: 'TRANSFORMER_FAILED', message: "translation: the transformer's answer is not JSON" });
      expect(into('fr')).toBe(1);
      expect(failures(garbage)).toEqual([expect.stringMatching(/\(attempt 1 of 3; not retriable\)$/)]);

      const hung = await submit('es', 1);
      expect(hung.status).toBe('FAILED');
      expect(hung.error).toMatchObject({ code: 'TRANSFORMER_FAILED', message: expect.stringMatching(/^translation: ETIMEDOUT .*500 ?ms/) });
      expect(into('es')).toBe(1);
      // No job pretended to have a translation.
      for (const job of [refused, garbage, hung])
        expect(job.results?.files.map((f) => f.name) ?? []).not.toContain(expect.stringMatching(/\.(de|fr|es)\.md$/));
    } finally {
      await transformer.close();
    }
  }, 60_000);

  it('refuses a PDF attachment on a private address not in net.allow: TARGET_FORBIDDEN naming the attachment, nothing fetched from it', async () => {
    // Another loopback address than the allowed 127.0.0.1: a host inside the network.
    const inside: string[] = [];
    const internal = createServer((req, res) => {
      inside.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/pdf' }).end(paper);
    });
    await new Promise<void>((resolve) => internal.listen(0, '127.0.0.2', resolve));
    const secret = `http://127.0.0.2:${(internal.address() as AddressInfo).port}/internal/board-minutes.pdf`;
    pages['/sessions/internal-link.html'] = {
      type: 'text/html; charset=utf-8',
      body: readFileSync('test/fixtures/session/queues-at-scale.html', 'utf8').replace(
        '<a href="../files/queues-paper.pdf?download=1">',
        `<a href="${secret}">`,
      ),
    };
    try {
      api = await startApi({ overrides: { 'net.allow': ['127.0.0.1'] } });
      const { body } = await api.gql<{ submitJob: { job: { id: string } } }>(
        'mutation ($p: JSON) { submitJob(input: { type: "session", parameters: $p }) { job { id } } }',
        { p: session({ url: `${site.url}/sessions/internal-link.html` }) },
      );
      const job = await waitFor(body.data?.submitJob.job.id as string);
      expect(job.status).toBe('FAILED');
      expect(job.error).toMatchObject({
        code: 'TARGET_FORBIDDEN',
        details: { attachment: secret },
        message: expect.stringMatching(new RegExp(`^attachment ${secret.replaceAll('.', '\\.')}: refusing to connect to 127\\.0\\.0\\.2`)),
      });
      // One attempt (a forbidden target does not change on retry), and the log says why.
      expect(job.logs.map((l) => l.message).filter((m) => m.startsWith('failed: '))).toEqual([
        expect.stringMatching(
          new RegExp(`^failed: TARGET_FORBIDDEN attachment ${secret.replaceAll('.', '\\.')}: .*\\(attempt 1 of 3; not retriable\\)$`),
        ),
      ]);
      expect(inside).toEqual([]);
      // The allowed attachment before it was fetched: only the private one was refused.
      expect(site.requests).toContain('/files/queues-slides.pdf');
    } finally {
      delete pages['/sessions/internal-link.html'];
      await new Promise<void>((resolve) => internal.close(() => resolve()));
    }
  }, 60_000);

  it('fails with clear codes: a page that is not HTML, a target the SSRF guard refuses, bad parameters at submit', async () => {
    api = await startApi({ overrides: { 'net.allow': ['127.0.0.1'] } });
    const submit = async (p: Record<string, unknown>) =>
      api.gql<{ submitJob: { job: { id: string } } }>(
        'mutation ($p: JSON) { submitJob(input: { type: "session", parameters: $p }) { job { id } } }',
        { p },
      );
    const notHtml = await waitFor((await submit({ url: `${site.url}/data.json` })).body.data?.submitJob.job.id as string);
    expect(notHtml.error?.code).toBe('UNSUPPORTED_CONTENT_TYPE');
    const forbidden = await waitFor((await submit({ url: 'http://10.1.2.3/session.html' })).body.data?.submitJob.job.id as string);
    expect(forbidden.error?.code).toBe('TARGET_FORBIDDEN');
    const bad = await submit({ url: 'ftp://example.com/x', speakers: 'Ada' });
    expect(bad.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  }, 60_000);
});
