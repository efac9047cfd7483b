/**
 * Signed, expiring URLs for result files and archives:
 * `<path>?exp=<unix>&by=<signer>&sig=<hmac>`, where `sig` is base64url HMAC-SHA256 over
 * the encoded path, `exp` and `by`. Any change to a path byte, `exp`, `by` or `sig`, or
 * an extra query parameter, makes the URL invalid.
 *
 * `by` names whose read access the URL carries: the principal it was issued to
 * (GraphQL), or the owner of the job or batch (webhook payloads). The file routes check
 * that this signer may still read the job — and, in a batch archive, each job — when
 * the URL is used, so a URL stops reaching a job once its signer lost access to it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedConfig } from '../config.js';
import type { Principal } from '../domain/types.js';

/** Whose access a signed URL carries: a principal, or the owner of the job or batch it names. */
export type UrlSignerIdentity = Principal | 'owner';

export type SignatureCheck = { status: 'none' | 'expired' | 'invalid' } | { status: 'valid'; signer: UrlSignerIdentity };

export interface UrlSigner {
  /**
   * Absolute, signed URL of one result file, carrying `by`'s read access. It expires
   * `results.urlTtl` after `at` (default: now); equal inputs give equal URLs.
   */
  fileUrl(jobId: string, name: string, by: UrlSignerIdentity, at?: Date): string;
  /** Absolute, signed URL of a job's or a batch's ZIP archive, carrying `by`'s read access (expiry as `fileUrl`). */
  archiveUrl(kind: 'jobs' | 'batches', id: string, by: UrlSignerIdentity, at?: Date): string;
  /** Checks the signature of a request: its raw (still encoded) path and its query. */
  check(rawPath: string, query: URLSearchParams, now?: Date): SignatureCheck;
}

/** `by`: `owner`, or base64url JSON `[userId, teams, admin]`. */
function encodeSigner(by: UrlSignerIdentity): string {
  if (by === 'owner') return 'owner';
  return Buffer.from(JSON.stringify([by.userId, by.teams, by.admin ? 1 : 0])).toString('base64url');
}

function decodeSigner(raw: string): UrlSignerIdentity | null {
  if (raw === 'owner') return 'owner';
  try {
    const value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown;
    if (!Array.isArray(value) || value.length !== 3) return null;
    const [userId, teams, admin] = value as [unknown, unknown, unknown];
    if ((userId !== null && typeof userId !== 'string') || !Array.isArray(teams) || !teams.every((t) => typeof t === 'string')) return null;
    return { userId, teams: teams as string[], admin: admin === 1 };
  } catch {
    return null;
  }
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
  const mac = (path: string, exp: string, by: string) => createHmac('sha256', key).update(`${path}\n${exp}\n${by}`).digest('base64url');
  const sign = (path: string, signer: UrlSignerIdentity, at: Date | undefined) => {
    const exp = String(Math.floor((at?.getTime() ?? Date.now()) / 1000) + options.ttl);
    const by = encodeSigner(signer);
    return `${base()}${path}?exp=${exp}&by=${by}&sig=${mac(path, exp, by)}`;
  };
  const invalid: SignatureCheck = { status: 'invalid' };
  return {
    fileUrl: (jobId, name, by, at) => sign(filePath(jobId, name), by, at),
    archiveUrl: (kind, id, by, at) => sign(archivePath(kind, id), by, at),
    check(rawPath, query, now = new Date()) {
      const keys = [...query.keys()];
      if (keys.length === 0) return { status: 'none' };
      const exp = query.get('exp');
      const by = query.get('by');
      const sig = query.get('sig');
      if (keys.length !== 3 || exp === null || by === null || sig === null || !/^\d{1,12}$/.test(exp)) return invalid;
      const expected = Buffer.from(mac(rawPath, exp, by));
      const given = Buffer.from(sig);
      if (expected.length !== given.length || !timingSafeEqual(expected, given)) return invalid;
      if (Number(exp) * 1000 < now.getTime()) return { status: 'expired' };
      const signer = decodeSigner(by);
      return signer === null ? invalid : { status: 'valid', signer };
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
