/**
 * The `pdf` type's `pages` and `includeImages` options through real GraphQL, on PDFs
 * generated here with pdf-lib (text on every page, a picture on page 2) and served by a
 * local HTTP server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodePng } from '../../src/handlers/png.js';
import { startApi, type TestApi } from '../helpers/api.js';

let api: TestApi;
let server: Server;
let base: string;

/** A 4×2 picture: red, green, blue and white pixels on top, black below. */
const PIXELS = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, ...Array(12).fill(0)]);

beforeAll(async () => {
  const doc = await PDFDocument.create();
  doc.setTitle('Four pages');
  const font = await doc.embedFont(StandardFonts.Helvetica);
  const picture = await doc.embedPng(encodePng(PIXELS, 4, 2, 3));
  for (const n of [1, 2, 3, 4]) {
    const page = doc.addPage([400, 300]);
    page.drawText(`Text of page ${n}`, { x: 40, y: 250, size: 14, font });
    if (n === 2) page.drawImage(picture, { x: 40, y: 40, width: 160, height: 80 });
  }
  const bytes = Buffer.from(await doc.save());
  server = createServer((req, res) => {
    if (req.url !== '/four.pdf') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/pdf' }).end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
afterEach(async () => {
  await api?.stop();
});

// biome-ignore lint/suspicious/noExplicitAny: test payloads are read loosely
type Data = Record<string, any>;

async function run(parameters: Record<string, unknown>): Promise<Data> {
  const submitted = await api.gql<Data>('mutation ($p: JSON) { submitJob(input: { type: "pdf", parameters: $p }) { job { id } } }', {
    p: parameters,
  });
  const id = submitted.body.data?.submitJob.job.id as string;
  let job: Data = {};
  await expect
    .poll(async () => {
      const { body } = await api.gql<Data>(
        `query ($id: ID!) { job(id: $id) { status error { code message details }
          results { markdown { text } files { name kind size url } metadata } } }`,
        { id },
      );
      job = body.data?.job ?? {};
      return job.status;
    })
    .toMatch(/^(COMPLETED|FAILED)$/);
  return job;
}

describe('pdf options', () => {
  it('reads only the pages asked for and writes the embedded images as linked assets', async () => {
    api = await startApi({ overrides: { 'net.allow': ['127.0.0.1'] } });
    const job = await run({ url: `${base}/four.pdf`, pages: '2-3', includeImages: true, name: 'four' });
    expect(job.status).toBe('COMPLETED');
    const text: string = job.results.markdown.text;
    expect(text).toContain('## Page 2\n\nText of page 2\n\n![Page 2, image 1](assets/page-2-1.png)');
    expect(text).toContain('## Page 3\n\nText of page 3');
    expect(text).not.toContain('page 1');
    expect(text).not.toContain('page 4');
    expect(job.results.metadata).toMatchObject({ pages: 4, selectedPages: [2, 3], images: ['assets/page-2-1.png'] });
    const files = Object.fromEntries(job.results.files.map((f: Data) => [f.name, f]));
    expect(Object.keys(files).sort()).toEqual(['assets/page-2-1.png', 'four.json', 'four.md']);
    expect(files['assets/page-2-1.png'].kind).toBe('image');
    // The picture comes back with its size and pixels.
    const png = Buffer.from(await (await fetch(files['assets/page-2-1.png'].url)).arrayBuffer());
    expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([4, 2]);
    expect(png).toEqual(encodePng(PIXELS, 4, 2, 3));

    const plain = await run({ url: `${base}/four.pdf`, name: 'plain' });
    expect(plain.results.files.map((f: Data) => f.name).sort()).toEqual(['plain.json', 'plain.md']);
    expect(plain.results.markdown.text).toContain('## Page 4');
    expect(plain.results.markdown.text).not.toContain('![');
  });

  it('refuses a bad page list at submit and a page beyond the last when it runs', async () => {
    api = await startApi({ overrides: { 'net.allow': ['127.0.0.1'] } });
    const { body } = await api.gql(
      'mutation { submitJob(input: { type: "pdf", parameters: { url: "https://example.org/a.pdf", pages: "3-1" } }) { job { id } } }',
    );
    expect(body.errors?.[0]).toMatchObject({
      message: expect.stringContaining('job.parameters.pages'),
      extensions: { code: 'BAD_USER_INPUT' },
    });
    const job = await run({ url: `${base}/four.pdf`, pages: '1,9' });
    expect(job.error).toMatchObject({ code: 'PAGES_OUT_OF_RANGE', details: { pages: 4, asked: 9 } });
  });
});
