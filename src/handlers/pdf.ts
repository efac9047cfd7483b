/**
 * The built-in `pdf` job type: one PDF (by URL or by upload) → Markdown, page by page.
 * Writes `<name>.md` and `<name>.json` (metadata), reports progress per page.
 * Corrupt, encrypted, wrong-type and oversized inputs fail with their own codes.
 */
import { getDocumentProxy, getMeta } from 'unpdf';
import { z } from 'zod';
import { AppError, PermanentJobError, UploadExpiredError } from '../errors.js';
import { download } from '../net/download.js';
import { defineHandler, type HandlerContext } from './registry.js';

const parameters = z
  .strictObject({
    url: z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).optional(),
    uploadId: z.string().optional(),
    /** Base name of the result files; defaults to the source's file name. */
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$/, 'letters, digits, ".", "_", "-" and spaces, at most 100')
      .optional(),
  })
  .refine((p) => (p.url === undefined) !== (p.uploadId === undefined), { message: 'give exactly one of url or uploadId' });

export type PdfParameters = z.infer<typeof parameters>;

const PDF_TYPES = new Set(['application/pdf', 'application/x-pdf', 'application/octet-stream', 'binary/octet-stream']);

function baseName(p: PdfParameters): string {
  if (p.name !== undefined) return p.name;
  if (p.url !== undefined) {
    const last = decodeURIComponent(new URL(p.url).pathname.split('/').pop() ?? '').replace(/\.pdf$/i, '');
    const safe = last.replace(/[^A-Za-z0-9._ -]/g, '_').slice(0, 100);
    if (/^[A-Za-z0-9]/.test(safe)) return safe;
  }
  return 'document';
}

async function source(p: PdfParameters, ctx: HandlerContext): Promise<Buffer> {
  if (p.uploadId !== undefined) {
    const { body } = await ctx.services.uploads.read(p.uploadId, ctx.job.ownerId).catch((error: unknown) => {
      // Submit checked that the upload was there and the owner's: missing now means it expired
      // (or went with another job that used it). Someone else's upload reads the same way.
      if (error instanceof AppError && error.code === 'NOT_FOUND') {
        const expired = new UploadExpiredError(p.uploadId as string, ctx.job.id);
        throw new PermanentJobError(expired.code, expired.message);
      }
      throw error;
    });
    return body;
  }
  const fetched = await download(p.url as string, {
    guard: ctx.services.net,
    maxBytes: ctx.services.limits.maxDownloadBytes,
    timeoutMs: ctx.services.limits.downloadTimeoutMs,
    signal: ctx.signal,
  });
  const type = fetched.contentType?.split(';')[0]?.trim().toLowerCase() ?? null;
  if (type !== null && !PDF_TYPES.has(type)) {
    throw new PermanentJobError('UNSUPPORTED_CONTENT_TYPE', `expected a PDF, the server sent ${type}`);
  }
  return fetched.body;
}

function dateOf(value: unknown): string | null {
  // PDF dates look like D:20240131120000Z or D:20240131120000+01'00'
  const m = typeof value === 'string' ? /^D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?/.exec(value) : null;
  if (m === null) return null;
  const [, y, mo = '01', d = '01', h = '00', mi = '00', s = '00'] = m;
  return `${y}-${mo}-${d}T${h}:${mi}:${s}Z`;
}

async function open(bytes: Buffer) {
  if (bytes.subarray(0, 1024).indexOf('%PDF-') === -1)
    throw new PermanentJobError('PDF_INVALID', 'the file is not a PDF (no %PDF- header)');
  try {
    return await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0, isEvalSupported: false });
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === 'PasswordException')
      throw new PermanentJobError('PDF_ENCRYPTED', 'the PDF is encrypted with a password', { cause: error });
    throw new PermanentJobError('PDF_INVALID', `the PDF cannot be read: ${(error as Error).message}`, { cause: error });
  }
}

export interface PdfText {
  /** `## Page n` sections, one per page. */
  pages: string[];
  metadata: { pages: number; title: string | null; author: string | null; created: string | null; producer: string | null };
}

/**
 * The text of a PDF, page by page, with its metadata: the `pdf` type's core, also used
 * by the `session` type for attachments. Fails with PDF_INVALID / PDF_ENCRYPTED.
 */
export async function pdfText(
  bytes: Buffer,
  options: { signal?: AbortSignal; onPage?: (n: number, of: number) => void } = {},
): Promise<PdfText> {
  const pdf = await open(bytes);
  try {
    const { info } = (await getMeta(pdf)) as { info: Record<string, unknown> };
    const title = typeof info.Title === 'string' && info.Title.trim() !== '' ? info.Title.trim() : null;
    const author = typeof info.Author === 'string' && info.Author.trim() !== '' ? info.Author.trim() : null;
    const count = pdf.numPages;
    const pages: string[] = [];
    for (let n = 1; n <= count; n++) {
      options.signal?.throwIfAborted();
      const page = await pdf.getPage(n);
      const content = await page.getTextContent();
      const text = content.items
        .map((item: { str?: string; hasEOL?: boolean }) => (item.str === undefined ? '' : `${item.str}${item.hasEOL ? '\n' : ''}`))
        .join('')
        .replace(/[ \t]+\n/g, '\n')
        .trim();
      pages.push(`## Page ${n}\n\n${text === '' ? '_(no text on this page)_' : text}\n`);
      options.onPage?.(n, count);
    }
    return {
      pages,
      metadata: {
        pages: count,
        title,
        author,
        created: dateOf(info.CreationDate),
        producer: typeof info.Producer === 'string' ? info.Producer : null,
      },
    };
  } finally {
    await pdf.destroy();
  }
}

export const pdfHandler = defineHandler({
  type: 'pdf',
  description: 'Turns one PDF (url or uploadId) into Markdown, one section per page, plus metadata.',
  parameters,
  defaults: { timeoutMs: 120_000, maxAttempts: 3 },
  async run(p, ctx) {
    ctx.progress({ percent: 0, step: 'download' });
    const bytes = await source(p, ctx);
    ctx.log('info', `read ${bytes.length} bytes`);
    const { pages, metadata } = await pdfText(bytes, {
      signal: ctx.signal,
      onPage: (n, of) => ctx.progress({ percent: Math.round((n / of) * 95), step: 'pages', message: `${n} of ${of}` }),
    });
    const name = baseName(p);
    const markdown = `# ${metadata.title ?? name}\n\n${metadata.author === null ? '' : `_${metadata.author}_\n\n`}${pages.join('\n')}`;
    const md = await ctx.writeResult(`${name}.md`, markdown, 'text/markdown; charset=utf-8');
    const meta = await ctx.writeResult(`${name}.json`, JSON.stringify(metadata, null, 2), 'application/json');
    ctx.progress({ percent: 100, step: 'done' });
    return { markdown: md.name, files: [md.name, meta.name], metadata };
  },
});
