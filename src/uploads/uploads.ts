/**
 * Uploaded source files (a PDF sent instead of a URL), kept under `<dir>/<uploadId>`
 * with a small JSON sidecar naming the owner. Jobs refer to them by `uploadId`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ForbiddenError, NotFoundError, ValidationError } from '../errors.js';

export interface UploadInfo {
  uploadId: string;
  ownerId: string;
  contentType: string;
  size: number;
  createdAt: string;
}

export interface UploadStore {
  put(ownerId: string, body: Uint8Array, contentType: string): Promise<UploadInfo>;
  /** The upload's bytes; only its owner may use it. */
  read(uploadId: string, ownerId: string): Promise<{ info: UploadInfo; body: Buffer }>;
  delete(uploadId: string): Promise<void>;
}

function checkId(uploadId: string): string {
  if (!/^upl_[a-f0-9]{32}$/.test(uploadId)) throw new ValidationError(`not an upload id: ${uploadId}`, { field: 'uploadId' });
  return uploadId;
}

export function createFsUploadStore(dir: string): UploadStore {
  return {
    async put(ownerId, body, contentType) {
      await mkdir(dir, { recursive: true });
      const info: UploadInfo = {
        uploadId: `upl_${randomBytes(16).toString('hex')}`,
        ownerId,
        contentType,
        size: body.length,
        createdAt: new Date().toISOString(),
      };
      await writeFile(join(dir, info.uploadId), body);
      await writeFile(join(dir, `${info.uploadId}.json`), JSON.stringify(info));
      return info;
    },
    async read(uploadId, ownerId) {
      const id = checkId(uploadId);
      let info: UploadInfo;
      try {
        info = JSON.parse(await readFile(join(dir, `${id}.json`), 'utf8')) as UploadInfo;
      } catch {
        throw new NotFoundError('upload', id);
      }
      if (info.ownerId !== ownerId) throw new ForbiddenError(`upload ${id} belongs to another user`);
      return { info, body: await readFile(join(dir, id)) };
    },
    async delete(uploadId) {
      const id = checkId(uploadId);
      await rm(join(dir, id), { force: true });
      await rm(join(dir, `${id}.json`), { force: true });
    },
  };
}
