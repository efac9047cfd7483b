/**
 * `POST /uploads`: a file for a later `pdf` job, as the raw request body (its
 * Content-Type kept) or as the first file of a `multipart/form-data` body. Needs
 * credentials (the caller becomes the owner; only the owner's jobs may use it) and
 * stays within `limits.maxUploadBytes` (413 otherwise, nothing kept). Answers 201 with
 * `{ uploadId, size, contentType, sha256, expiresAt }`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import type { Authenticator } from '../auth/auth.js';
import { AppError } from '../errors.js';
import type { UploadStore } from '../uploads/uploads.js';
import { sendError, sendJson } from './respond.js';

export interface UploadRouteOptions {
  uploads: UploadStore;
  authenticator: Authenticator;
  maxBytes: number;
  /** Hours an unused upload is kept. */
  ttlHours: number;
}

/** The first file part of a multipart body, as a stream with its declared type. */
function firstFile(req: IncomingMessage, maxBytes: number): Promise<{ stream: Readable; contentType: string }> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { files: 1, fileSize: maxBytes + 1 } });
    } catch (error) {
      reject(new AppError('BAD_USER_INPUT', `cannot read the multipart body: ${(error as Error).message}`));
      return;
    }
    let found = false;
    parser.on('file', (_field, stream, info) => {
      found = true;
      resolve({ stream, contentType: info.mimeType || 'application/octet-stream' });
    });
    parser.on('error', (error: Error) => reject(new AppError('BAD_USER_INPUT', `cannot read the multipart body: ${error.message}`)));
    parser.on('close', () => {
      if (!found) reject(new AppError('BAD_USER_INPUT', 'the multipart body has no file part'));
    });
    req.pipe(parser);
  });
}

export function createUploadRoute(options: UploadRouteOptions) {
  const { uploads, authenticator, maxBytes } = options;

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/uploads') return false;
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      sendError(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on /uploads`);
      return true;
    }
    const refuse = (status: number, code: string, message: string) => {
      // Stop reading what is left of the body, and close the connection after the answer.
      res.setHeader('connection', 'close');
      sendError(res, status, code, message);
      req.resume();
    };
    try {
      const principal = await authenticator.authenticate(req.headers);
      if (principal.userId === null) {
        refuse(401, 'UNAUTHENTICATED', 'uploads need credentials: the uploader owns the file');
        return true;
      }
      const declared = Number(req.headers['content-length'] ?? Number.NaN);
      if (declared > maxBytes) {
        refuse(413, 'PAYLOAD_TOO_LARGE', `the upload is larger than ${maxBytes} bytes (limits.maxUploadBytes)`);
        return true;
      }
      const type = req.headers['content-type'] ?? 'application/octet-stream';
      const { stream, contentType } = /^multipart\/form-data/i.test(type)
        ? await firstFile(req, maxBytes)
        : { stream: req as Readable, contentType: type };
      const info = await uploads.put(principal.userId, stream, contentType, maxBytes);
      const expiresAt = new Date(new Date(info.createdAt).getTime() + options.ttlHours * 3_600_000).toISOString();
      sendJson(res, 201, { uploadId: info.uploadId, size: info.size, contentType: info.contentType, sha256: info.sha256, expiresAt });
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      const status = error.code === 'PAYLOAD_TOO_LARGE' ? 413 : error.code === 'UNAUTHENTICATED' ? 401 : 400;
      refuse(status, error.code, error.message);
    }
    return true;
  };
}
