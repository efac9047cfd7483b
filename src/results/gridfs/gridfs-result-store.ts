/**
 * Result files in MongoDB GridFS (bucket `results`), used with the MongoDB store so any
 * API process serves what any worker wrote. A file is `<jobId>/<name>` with the job id
 * and name in its metadata.
 *
 * Versions: every `put` writes a new version; GridFS makes it visible only once all its
 * chunks are written. Versions are ordered by the server's clock when their `put`
 * began (`metadata.startedAt`, then `_id`), and reads serve the newest. So a `put` that
 * began earlier and ends later (a worker that lost its lease, still writing) does not
 * displace the version of the job's next owner. A version that a newer one displaced is
 * marked `metadata.supersededAt` and deleted only `supersededGraceMs` later (by a later
 * `put`), so a download that opened it keeps its chunks.
 */
import { pipeline } from 'node:stream/promises';
import { type Db, type Document, type Filter, GridFSBucket, type GridFSFile, type ObjectId } from 'mongodb';
import { type ByteRange, checkJobId, measured, normaliseResultName, type ResultBody, type ResultStore } from '../port.js';

export interface GridFsResultStoreOptions {
  bucketName?: string;
  /** How long a displaced version stays readable for downloads that opened it. Default 900000 (15 minutes). */
  supersededGraceMs?: number;
  /** GridFS chunk size in bytes. Default 261120 (the driver's). */
  chunkSizeBytes?: number;
}

/** How many displaced versions one `put` deletes at most (the rest go with later puts). */
const REAP_LIMIT = 100;
/** Newest version first: the order every read uses. */
const NEWEST_FIRST = { 'metadata.startedAt': -1, _id: -1 } as const;

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

type VersionKey = { startedAt: Date; id: ObjectId };

/** Versions of `filename` older than `key` (versions written before versions had `startedAt` count as oldest). */
function olderThan(filename: string, key: VersionKey): Filter<GridFSFile> {
  return {
    filename,
    $or: [
      { 'metadata.startedAt': { $lt: key.startedAt } },
      { 'metadata.startedAt': key.startedAt, _id: { $lt: key.id } },
      { 'metadata.startedAt': { $exists: false } },
    ],
  };
}

function newerThan(filename: string, key: VersionKey): Filter<GridFSFile> {
  return {
    filename,
    $or: [{ 'metadata.startedAt': { $gt: key.startedAt } }, { 'metadata.startedAt': key.startedAt, _id: { $gt: key.id } }],
  };
}

export function createGridFsResultStore(db: Db, options: GridFsResultStoreOptions = {}): ResultStore {
  const bucketName = options.bucketName ?? 'results';
  const graceMs = options.supersededGraceMs ?? 900_000;
  const bucket = new GridFSBucket(db, {
    bucketName,
    ...(options.chunkSizeBytes === undefined ? {} : { chunkSizeBytes: options.chunkSizeBytes }),
  });
  const files = db.collection<GridFSFile>(`${bucketName}.files`);
  const filenameOf = (jobId: string, name: string) => `${checkJobId(jobId)}/${normaliseResultName(name)}`;
  let indexed: Promise<unknown> | null = null;
  const ensureIndexes = () => {
    indexed ??= files
      .createIndexes([
        // Named by the server, as it was before versions were ordered: the same index again.
        { key: { 'metadata.jobId': 1, filename: 1, uploadDate: -1 } },
        { key: { filename: 1, ...NEWEST_FIRST }, name: 'versions' },
        {
          key: { 'metadata.supersededAt': 1 },
          name: 'superseded',
          partialFilterExpression: { 'metadata.supersededAt': { $exists: true } },
        },
      ])
      .catch((error: unknown) => {
        indexed = null;
        throw error;
      });
    return indexed;
  };

  async function latest(jobId: string, name: string): Promise<GridFSFile | null> {
    return files.findOne({ filename: filenameOf(jobId, name) }, { sort: NEWEST_FIRST });
  }

  /** The server's clock: versions written by different processes are ordered by one clock. */
  async function serverNow(): Promise<Date> {
    const hello = await db.admin().command({ hello: 1 });
    return hello.localTime instanceof Date ? hello.localTime : new Date();
  }

  const markSuperseded: Document[] = [{ $set: { 'metadata.supersededAt': { $ifNull: ['$metadata.supersededAt', '$$NOW'] } } }];

  /** Marks what `key` displaced, or `key` itself when a newer version exists; deletes what was displaced long enough ago. */
  async function settle(filename: string, key: VersionKey): Promise<void> {
    await files.updateMany({ ...olderThan(filename, key), 'metadata.supersededAt': { $exists: false } }, markSuperseded);
    // A newer version committed before this one: its put may have looked before this one existed.
    if ((await files.findOne(newerThan(filename, key), { projection: { _id: 1 } })) !== null) {
      await files.updateOne({ _id: key.id }, markSuperseded);
    }
    const due = files
      .find(
        {
          'metadata.supersededAt': { $exists: true },
          $expr: { $lte: ['$metadata.supersededAt', { $subtract: ['$$NOW', graceMs] }] },
        },
        { projection: { _id: 1 } },
      )
      .limit(REAP_LIMIT);
    // Another process may delete the same version at the same time: "not found" is fine.
    for await (const old of due) await bucket.delete(old._id).catch(() => undefined);
  }

  return {
    async put(jobId, name, body: ResultBody, contentType) {
      await ensureIndexes();
      const filename = filenameOf(jobId, name);
      const startedAt = await serverNow();
      const body$ = measured(body);
      const upload = bucket.openUploadStream(filename, { metadata: { jobId, name: normaliseResultName(name), contentType, startedAt } });
      try {
        await pipeline(body$.stream, upload);
      } catch (error) {
        await bucket.delete(upload.id).catch(() => undefined);
        throw error;
      }
      const sha256 = body$.sha256();
      const size = body$.size();
      await files.updateOne({ _id: upload.id }, { $set: { 'metadata.sha256': sha256 } });
      await settle(filename, { startedAt, id: upload.id });
      return { name: normaliseResultName(name), contentType, size, sha256 };
    },
    async open(jobId, name, range?: ByteRange) {
      const file = await latest(jobId, name);
      if (file === null) return null;
      if (range === undefined) return bucket.openDownloadStream(file._id);
      return bucket.openDownloadStream(file._id, { start: range.start, end: Math.min(range.end + 1, file.length) });
    },
    async read(jobId, name) {
      const stream = await this.open(jobId, name);
      if (stream === null) return null;
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    },
    async list(jobId) {
      const seen = new Map<string, number>();
      const cursor = files.find({ 'metadata.jobId': checkJobId(jobId) }, { sort: NEWEST_FIRST });
      for await (const file of cursor) {
        const name = String(file.metadata?.name ?? '');
        if (!seen.has(name)) seen.set(name, file.length);
      }
      return [...seen].map(([name, size]) => ({ name, size })).sort((a, b) => a.name.localeCompare(b.name));
    },
    async folders(prefix) {
      const ids = await files.distinct('metadata.jobId', { 'metadata.jobId': { $regex: `^${escapeRegex(prefix)}` } });
      return (ids as unknown[]).filter((id): id is string => typeof id === 'string').sort();
    },
    async deleteJob(jobId) {
      for await (const file of files.find({ 'metadata.jobId': checkJobId(jobId) }, { projection: { _id: 1 } })) {
        await bucket.delete(file._id).catch(() => undefined);
      }
    },
  };
}
