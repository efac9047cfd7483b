/**
 * Signed, expiring URLs for result files and archives: `<path>?exp=<unix>&sig=<hmac>`,
 * where `sig` is base64url HMAC-SHA256 over the encoded path and `exp`. Any change to
 * a path byte, `exp` or `sig`, or an extra query parameter, makes the URL invalid.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedConfig } from '../config.js';

export type SignatureCheck = 'none' | 'valid' | 'expired' | 'invalid';

export interface UrlSigner {
  /** Absolute, signed URL of one result file. */
  fileUrl(jobId: string, name: string): string;
  /** Absolute, signed URL of a job's or a batch's ZIP archive. */
  archiveUrl(kind: 'jobs' | 'batches', id: string): string;
  /** Checks the signature of a request: its raw (still encoded) path and its query. */
  check(rawPath: string, query: URLSearchParams, now?: Date): SignatureCheck;
}

export interface UrlSignerOptions {
  secret: string;
  /** Seconds a URL stays valid. */
  ttl: number;
  /** Prefix of every URL, e.g. `https://jobs.example.com`; a function when it is known only once listening. */
  baseUrl: string | (() => string);
}

/** `/files/<jobId>/<name>` with every name segment percent-encoded. */
export function filePath(jobId: string, name: string): string {
  return `/files/${encodeURIComponent(jobId)}/${name.split('/').map(encodeURIComponent).join('/')}`;
}

export function archivePath(kind: 'jobs' | 'batches', id: string): string {
  return `/archives/${kind}/${encodeURIComponent(id)}.zip`;
}

export function createUrlSigner(options: UrlSignerOptions): UrlSigner {
  const key = Buffer.from(options.secret, 'utf8');
  const base = () => (typeof options.baseUrl === 'string' ? options.baseUrl : options.baseUrl()).replace(/\/+$/, '');
  const mac = (path: string, exp: string) => createHmac('sha256', key).update(`${path}\n${exp}`).digest('base64url');
  const sign = (path: string) => {
    const exp = String(Math.floor(Date.now() / 1000) + options.ttl);
    return `${base()}${path}?exp=${exp}&sig=${mac(path, exp)}`;
  };
  return {
    fileUrl: (jobId, name) => sign(filePath(jobId, name)),
    archiveUrl: (kind, id) => sign(archivePath(kind, id)),
    check(rawPath, query, now = new Date()) {
      const keys = [...query.keys()];
      if (keys.length === 0) return 'none';
      const exp = query.get('exp');
      const sig = query.get('sig');
      if (keys.length !== 2 || exp === null || sig === null || !/^\d{1,12}$/.test(exp)) return 'invalid';
      const expected = Buffer.from(mac(rawPath, exp));
      const given = Buffer.from(sig);
      if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'invalid';
      return Number(exp) * 1000 < now.getTime() ? 'expired' : 'valid';
    },
  };
}

/**
 * The URL key: `results.urlSecret`, or one generated on first use and kept in
 * `<dataDir>/url-secret` so URLs survive restarts.
 */
export function urlSecret(config: Pick<ResolvedConfig, 'results' | 'dataDir'>): string {
  if (config.results.urlSecret !== '') return config.results.urlSecret;
  const file = join(config.dataDir, 'url-secret');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(config.dataDir, { recursive: true });
  try {
    writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another process wrote it first: use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return readFileSync(file, 'utf8').trim();
}

/** Where clients reach this service: `server.publicUrl`, else the listening address. */
export function publicBaseUrl(config: Pick<ResolvedConfig, 'server'>, listening?: { host: string; port: number }): string {
  if (config.server.publicUrl !== '') return config.server.publicUrl.replace(/\/+$/, '');
  const host = listening?.host ?? config.server.host;
  const port = listening?.port ?? config.server.port;
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${port}`;
}
