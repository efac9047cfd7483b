import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/domain/types.js';
import type { AppError } from '../../src/errors.js';
import { pdfHandler } from '../../src/handlers/pdf.js';
import { createRegistry, type HandlerDefinition } from '../../src/handlers/registry.js';
import { startGzipBomb } from '../helpers/gzip-bomb.js';
import { SLIDES_TEXT } from '../helpers/make-pdf-fixtures.js';
import { createHarness, type Harness } from '../helpers/worker-harness.js';

const slides = readFileSync('test/fixtures/pdf/slides.pdf');
const corrupt = readFileSync('test/fixtures/pdf/corrupt.pdf');
const notPdf = readFileSync('test/fixtures/pdf/not-a-pdf.pdf');
const encrypted = readFileSync('test/fixtures/pdf/encrypted.pdf');
const pdf = pdfHandler as unknown as HandlerDefinition;

describe('pdf handler', () => {
  let server: Server;
  let base: string;
  let h: Harness;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const send = (type: string, body: Buffer | string) => {
        res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      switch (req.url) {
        case '/talks/Queue%20Design.pdf':
          return send('application/pdf', slides);
        case '/corrupt.pdf':
          return send('application/pdf', corrupt);
        case '/fake.pdf':
          return send('application/pdf', notPdf);
        case '/encrypted.pdf':
          return send('application/pdf', encrypted);
        case '/page.html':
          return send('text/html; charset=utf-8', '<html>not a pdf</html>');
        case '/big.pdf':
          return send('application/pdf', Buffer.alloc(300_000, 32));
        case '/redirect-private':
          res.writeHead(302, { location: 'http://10.0.0.1/secret.pdf' });
          return res.end();
        default:
          res.writeHead(404);
          return res.end('no');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    h = createHarness();
  });
  afterEach(() => h.close());

  async function run(parameters: Record<string, unknown>, allow: string[] = ['127.0.0.1'], ownerId = 'alice'): Promise<Job> {
    const [created] = await h.store.createJobs([{ type: 'pdf', parameters: parameters as never, maxAttempts: 3, ownerId }]);
    const id = created?.value.id as string;
    h.worker([pdf], {}, { allow }).start();
    const [job] = await h.waitForStatus([id], ['COMPLETED', 'FAILED'], 20_000);
    return job as Job;
  }

  it('extracts the text of every page into Markdown, with metadata and per-page progress', async () => {
    const job = await run({ url: `${base}/talks/Queue%20Design.pdf` });
    expect(job.status).toBe('COMPLETED');
    expect(job.results).toMatchObject({
      markdown: 'Queue Design.md',
      metadata: { pages: 3, title: 'Queue Design Slides', author: 'Ada Lovelace', created: '2026-01-02T03:04:05Z' },
    });
    const markdown = (await h.results.read(job.id, 'Queue Design.md'))?.toString() ?? '';
    expect(markdown.startsWith('# Queue Design Slides\n\n_Ada Lovelace_')).toBe(true);
    SLIDES_TEXT.forEach((line, i) => {
      expect(markdown).toContain(`## Page ${i + 1}\n\n${line}`);
    });
    expect(JSON.parse((await h.results.read(job.id, 'Queue Design.json'))?.toString() ?? '{}')).toMatchObject({ pages: 3 });
    expect(job.progress).toMatchObject({ percent: 100, step: 'done' });
  });

  it('reads an uploaded PDF of the job owner', async () => {
    const upload = await h.uploads.put('alice', slides, 'application/pdf');
    const job = await run({ uploadId: upload.uploadId, name: 'talk' });
    expect(job.status).toBe('COMPLETED');
    expect((await h.results.read(job.id, 'talk.md'))?.toString()).toContain(SLIDES_TEXT[2]);
  });

  it.each([
    ['a corrupt PDF', { path: '/corrupt.pdf' }, 'PDF_INVALID'],
    ['a file that is not a PDF', { path: '/fake.pdf' }, 'PDF_INVALID'],
    ['a password-protected PDF', { path: '/encrypted.pdf' }, 'PDF_ENCRYPTED'],
    ['an HTML page', { path: '/page.html' }, 'UNSUPPORTED_CONTENT_TYPE'],
    ['a download over limits.maxDownloadBytes', { path: '/big.pdf' }, 'DOWNLOAD_TOO_LARGE'],
    ['a 404', { path: '/missing.pdf' }, 'DOWNLOAD_FAILED'],
    ['a redirect to a private address', { path: '/redirect-private' }, 'TARGET_FORBIDDEN'],
  ])('fails cleanly, without retries, on %s', async (_label, { path }, code) => {
    const job = await run({ url: `${base}${path}` });
    expect(job).toMatchObject({ status: 'FAILED', attempts: 1, error: { code, retriable: false } });
  });

  it('cuts a gzip-bomb download at limits.maxDownloadBytes of inflated data', async () => {
    const bomb = await startGzipBomb({ contentType: 'application/pdf' });
    try {
      const job = await run({ url: `${bomb.url}/slides.pdf` });
      expect(job).toMatchObject({ status: 'FAILED', attempts: 1, error: { code: 'DOWNLOAD_TOO_LARGE', retriable: false } });
      await expect.poll(() => bomb.closed).toBe(true);
      expect(bomb.finished).toBe(false);
      expect(bomb.written).toBeLessThan(bomb.total);
    } finally {
      await bomb.close();
    }
  });

  it('refuses private-network URLs unless net.allow lets them through', async () => {
    const job = await run({ url: `${base}/talks/Queue%20Design.pdf` }, []);
    expect(job).toMatchObject({ status: 'FAILED', attempts: 1, error: { code: 'TARGET_FORBIDDEN' } });
    expect(job.error?.message).toContain('127.0.0.1');
    const metadata = await run({ url: 'http://169.254.169.254/latest/meta-data.pdf' }, []);
    expect(metadata.error?.code).toBe('TARGET_FORBIDDEN');
  });

  it("refuses another user's upload as if it did not exist, and leaves it alone", async () => {
    const upload = await h.uploads.put('bob', slides, 'application/pdf');
    const job = await run({ uploadId: upload.uploadId });
    expect(job).toMatchObject({ status: 'FAILED', error: { code: 'UPLOAD_EXPIRED' } });
    const missing = await run({ uploadId: `upl_${'0'.repeat(32)}` });
    expect(missing.error?.message.replace(missing.id, '<job>').replace(/upl_\w+/, '<upload>')).toBe(
      job.error?.message.replace(job.id, '<job>').replace(/upl_\w+/, '<upload>'),
    );
    expect((await h.uploads.read(upload.uploadId, 'bob')).body.length).toBe(slides.length);
  });

  it('validates parameters at submit time, naming the field', () => {
    const registry = createRegistry([pdf]);
    const code = (parameters: unknown) => {
      try {
        registry.validate('pdf', parameters);
        return 'valid';
      } catch (error) {
        return `${(error as AppError).code} ${(error as AppError).message}`;
      }
    };
    expect(code({})).toBe('BAD_USER_INPUT parameters: give exactly one of url or uploadId');
    expect(code({ url: 'ftp://example.org/a.pdf' })).toMatch(/^BAD_USER_INPUT parameters\.url: /);
    expect(code({ url: 'https://example.org/a.pdf', extra: 1 })).toMatch(/^BAD_USER_INPUT parameters: /);
    expect(code({ url: 'https://example.org/a.pdf' })).toBe('valid');
    expect(() => registry.validate('nope', {})).toThrow('unknown job type "nope"');
  });
});
