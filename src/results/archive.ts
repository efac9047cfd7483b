/**
 * ZIP archives of results, streamed: entries are read one after another as the
 * client takes the bytes (yazl, lazily opened streams), so a batch of any size needs
 * no temp file and constant memory. `manifest.json` comes first and lists every file
 * with its size and sha256.
 */
import type { Readable } from 'node:stream';
import { ZipFile } from 'yazl';
import type { Job } from '../domain/types.js';
import type { ResultFile, ResultStore } from './port.js';

export interface ArchiveSource {
  kind: 'job' | 'batch';
  id: string;
  name?: string;
  jobs: Job[];
}

/** The files a job lists in its results. */
export function resultFiles(job: Pick<Job, 'results'>): ResultFile[] {
  const files = job.results?.files;
  if (!Array.isArray(files)) return [];
  return files.filter(
    (f): f is ResultFile & Record<string, never> =>
      typeof f === 'object' && f !== null && typeof (f as { name?: unknown }).name === 'string',
  ) as unknown as ResultFile[];
}

const UNSAFE = /[^A-Za-z0-9._ -]+/g;

function safeSegment(value: unknown): string | null {
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  const text = String(value)
    .replace(UNSAFE, '_')
    .replace(/^[._ ]+|[. ]+$/g, '')
    .slice(0, 80);
  return text === '' ? null : text;
}

/** A batch member's folder: `<track>/<session>` from its parameters where present, else its id; unique within the batch. */
export function jobFolder(job: Job, taken: Set<string>): string {
  const p = job.parameters;
  const track = safeSegment(p.track);
  const leaf = safeSegment(p.session) ?? safeSegment(p.filename) ?? safeSegment(p.name) ?? job.id;
  let folder = track === null ? leaf : `${track}/${leaf}`;
  if (taken.has(folder)) folder = `${folder}-${job.id.slice(-8)}`;
  taken.add(folder);
  return folder;
}

const COMPRESSIBLE = /^(text\/|application\/(json|xml|yaml|javascript)|image\/svg)/;

export function zipArchive(results: ResultStore, source: ArchiveSource): Readable {
  const zip = new ZipFile();
  const taken = new Set<string>();
  const entries = source.jobs.map((job) => ({
    job,
    folder: source.kind === 'job' ? '' : `${jobFolder(job, taken)}/`,
    files: resultFiles(job),
  }));
  const manifest = {
    kind: source.kind,
    id: source.id,
    ...(source.name === undefined ? {} : { name: source.name }),
    createdAt: new Date().toISOString(),
    jobs: entries.map(({ job, folder, files }) => ({
      id: job.id,
      type: job.type,
      status: job.status,
      folder: folder === '' ? '.' : folder.slice(0, -1),
      files: files.map((f) => ({ path: `${folder}${f.name}`, name: f.name, contentType: f.contentType, size: f.size, sha256: f.sha256 })),
    })),
  };
  zip.addBuffer(Buffer.from(JSON.stringify(manifest, null, 2)), 'manifest.json');
  for (const { job, folder, files } of entries) {
    const mtime = job.finishedAt ?? job.updatedAt;
    for (const file of files) {
      zip.addReadStreamLazy(
        `${folder}${file.name}`,
        { mtime, size: file.size, compress: COMPRESSIBLE.test(file.contentType) },
        (callback) => {
          results.open(job.id, file.name).then(
            (stream) => callback(stream === null ? new Error(`result file ${job.id}/${file.name} is missing`) : null, stream as Readable),
            (error: unknown) => callback(error, undefined as unknown as Readable),
          );
        },
      );
    }
  }
  zip.end();
  const output = zip.outputStream as Readable;
  // A file that cannot be read ends the archive early; the client sees a broken download, not a wrong one.
  zip.on('error', (error: Error) => output.destroy(error));
  return output;
}
