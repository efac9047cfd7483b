/**
 * Result files in MongoDB GridFS (bucket `results`), used with the MongoDB store so any
 * API process serves what any worker wrote. A file is `<jobId>/<name>` with the job id
 * and name in its metadata; a new version replaces the old one once fully written.
 */
import { pipeline } from 'node:stream/promises';
import { type Db, GridFSBucket, type GridFSFile } from 'mongodb';
import { type ByteRange, checkJobId, measured, normaliseResultName, type ResultBody, type ResultStore } from '../port.js';

export interface GridFsResultStoreOptions {
  bucketName?: string;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function createGridFsResultStore(db: Db, options: GridFsResultStoreOptions = {}): ResultStore {
  const bucket = new GridFSBucket(db, { bucketName: options.bucketName ?? 'results' });
  const files = db.collection<GridFSFile>(`${options.bucketName ?? 'results'}.files`);
  const filenameOf = (jobId: string, name: string) => `${checkJobId(jobId)}/${normaliseResultName(name)}`;
  let indexed: Promise<unknown> | null = null;
  const ensureIndexes = () => {
    indexed ??= files.createIndex({ 'metadata.jobId': 1, filename: 1, uploadDate: -1 }).catch((error: unknown) => {
      indexed = null;
      throw error;
    });
    return indexed;
  };

  async function latest(jobId: string, name: string): Promise<GridFSFile | null> {
    return files.findOne({ filename: filenameOf(jobId, name) }, { sort: { uploadDate: -1, _id: -1 } });
  }

  return {
    async put(jobId, name, body: ResultBody, contentType) {
      await ensureIndexes();
      const filename = filenameOf(jobId, name);
      const body$ = measured(body);
      const upload = bucket.openUploadStream(filename, { metadata: { jobId, name: normaliseResultName(name), contentType } });
      try {
        await pipeline(body$.stream, upload);
      } catch (error) {
        await bucket.delete(upload.id).catch(() => undefined);
        throw error;
      }
      const sha256 = body$.sha256();
      const size = body$.size();
      await files.updateOne({ _id: upload.id }, { $set: { 'metadata.sha256': sha256 } });
      // Older versions go once the new one is complete.
      for await (const old of files.find({ filename, _id: { $ne: upload.id } }, { projection: { _id: 1 } })) {
        await bucket.delete(old._id).catch(() => undefined);
      }
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
      const cursor = files.find({ 'metadata.jobId': checkJobId(jobId) }, { sort: { uploadDate: -1 } });
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
