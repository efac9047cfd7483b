/**
 * Uploaded source files (a PDF sent instead of a URL). They live in the result store
 * under their own folder `upl_<id>` (so GridFS carries them between machines with the
 * MongoDB store): `content` plus `upload.json` naming the owner. Jobs refer to them by
 * `uploadId`; only the owner's jobs may use one. Another user's upload is "not found",
 * word for word like one that does not exist, so ids cannot be probed. An upload stays
 * until `uploads.ttlHours` (restarted jobs read it again), or until a job that used it
 * is deleted (`uploads.deleteAfterUse`, only by its owner's job).
 */
import { randomBytes } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { AppError, NotFoundError, ValidationError } from '../errors.js';
import type { ResultStore } from '../results/port.js';

export interface UploadInfo {
  uploadId: string;
  ownerId: string;
  contentType: string;
  size: number;
  sha256: string;
  createdAt: string;
}

export interface UploadStore {
  /** Stores the body; refuses (and keeps nothing of) one larger than `maxBytes` with `PAYLOAD_TOO_LARGE`. */
  put(ownerId: string, body: Uint8Array | Readable, contentType: string, maxBytes?: number): Promise<UploadInfo>;
  /** The upload's bytes; only its owner may use it (NOT_FOUND otherwise, as when it does not exist). */
  read(uploadId: string, ownerId: string): Promise<{ info: UploadInfo; body: Buffer }>;
  /** Throws NOT_FOUND unless the upload exists and belongs to `ownerId`. */
  check(uploadId: string, ownerId: string): Promise<UploadInfo>;
  /** Deletes the upload when it belongs to `ownerId`; another user's upload is left alone. */
  deleteOwned(uploadId: string, ownerId: string): Promise<boolean>;
  /** Deletes uploads created before `before`; returns how many. */
  sweep(before: Date): Promise<number>;
}

const CONTENT = 'content';
const INFO = 'upload.json';

export class PayloadTooLargeError extends AppError {
  constructor(limit: number) {
    super('PAYLOAD_TOO_LARGE', `the upload is larger than ${limit} bytes (limits.maxUploadBytes)`, { limit });
  }
}

export function isUploadId(value: unknown): value is string {
  return typeof value === 'string' && /^upl_[a-f0-9]{32}$/.test(value);
}

function checkId(uploadId: string): string {
  if (!isUploadId(uploadId)) throw new ValidationError(`not an upload id: ${uploadId}`, { field: 'uploadId' });
  return uploadId;
}

function limited(maxBytes: number): Transform {
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > maxBytes) done(new PayloadTooLargeError(maxBytes));
      else done(null, chunk);
    },
  });
}

export function createUploadStore(results: ResultStore): UploadStore {
  async function info(uploadId: string): Promise<UploadInfo | null> {
    const raw = await results.read(uploadId, INFO);
    return raw === null ? null : (JSON.parse(raw.toString('utf8')) as UploadInfo);
  }

  /** The upload's info when `ownerId` owns it; NOT_FOUND (the same words) when it is missing or someone else's. */
  async function owned(uploadId: string, ownerId: string): Promise<UploadInfo> {
    const id = checkId(uploadId);
    const found = await info(id);
    if (found === null || found.ownerId !== ownerId) throw new NotFoundError('upload', id);
    return found;
  }

  return {
    async put(ownerId, body, contentType, maxBytes = Number.POSITIVE_INFINITY) {
      const uploadId = `upl_${randomBytes(16).toString('hex')}`;
      const source = body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : body;
      const limiter = limited(maxBytes);
      // Not pipeline(): a refused upload must leave the request open so that it still gets its 413.
      source.on('error', (error) => limiter.destroy(error));
      // The error may come before the store starts reading; the store's write still sees it (stream.errored).
      limiter.on('error', () => undefined);
      source.pipe(limiter);
      try {
        const file = await results.put(uploadId, CONTENT, limiter, contentType);
        const stored: UploadInfo = {
          uploadId,
          ownerId,
          contentType,
          size: file.size,
          sha256: file.sha256,
          createdAt: new Date().toISOString(),
        };
        await results.put(uploadId, INFO, JSON.stringify(stored), 'application/json');
        return stored;
      } catch (error) {
        await results.deleteJob(uploadId);
        throw error;
      }
    },
    check: owned,
    async read(uploadId, ownerId) {
      const found = await owned(uploadId, ownerId);
      const body = await results.read(found.uploadId, CONTENT);
      if (body === null) throw new NotFoundError('upload', found.uploadId);
      return { info: found, body };
    },
    async deleteOwned(uploadId, ownerId) {
      if (!isUploadId(uploadId)) return false;
      const found = await info(uploadId).catch(() => null);
      if (found === null || found.ownerId !== ownerId) return false;
      await results.deleteJob(uploadId);
      return true;
    },
    async sweep(before) {
      let deleted = 0;
      for (const id of await results.folders('upl_')) {
        if (!isUploadId(id)) continue;
        const found = await info(id).catch(() => null);
        // Without its info file an upload never finished writing (or is damaged): it goes too.
        if (found === null || new Date(found.createdAt) < before) {
          await results.deleteJob(id);
          deleted++;
        }
      }
      return deleted;
    },
  };
}
