/**
 * The built-in `session` job type: one conference session page → `<filename>.md` with
 * YAML front matter, the talk's text, its slides (PDF attachments) as text, and its
 * images in `assets/`.
 *
 * Steps (each reports progress): fetch the page through the SSRF guard; extract the
 * main content (Mozilla Readability on a linkedom DOM) and convert it with Turndown;
 * download the images it shows; find PDF links on the page or at `attachmentsUrl` and
 * convert each with the `pdf` type's code; optionally transcribe `videoUrl` and
 * translate into `targetLanguage` through the transformer (skipped, and said so in
 * the logs and metadata, when none is configured); write the files.
 */
import { Readability } from '@mozilla/readability';
import { parseHTML } from 'linkedom';
import TurndownService from 'turndown';
import { stringify } from 'yaml';
import { z } from 'zod';
import type { JsonObject } from '../domain/types.js';
import { JobFailure, PermanentJobError } from '../errors.js';
import { type Downloaded, download } from '../net/download.js';
import { pdfText } from './pdf.js';
import { defineHandler, type HandlerContext, type UsageReport } from './registry.js';

const text = (max: number) => z.string().trim().min(1).max(max);
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http or https URL' });
const language = z.string().regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'a language tag such as en, de or pt-BR');

const fields = z.strictObject({
  /** The session page. */
  url: httpUrl,
  event: text(200).optional(),
  /** The session's title; default: the page's. */
  session: text(300).optional(),
  /** Base name of the Markdown file; default from the session title. */
  filename: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$/, 'letters, digits, ".", "_", "-" and spaces, at most 100')
    .optional(),
  track: text(200).optional(),
  day: text(50).optional(),
  starttime: text(50).optional(),
  endtime: text(50).optional(),
  speakers: z.array(text(200)).max(50).default([]),
  videoUrl: httpUrl.optional(),
  /** A page listing the attachments, or one PDF. */
  attachmentsUrl: httpUrl.optional(),
  sourceLanguage: language.optional(),
  targetLanguage: language.optional(),
  // The original event-job system's names, taken as aliases of the ones above.
  video_url: httpUrl.optional(),
  attachments_url: httpUrl.optional(),
  source_language: language.optional(),
  target_language: language.optional(),
});

/** Each snake_case alias and the name it stands for. */
const ALIASES = [
  ['video_url', 'videoUrl'],
  ['attachments_url', 'attachmentsUrl'],
  ['source_language', 'sourceLanguage'],
  ['target_language', 'targetLanguage'],
] as const;

/**
 * The session's parameters. The snake_case aliases are folded into their camelCase names
 * at submit, so stored jobs carry one spelling; giving both with different values is refused.
 */
const parameters = fields
  .superRefine((p, ctx) => {
    for (const [alias, name] of ALIASES) {
      if (p[alias] !== undefined && p[name] !== undefined && p[alias] !== p[name]) {
        ctx.addIssue({ code: 'custom', path: [alias], message: `an alias of ${name}, which has another value` });
      }
    }
  })
  .transform(({ video_url, attachments_url, source_language, target_language, ...p }) => ({
    ...p,
    ...(p.videoUrl === undefined && video_url !== undefined ? { videoUrl: video_url } : {}),
    ...(p.attachmentsUrl === undefined && attachments_url !== undefined ? { attachmentsUrl: attachments_url } : {}),
    ...(p.sourceLanguage === undefined && source_language !== undefined ? { sourceLanguage: source_language } : {}),
    ...(p.targetLanguage === undefined && target_language !== undefined ? { targetLanguage: target_language } : {}),
  }));

export type SessionParameters = z.infer<typeof parameters>;

const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml']);
const PDF_TYPES = new Set(['application/pdf', 'application/x-pdf', 'application/octet-stream', 'binary/octet-stream']);
const IMAGE_EXTENSIONS: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/gif': 'gif',
  'image/webp': 'webp',
  'image/svg+xml': 'svg',
  'image/avif': 'avif',
};
/** Most images and attachments one session takes. */
const MAX_IMAGES = 50;
const MAX_ATTACHMENTS = 20;

const mediaType = (fetched: Downloaded) => fetched.contentType?.split(';')[0]?.trim().toLowerCase() ?? null;

function slug(value: string): string {
  const cleaned = value
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9._ -]+/g, ' ')
    .trim()
    .replace(/\s+/g, '-')
    .slice(0, 100);
  return /^[A-Za-z0-9]/.test(cleaned) ? cleaned : 'session';
}

/** A file name for a downloaded asset: the URL's last segment, made safe and unique. */
function assetName(url: URL, taken: Set<string>, extension?: string): string {
  const last = decodeURIComponent(url.pathname.split('/').pop() ?? '') || 'file';
  let base =
    last
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .replace(/^[._]+/, '')
      .slice(0, 80) || 'file';
  if (extension !== undefined && !base.toLowerCase().endsWith(`.${extension}`)) base = `${base}.${extension}`;
  let name = base;
  for (let n = 2; taken.has(name); n++) name = base.replace(/(\.[^.]*)?$/, `-${n}$1`);
  taken.add(name);
  return name;
}

function absolute(href: string | null, base: string): URL | null {
  if (href === null || href.trim() === '' || href.startsWith('#')) return null;
  try {
    const url = new URL(href, base);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : null;
  } catch {
    return null;
  }
}

/** PDF links of a page: `href`s ending in .pdf or marked `type="application/pdf"`. */
function pdfLinks(html: string, base: string): URL[] {
  const { document } = parseHTML(html);
  const found = new Map<string, URL>();
  for (const anchor of document.querySelectorAll('a[href]')) {
    const url = absolute(anchor.getAttribute('href'), base);
    if (url === null) continue;
    const isPdf = /\.pdf$/i.test(url.pathname) || (anchor.getAttribute('type') ?? '').toLowerCase() === 'application/pdf';
    if (isPdf) found.set(url.href.split('#')[0] as string, url);
  }
  return [...found.values()];
}

function turndown(): TurndownService {
  const service = new TurndownService({ headingStyle: 'atx', codeBlockStyle: 'fenced', bulletListMarker: '-', emDelimiter: '_' });
  service.remove(['script', 'style', 'noscript', 'iframe', 'form']);
  return service;
}

/**
 * An attachment's failure, its message and details naming the attachment: a page may link
 * many, and "refusing to connect to 10.0.0.5" alone does not say which link it was.
 * Code and retry decision stay those of the failure; anything else (an abort) passes.
 */
function attachmentFailure(error: unknown, url: URL): unknown {
  if (!(error instanceof JobFailure)) return error;
  return new JobFailure(error.code, `attachment ${url.href}: ${error.message}`, {
    retriable: error.retriable,
    cause: error,
    details: { ...error.details, attachment: url.href },
  });
}

async function fetchWith(ctx: HandlerContext, url: string): Promise<Downloaded> {
  return download(url, {
    guard: ctx.services.net,
    maxBytes: ctx.services.limits.maxDownloadBytes,
    timeoutMs: ctx.services.limits.downloadTimeoutMs,
    signal: ctx.signal,
    userAgent: 'Conveyor session',
  });
}

export const sessionHandler = defineHandler({
  type: 'session',
  description:
    'One conference session page → Markdown with YAML front matter, the talk text, its PDF attachments as text and its images in assets/.',
  parameters,
  defaults: { timeoutMs: 300_000, maxAttempts: 3 },
  async run(given, ctx) {
    // transformer.defaultSourceLanguage / defaultTargetLanguage stand in for what a job leaves out.
    const languages = ctx.services.languages ?? { source: null, target: null };
    const p = {
      ...given,
      sourceLanguage: given.sourceLanguage ?? languages.source ?? undefined,
      targetLanguage: given.targetLanguage ?? languages.target ?? undefined,
    };
    const usage = (report: UsageReport) => ctx.usage(report);
    ctx.progress({ percent: 0, step: 'fetch' });
    const page = await fetchWith(ctx, p.url);
    const type = mediaType(page);
    if (type !== null && !HTML_TYPES.has(type)) {
      throw new PermanentJobError('UNSUPPORTED_CONTENT_TYPE', `expected an HTML session page, the server sent ${type}`);
    }
    const html = page.body.toString('utf8');
    ctx.log('info', `fetched ${page.url} (${page.body.length} bytes)`);

    ctx.progress({ percent: 15, step: 'extract' });
    const article = new Readability(parseHTML(html).document as never, { charThreshold: 200 }).parse();
    if (article === null || typeof article.content !== 'string' || article.content.trim() === '') {
      throw new PermanentJobError('CONTENT_NOT_FOUND', 'no main content found on the session page');
    }
    const title = p.session ?? (article.title?.trim() || 'Session');
    const filename = p.filename ?? slug(title);
    const { document: content } = parseHTML(`<!doctype html><html><body>${article.content}</body></html>`);
    // Links in the text work from anywhere: make them absolute.
    for (const anchor of content.querySelectorAll('a[href]')) {
      const url = absolute(anchor.getAttribute('href'), page.url);
      if (url !== null) anchor.setAttribute('href', url.href);
    }

    ctx.progress({ percent: 30, step: 'images' });
    const taken = new Set<string>();
    const images: string[] = [];
    const imageElements = [...content.querySelectorAll('img')].slice(0, MAX_IMAGES);
    for (const img of imageElements) {
      const url = absolute(img.getAttribute('src'), page.url);
      if (url === null) continue;
      try {
        const fetched = await fetchWith(ctx, url.href);
        const imageType = mediaType(fetched);
        if (imageType === null || !(imageType in IMAGE_EXTENSIONS)) {
          ctx.log('warn', `image ${url.href} skipped: not an image (${imageType ?? 'no content type'})`);
          continue;
        }
        const name = assetName(url, taken, IMAGE_EXTENSIONS[imageType]);
        await ctx.writeResult(`assets/${name}`, fetched.body, imageType);
        img.setAttribute('src', `assets/${name}`);
        images.push(`assets/${name}`);
      } catch (error) {
        if (ctx.signal.aborted) throw error;
        // One broken image does not sink the talk: the Markdown keeps its original link.
        ctx.log('warn', `image ${url.href} skipped: ${(error as Error).message}`);
      }
    }
    let body = turndown().turndown(content.body.innerHTML).trim();

    ctx.progress({ percent: 50, step: 'attachments' });
    const links = pdfLinks(html, page.url);
    if (p.attachmentsUrl !== undefined) {
      const listing = await fetchWith(ctx, p.attachmentsUrl);
      const listingType = mediaType(listing);
      if (listingType !== null && HTML_TYPES.has(listingType)) links.push(...pdfLinks(listing.body.toString('utf8'), listing.url));
      else links.push(new URL(p.attachmentsUrl));
    }
    const unique = [...new Map(links.map((u) => [u.href.split('#')[0] as string, u])).values()].slice(0, MAX_ATTACHMENTS);
    const attachments: JsonObject[] = [];
    const sections: string[] = [];
    for (const [index, url] of unique.entries()) {
      const fetched = await fetchWith(ctx, url.href).catch((error: unknown) => {
        throw attachmentFailure(error, url);
      });
      const pdfType = mediaType(fetched);
      if (pdfType !== null && !PDF_TYPES.has(pdfType)) {
        ctx.log('warn', `attachment ${url.href} skipped: not a PDF (${pdfType})`);
        continue;
      }
      const name = assetName(url, taken, 'pdf');
      const { pages, metadata } = await pdfText(fetched.body, { signal: ctx.signal }).catch((error: unknown) => {
        throw attachmentFailure(error, url);
      });
      await ctx.writeResult(`assets/${name}`, fetched.body, 'application/pdf');
      attachments.push({ name, source: url.href, file: `assets/${name}`, pages: metadata.pages, title: metadata.title });
      sections.push(
        `### ${metadata.title ?? name}\n\n[${name}](assets/${encodeURI(name)})\n\n${pages.map((s) => s.replace(/^## /, '#### ')).join('\n')}`,
      );
      ctx.progress({
        percent: 50 + Math.round(((index + 1) / unique.length) * 25),
        step: 'attachments',
        message: `${index + 1} of ${unique.length}`,
      });
    }
    if (sections.length > 0) body = `${body}\n\n## Attachments\n\n${sections.join('\n')}`;

    ctx.progress({ percent: 80, step: 'transform' });
    const transformer = ctx.services.transformer ?? null;
    const steps: JsonObject = {};
    const skip = (what: string) => {
      ctx.log('info', `${what} skipped: no transformer configured (transformer.url)`);
      steps[what] = { status: 'skipped', reason: 'no transformer configured (transformer.url)' };
    };
    if (p.videoUrl !== undefined) {
      if (transformer === null) skip('transcription');
      else {
        const video = await fetchWith(ctx, p.videoUrl);
        const transcript = await transformer.transcribe(
          video.body,
          assetName(new URL(p.videoUrl), new Set()),
          p.sourceLanguage ?? null,
          ctx.signal,
          usage,
        );
        body = `${body}\n\n## Transcript\n\n${transcript.trim()}`;
        steps.transcription = { status: 'done', endpoint: transformer.endpoint };
        ctx.log('info', `transcribed ${p.videoUrl}`);
      }
    }

    const front: JsonObject = {
      event: p.event ?? null,
      session: title,
      track: p.track ?? null,
      day: p.day ?? null,
      starttime: p.starttime ?? null,
      endtime: p.endtime ?? null,
      speakers: p.speakers,
      source: page.url,
      videoUrl: p.videoUrl ?? null,
      sourceLanguage: p.sourceLanguage ?? null,
      targetLanguage: p.targetLanguage ?? null,
      attachments: attachments.map((a) => a.file as string),
    };
    const speakers = p.speakers.length === 0 ? '' : `_${p.speakers.join(', ')}_\n\n`;
    const markdown = `---\n${stringify(front).trimEnd()}\n---\n\n# ${title}\n\n${speakers}${body}\n`;
    const md = await ctx.writeResult(`${filename}.md`, markdown, 'text/markdown; charset=utf-8');
    const files = [md.name];

    const wantsTranslation = p.targetLanguage !== undefined && p.targetLanguage.toLowerCase() !== p.sourceLanguage?.toLowerCase();
    if (wantsTranslation) {
      if (transformer === null) skip('translation');
      else {
        const target = p.targetLanguage as string;
        const translated = await transformer.translate(markdown, p.sourceLanguage ?? null, target, ctx.signal, usage);
        const file = await ctx.writeResult(`${filename}.${target}.md`, translated, 'text/markdown; charset=utf-8');
        files.push(file.name);
        steps.translation = { status: 'done', endpoint: transformer.endpoint, file: file.name };
        ctx.log('info', `translated into ${target}`);
      }
    }

    ctx.progress({ percent: 100, step: 'done' });
    return {
      markdown: md.name,
      metadata: { ...front, images, attachments, words: body.split(/\s+/).filter(Boolean).length, transformer: steps },
    };
  },
});
