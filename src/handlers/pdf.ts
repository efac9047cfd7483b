/**
 * The built-in `pdf` job type: one PDF (by URL or by upload) → Markdown, page by page.
 * Writes `<name>.md` and `<name>.json` (metadata), reports progress per page.
 * Corrupt, encrypted, wrong-type and oversized inputs fail with their own codes.
 */
import { extractImages, getDocumentProxy, getMeta } from 'unpdf';
import { z } from 'zod';
import { AppError, PermanentJobError, UploadExpiredError } from '../errors.js';
import { download } from '../net/download.js';
import { encodePng } from './png.js';
import { defineHandler, type HandlerContext } from './registry.js';

// pdf.js's font code calls ArrayBuffer.prototype.transferToFixedLength (Node 21 and later).
// On Node 20 the call fails inside pdf.js, which then silently cuts a page's operator
// list after its first text, so the page's images are never seen. A copy does the job.
if (typeof (ArrayBuffer.prototype as { transferToFixedLength?: unknown }).transferToFixedLength !== 'function') {
  Object.defineProperty(ArrayBuffer.prototype, 'transferToFixedLength', {
    configurable: true,
    writable: true,
    value(this: ArrayBuffer, length: number = this.byteLength): ArrayBuffer {
      const copy = new ArrayBuffer(length);
      new Uint8Array(copy).set(new Uint8Array(this, 0, Math.min(length, this.byteLength)));
      return copy;
    },
  });
}

/** `1-3,7`: page numbers and ranges, counted from 1. */
const PAGE_LIST = /^\s*\d+\s*(-\s*\d+\s*)?(,\s*\d+\s*(-\s*\d+\s*)?)*$/;

/** The page numbers a `pages` list names, in order, each once; null when it is not valid. */
export function parsePages(spec: string): number[] | null {
  if (!PAGE_LIST.test(spec)) return null;
  const pages = new Set<number>();
  for (const part of spec.split(',')) {
    const [from, to = from] = part.split('-').map((n) => Number(n.trim())) as [number, number?];
    if (from < 1 || to < from || to - from > 100_000) return null;
    for (let n = from; n <= to; n++) pages.add(n);
  }
  return [...pages].sort((a, b) => a - b);
}

const parameters = z
  .strictObject({
    url: z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).optional(),
    uploadId: z.string().optional(),
    /** Base name of the result files; defaults to the source's file name. */
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$/, 'letters, digits, ".", "_", "-" and spaces, at most 100')
      .optional(),
    /** Only these pages, e.g. `1-3,7`; default all. */
    pages: z
      .string()
      .max(200)
      .refine((spec) => parsePages(spec) !== null, 'page numbers and ranges from 1, such as 1-3,7')
      .optional(),
    /** Write the images the pages embed to `assets/` and link them from the Markdown. */
    includeImages: z.boolean().optional(),
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
  /** `## Page n` sections, one per page read. */
  pages: string[];
  metadata: { pages: number; title: string | null; author: string | null; created: string | null; producer: string | null };
  /** With `images`: the pictures of the pages read, as PNG, named `page-<n>-<i>.png`. */
  images: { page: number; name: string; png: Buffer; width: number; height: number }[];
}

/**
 * The text of a PDF, page by page, with its metadata: the `pdf` type's core, also used
 * by the `session` type for attachments. Fails with PDF_INVALID / PDF_ENCRYPTED.
 */
export async function pdfText(
  bytes: Buffer,
  options: {
    signal?: AbortSignal;
    onPage?: (n: number, of: number) => void;
    /** Only these page numbers (from 1); default all. A page beyond the last fails with PAGES_OUT_OF_RANGE. */
    pages?: readonly number[];
    /** Extract embedded images too, linked from each page's section as `assets/<name>`. */
    images?: boolean;
  } = {},
): Promise<PdfText> {
  const pdf = await open(bytes);
  try {
    const { info } = (await getMeta(pdf)) as { info: Record<string, unknown> };
    const title = typeof info.Title === 'string' && info.Title.trim() !== '' ? info.Title.trim() : null;
    const author = typeof info.Author === 'string' && info.Author.trim() !== '' ? info.Author.trim() : null;
    const count = pdf.numPages;
    const wanted = options.pages ?? Array.from({ length: count }, (_, i) => i + 1);
    const beyond = wanted.filter((n) => n > count);
    if (beyond.length > 0) {
      throw new PermanentJobError('PAGES_OUT_OF_RANGE', `the PDF has ${count} pages; page ${beyond[0]} does not exist`, {
        details: { pages: count, asked: beyond[0] as number },
      });
    }
    const pages: string[] = [];
    const images: PdfText['images'] = [];
    for (const [done, n] of wanted.entries()) {
      options.signal?.throwIfAborted();
      const page = await pdf.getPage(n);
      const content = await page.getTextContent();
      const text = content.items
        .map((item: { str?: string; hasEOL?: boolean }) => (item.str === undefined ? '' : `${item.str}${item.hasEOL ? '\n' : ''}`))
        .join('')
        .replace(/[ \t]+\n/g, '\n')
        .trim();
      const links: string[] = [];
      if (options.images === true) {
        for (const [i, image] of (await extractImages(pdf, n)).entries()) {
          const name = `page-${n}-${i + 1}.png`;
          images.push({
            page: n,
            name,
            png: encodePng(image.data, image.width, image.height, image.channels),
            width: image.width,
            height: image.height,
          });
          links.push(`![Page ${n}, image ${i + 1}](assets/${name})`);
        }
      }
      const body = text === '' && links.length === 0 ? '_(no text on this page)_' : text;
      pages.push(`## Page ${n}\n\n${[body, ...links].filter((part) => part !== '').join('\n\n')}\n`);
      options.onPage?.(done + 1, wanted.length);
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
      images,
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
    const { pages, metadata, images } = await pdfText(bytes, {
      signal: ctx.signal,
      onPage: (n, of) => ctx.progress({ percent: Math.round((n / of) * 95), step: 'pages', message: `${n} of ${of}` }),
      ...(p.pages === undefined ? {} : { pages: parsePages(p.pages) as number[] }),
      images: p.includeImages === true,
    });
    const name = baseName(p);
    for (const image of images) await ctx.writeResult(`assets/${image.name}`, image.png, 'image/png');
    if (p.includeImages === true) ctx.log('info', `wrote ${images.length} images to assets/`);
    const markdown = `# ${metadata.title ?? name}\n\n${metadata.author === null ? '' : `_${metadata.author}_\n\n`}${pages.join('\n')}`;
    const described = {
      ...metadata,
      ...(p.pages === undefined ? {} : { selectedPages: parsePages(p.pages) as number[] }),
      ...(p.includeImages === true ? { images: images.map((i) => `assets/${i.name}`) } : {}),
    };
    const md = await ctx.writeResult(`${name}.md`, markdown, 'text/markdown; charset=utf-8');
    const meta = await ctx.writeResult(`${name}.json`, JSON.stringify(described, null, 2), 'application/json');
    ctx.progress({ percent: 100, step: 'done' });
    return { markdown: md.name, files: [md.name, meta.name], metadata: described };
  },
});
