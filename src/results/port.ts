/**
 * Result files: what handlers produce (Markdown, images, JSON), kept per job.
 * Names are relative paths inside the job's folder (`slides.md`, `assets/p1.png`);
 * anything that could leave the folder is refused.
 */
import { createHash } from 'node:crypto';
import { pipeline, Readable, Transform } from 'node:stream';
import { ValidationError } from '../errors.js';

export interface ResultFile {
  name: string;
  contentType: string;
  size: number;
  /** Hex sha256 of the content. */
  sha256: string;
}

export type ResultBody = Uint8Array | string | Readable;

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

/** A stored file as the storage sees it (content type and sha256 live with the job). */
export interface StoredFile {
  name: string;
  size: number;
}

/**
 * Where result files live. `jobId` is the folder: a job id, or an upload id for
 * uploads kept through the same store. Adapters: `fs/` (default) and `gridfs/` (with
 * the MongoDB store, so every process reads what any worker wrote).
 */
export interface ResultStore {
  /** Writes (or replaces) one file; readers see the old file or the new one, never a part. */
  put(jobId: string, name: string, body: ResultBody, contentType: string): Promise<ResultFile>;
  /** A stream of the file (or of `range` of it), or null when it does not exist. */
  open(jobId: string, name: string, range?: ByteRange): Promise<Readable | null>;
  /** The file's content, or null when it does not exist. */
  read(jobId: string, name: string): Promise<Buffer | null>;
  /** The folder's files, by name. */
  list(jobId: string): Promise<StoredFile[]>;
  /** Folders whose id starts with `prefix` (the upload sweep looks for `upl_`). */
  folders(prefix: string): Promise<string[]>;
  /** Removes every file of a folder. */
  deleteJob(jobId: string): Promise<void>;
}

/**
 * The body as a stream that measures what passes through it: adapters pipe `stream`
 * to storage, then read `size()` and `sha256()`.
 */
export function measured(body: ResultBody): { stream: Readable; size(): number; sha256(): string } {
  const hash = createHash('sha256');
  let size = 0;
  const source = typeof body === 'string' || body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : body;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  // pipeline() also handles a source that failed before this call: `count` then fails with its error.
  pipeline(source, count, () => undefined);
  return { stream: count, size: () => size, sha256: () => hash.digest('hex') };
}

/** Copies every file of one folder into another (a cached job takes its source's results). */
export async function copyFolder(results: ResultStore, from: string, to: string, files: readonly ResultFile[]): Promise<ResultFile[]> {
  const copied: ResultFile[] = [];
  for (const file of files) {
    const stream = await results.open(from, file.name);
    if (stream === null) throw new Error(`result file ${from}/${file.name} is missing`);
    copied.push(await results.put(to, file.name, stream, file.contentType));
  }
  return copied;
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
