/**
 * `POST /hooks/<source>`: inbound webhooks (see src/ingest/). Unknown sources are 404
 * before any body is read; bodies beyond the source's `maxBodyBytes` are 413 and
 * nothing is kept; a verified, routed delivery is answered 202 with its job id as soon
 * as the job is stored.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Ingest, IngestSource } from '../ingest/ingest.js';
import { sendError, sendJson } from './respond.js';

const PREFIX = '/hooks/';

class TooLarge extends Error {}

/** The whole body, or TooLarge as soon as it passes `max` bytes. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        reject(new TooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

export function createIngestRoute(ingest: Ingest, onAnswer?: (source: string, ms: number) => void) {
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? '/').split('?')[0] as string;
    if (!path.startsWith(PREFIX)) return false;
    const started = performance.now();
    let name = path.slice(PREFIX.length);
    try {
      name = decodeURIComponent(name);
    } catch {
      // Not a source name either way.
    }
    const source: IngestSource | undefined = ingest.sources.get(name);
    if (source === undefined) {
      res.setHeader('connection', 'close');
      sendError(res, 404, 'NOT_FOUND', `no inbound webhook source "${name}" (configure it in ingest.sources)`);
      req.resume();
      return true;
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      sendError(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${PREFIX}${name}`);
      req.resume();
      return true;
    }
    const tooLarge = () => {
      ingest.refused(source);
      res.setHeader('connection', 'close');
      sendError(
        res,
        413,
        'PAYLOAD_TOO_LARGE',
        `the body is larger than ${source.maxBodyBytes} bytes (ingest.sources.${name}.maxBodyBytes)`,
      );
      onAnswer?.(name, performance.now() - started);
    };
    if (Number(req.headers['content-length'] ?? 0) > source.maxBodyBytes) {
      tooLarge();
      req.resume();
      return true;
    }
    let body: Buffer;
    try {
      body = await readBody(req, source.maxBodyBytes);
    } catch (error) {
      if (!(error instanceof TooLarge)) throw error;
      tooLarge();
      return true;
    }
    const answer = await ingest.receive(source, req.headers, body);
    sendJson(res, answer.status, answer.body);
    onAnswer?.(name, performance.now() - started);
    return true;
  };
}
