/**
 * Bounded downloads through the SSRF guard, with `got`: every resolved address and
 * every redirect target is checked, the body is capped at `maxBytes` (refused early
 * from Content-Length, cut off while streaming otherwise), and failures become
 * `JobFailure`s with stable codes that say whether a retry can help.
 */
import got, { HTTPError, RequestError } from 'got';
import { JobFailure, PermanentJobError } from '../errors.js';
import type { NetGuard } from './guard.js';

export interface DownloadOptions {
  guard: NetGuard;
  maxBytes: number;
  timeoutMs: number;
  signal?: AbortSignal;
  userAgent?: string;
}

export interface Downloaded {
  body: Buffer;
  contentType: string | null;
  url: string;
}

function parseTarget(raw: string, guard: NetGuard): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PermanentJobError('INVALID_URL', `not a valid URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PermanentJobError('INVALID_URL', `only http and https URLs can be fetched, not ${url.protocol}`);
  }
  if (url.username || url.password) throw new PermanentJobError('INVALID_URL', 'URLs with credentials are not fetched');
  guard.checkUrl(url);
  return url;
}

/** The first JobFailure in an error's cause chain (the guard throws inside got's lookup). */
function failureIn(error: unknown): JobFailure | null {
  for (let e: unknown = error; e instanceof Error; e = e.cause) if (e instanceof JobFailure) return e;
  return null;
}

export async function download(raw: string, options: DownloadOptions): Promise<Downloaded> {
  const url = parseTarget(raw, options.guard);
  const tooLarge = () =>
    new PermanentJobError('DOWNLOAD_TOO_LARGE', `the download exceeds the limit of ${options.maxBytes} bytes (limits.maxDownloadBytes)`);
  const stream = got.stream(url, {
    dnsLookup: options.guard.lookup as never,
    timeout: { request: options.timeoutMs },
    maxRedirects: 5,
    retry: { limit: 0 },
    headers: { 'user-agent': options.userAgent ?? 'Conveyor' },
    hooks: {
      beforeRedirect: [
        (redirect) => {
          const next = redirect.url instanceof URL ? redirect.url : new URL(String(redirect.url));
          if (next.protocol !== 'http:' && next.protocol !== 'https:') {
            throw new PermanentJobError('INVALID_URL', `redirect to a ${next.protocol} URL refused`);
          }
          options.guard.checkUrl(next);
        },
      ],
    },
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  let contentType: string | null = null;
  let finalUrl = url.toString();
  stream.on('response', (response: { headers: Record<string, string | string[] | undefined>; url: string }) => {
    contentType = (response.headers['content-type'] as string | undefined) ?? null;
    finalUrl = response.url;
    const length = Number(response.headers['content-length']);
    if (Number.isFinite(length) && length > options.maxBytes) stream.destroy(tooLarge());
  });
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > options.maxBytes) throw tooLarge();
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    stream.destroy();
    const failure = failureIn(error);
    if (failure !== null) throw failure;
    if (error instanceof HTTPError) {
      const status = error.response.statusCode;
      // 408, 429 and 5xx can pass; other 4xx answers will not change.
      const retriable = status === 408 || status === 429 || status >= 500;
      throw new JobFailure('DOWNLOAD_FAILED', `GET ${url.origin}${url.pathname} answered ${status}`, {
        retriable,
        cause: error,
        details: { url: `${url.origin}${url.pathname}`, status },
      });
    }
    if (options.signal?.aborted) throw options.signal.reason ?? error;
    if (error instanceof RequestError) {
      throw new JobFailure('DOWNLOAD_FAILED', `GET ${url.origin}${url.pathname} failed: ${error.code} ${error.message}`, {
        cause: error,
        details: { url: `${url.origin}${url.pathname}`, code: error.code },
      });
    }
    throw error;
  }
  return { body: Buffer.concat(chunks, size), contentType, url: finalUrl };
}
