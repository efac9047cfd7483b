/**
 * Result files: what handlers produce (Markdown, images, JSON), kept per job.
 * Names are relative paths inside the job's folder (`slides.md`, `assets/p1.png`);
 * anything that could leave the folder is refused.
 */
import type { Readable } from 'node:stream';
import { ValidationError } from '../errors.js';

export interface ResultFile {
  name: string;
  contentType: string;
  size: number;
  /** Hex sha256 of the content. */
  sha256: string;
}

export type ResultBody = Uint8Array | string | Readable;

export interface ResultStore {
  /** Writes (or replaces) one file atomically. */
  put(jobId: string, name: string, body: ResultBody, contentType: string): Promise<ResultFile>;
  /** The file's content, or null when it does not exist. */
  read(jobId: string, name: string): Promise<Buffer | null>;
  /** Removes every file of a job. */
  deleteJob(jobId: string): Promise<void>;
}

/**
 * Normalises a result name: forward slashes, no empty, `.` or `..` segments, no
 * absolute paths, no backslashes or control characters. Throws `BAD_USER_INPUT`.
 */
export function normaliseResultName(name: string): string {
  const bad = (why: string) => new ValidationError(`result name "${name}": ${why}`, { field: 'name' });
  if (typeof name !== 'string' || name.length === 0 || name.length > 255) throw bad('must be 1 to 255 characters');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (/[\\\u0000-\u001f]/.test(name)) throw bad('must not contain backslashes or control characters');
  if (name.startsWith('/')) throw bad('must be relative');
  const segments = name.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) throw bad('must not contain empty, "." or ".." segments');
  return segments.join('/');
}

/** Job ids become folder names: only the id alphabet is accepted. */
export function checkJobId(jobId: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(jobId)) throw new ValidationError(`not a job id: ${jobId}`, { field: 'jobId' });
  return jobId;
}
