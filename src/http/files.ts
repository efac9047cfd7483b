/**
 * Result files and archives over HTTP:
 * - `GET|HEAD /files/<jobId>/<path>`: one result file, with its content type, length,
 *   ETag (sha256), single byte ranges and Content-Disposition.
 * - `GET|HEAD /archives/jobs/<id>.zip`, `/archives/batches/<id>.zip`: a streamed ZIP.
 * Access: a valid signed URL (`?exp=&by=&sig=`) whose signer may read the job now, or
 * the caller's credentials with read access. A batch archive holds only the jobs the
 * signer (or caller) may read when it is downloaded. A job or batch they may not read is
 * a 404, as is any path that is not exactly one of the job's result files (`..`,
 * encoded slashes, absolute paths).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Authenticator } from '../auth/auth.js';
import { can } from '../domain/access.js';
import type { Batch, Job, Principal } from '../domain/types.js';
import { AppError, coerceError, SignedUrlError } from '../errors.js';
import type { Logger } from '../log.js';
import { resultFiles, zipArchive } from '../results/archive.js';
import type { ByteRange, ResultStore } from '../results/port.js';
import type { UrlSigner, UrlSignerIdentity } from '../results/urls.js';
import type { JobStore } from '../store/port.js';
import { sendError } from './respond.js';

export interface FileRoutesOptions {
  store: JobStore;
  results: ResultStore;
  signer: UrlSigner;
  authenticator: Authenticator;
  logger: Logger;
}

class NotFound extends Error {}

/** Decodes one path segment; anything that could change the path's shape is refused. */
function segment(raw: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new NotFound();
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are refused
  if (decoded === '' || decoded === '.' || decoded === '..' || /[/\\\u0000-\u001f]/.test(decoded)) throw new NotFound();
  return decoded;
}

function contentDisposition(kind: 'inline' | 'attachment', name: string): string {
  const base = name.split('/').pop() ?? name;
  const ascii = base.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(base)}`;
}

/** A single `bytes=` range of a file of `size` bytes; null for the whole file; 'unsatisfiable' when out of bounds. */
export function parseRange(header: string | undefined, size: number): ByteRange | null | 'unsatisfiable' {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges or another unit: answer with the whole file, as RFC 9110 allows.
  if (m === null) return null;
  const [, from = '', to = ''] = m;
  if (from === '' && to === '') return null;
  if (size === 0) return 'unsatisfiable';
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(from);
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

export function createFileRoutes(options: FileRoutesOptions) {
  const { store, results, signer, authenticator, logger } = options;

  /** Whose read access decides: a signed URL's signer, or the caller. Throws on a bad signature. */
  async function access(
    req: IncomingMessage,
    rawPath: string,
    query: URLSearchParams,
  ): Promise<{ signed: boolean; as: UrlSignerIdentity }> {
    const check = signer.check(rawPath, query);
    if (check.status === 'valid') return { signed: true, as: check.signer };
    if (check.status === 'expired') throw new SignedUrlError('URL_EXPIRED', 'this signed URL has expired; ask for a new one');
    if (check.status === 'invalid') throw new SignedUrlError('SIGNATURE_INVALID', 'the signature of this URL does not match');
    return { signed: false, as: await authenticator.authenticate(req.headers) };
  }

  /** The principal `as` stands for with this item: a URL signed for the owner reads as the owner. */
  const principalFor = (as: UrlSignerIdentity, item: Job | Batch): Principal =>
    as === 'owner' ? { userId: item.ownerId, teams: item.teamIds, admin: false } : as;

  const readable = (as: UrlSignerIdentity, item: Job | Batch | null | undefined): item is Job | Batch =>
    item !== null && item !== undefined && can(principalFor(as, item), 'read', item);

  async function serveFile(req: IncomingMessage, res: ServerResponse, rawPath: string, query: URLSearchParams): Promise<void> {
    const parts = rawPath.slice('/files/'.length).split('/');
    if (parts.length < 2) throw new NotFound();
    const jobId = segment(parts[0] as string);
    const name = parts.slice(1).map(segment).join('/');
    const { signed, as } = await access(req, rawPath, query);
    const [job] = await store.getJobs([jobId]);
    if (!readable(as, job)) throw new NotFound();
    const file = resultFiles(job as Job).find((f) => f.name === name);
    if (file === undefined) throw new NotFound();

    const etag = `"${file.sha256}"`;
    const headers: Record<string, string | number> = {
      'content-type': file.contentType,
      etag,
      'accept-ranges': 'bytes',
      'content-disposition': contentDisposition(query.has('download') ? 'attachment' : 'inline', file.name),
      'cache-control': signed ? 'private, max-age=300' : 'private, no-cache',
      'x-content-type-options': 'nosniff',
      // Result files are data, never active content of this origin.
      'content-security-policy': "sandbox; default-src 'none'",
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    const ifRange = req.headers['if-range'];
    const range = ifRange === undefined || ifRange === etag ? parseRange(req.headers.range, file.size) : null;
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${file.size}` });
      res.end();
      return;
    }
    const stream = await results.open(jobId, file.name, range ?? undefined);
    if (stream === null) throw new NotFound();
    if (range === null) {
      res.writeHead(200, { ...headers, 'content-length': file.size });
    } else {
      res.writeHead(206, {
        ...headers,
        'content-length': range.end - range.start + 1,
        'content-range': `bytes ${range.start}-${range.end}/${file.size}`,
      });
    }
    if (req.method === 'HEAD') {
      stream.destroy();
      res.end();
      return;
    }
    await pipeline(stream, res);
  }

  /** The batch's jobs `principal` may read now. */
  async function jobsOfBatch(batchId: string, principal: Principal): Promise<Job[]> {
    const jobs: Job[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await store.listJobs({ batchId, visibleTo: principal }, { first: 1000, after });
      jobs.push(...page.items);
      if (!page.hasNextPage) break;
      after = page.endCursor;
    }
    // Oldest first, so folders come out in submission order.
    return jobs.reverse();
  }

  async function serveArchive(req: IncomingMessage, res: ServerResponse, rawPath: string, query: URLSearchParams): Promise<void> {
    const m = /^\/archives\/(jobs|batches)\/([^/]+)\.zip$/.exec(rawPath);
    if (m === null) throw new NotFound();
    const kind = m[1] as 'jobs' | 'batches';
    const id = segment(m[2] as string);
    const { as } = await access(req, rawPath, query);
    let source: Parameters<typeof zipArchive>[1];
    if (kind === 'jobs') {
      const [job] = await store.getJobs([id]);
      if (!readable(as, job)) throw new NotFound();
      source = { kind: 'job', id, jobs: [job as Job] };
    } else {
      const [batch] = await store.getBatches([id]);
      if (!readable(as, batch)) throw new NotFound();
      const reader = principalFor(as, batch as Batch);
      source = { kind: 'batch', id, name: (batch as Batch).name, jobs: await jobsOfBatch(id, reader) };
    }
    res.writeHead(200, {
      'content-type': 'application/zip',
      'content-disposition': contentDisposition('attachment', `${id}.zip`),
      'cache-control': 'private, no-store',
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    await pipeline(zipArchive(results, source), res).catch((error: unknown) => {
      logger.warn('archive ended early', { kind, id, error: coerceError(error) });
      res.destroy();
    });
  }

  /** Handles the request when its path is one of these routes; false otherwise. */
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const rawPath = q === -1 ? raw : raw.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1));
    const isFile = rawPath.startsWith('/files/');
    if (!isFile && !rawPath.startsWith('/archives/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendError(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here`);
      return true;
    }
    try {
      if (isFile) await serveFile(req, res, rawPath, query);
      else await serveArchive(req, res, rawPath, query);
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
        return true;
      }
      if (error instanceof NotFound) sendError(res, 404, 'NOT_FOUND', 'no such file');
      else if (error instanceof SignedUrlError) sendError(res, 403, error.code, error.message);
      else if (error instanceof AppError && error.code === 'UNAUTHENTICATED') sendError(res, 401, error.code, error.message);
      else if (error instanceof AppError && error.code === 'BAD_USER_INPUT') sendError(res, 404, 'NOT_FOUND', 'no such file');
      else throw error;
    }
    return true;
  };
}
