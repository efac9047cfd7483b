/**
 * Reading an answer from someone else's server without trusting its size. `got`'s
 * promise API buffers the whole (decompressed) body before it resolves, so a 1 MB gzip
 * bomb becomes a gigabyte in memory. A stream read here stops at `maxBytes` of
 * decompressed data and closes the request: decompression only runs as far as the
 * reader pulls, so memory stays at `maxBytes` plus one chunk, whatever the body expands to.
 */
import type { PlainResponse, Request } from 'got';

export interface BoundedBody {
  response: PlainResponse;
  /** At most `maxBytes` of the decompressed body. */
  body: Buffer;
  /** The body went on beyond `maxBytes`; the request was closed there. */
  truncated: boolean;
}

/**
 * Reads the body of a `got.stream` request up to `maxBytes`. Rejects with the request's
 * error (an `HTTPError` when the request throws on HTTP errors, a timeout, …).
 */
export function readBounded(request: Request, maxBytes: number): Promise<BoundedBody> {
  return new Promise((resolve, reject) => {
    let response: PlainResponse | null = null;
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (truncated: boolean) => {
      if (settled) return;
      settled = true;
      if (response === null) {
        reject(new Error('the request ended without a response'));
        return;
      }
      resolve({ response, body: Buffer.concat(chunks, size), truncated });
    };
    request.on('response', (answer: PlainResponse) => {
      response = answer;
    });
    request.on('data', (chunk: Buffer) => {
      if (settled) return;
      const room = maxBytes - size;
      if (chunk.length > room) {
        chunks.push(chunk.subarray(0, room));
        size += room;
        // Enough: stop reading (and inflating) and drop the connection.
        request.destroy();
        finish(true);
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
    });
    request.on('end', () => finish(false));
    request.on('error', (error: Error) => {
      if (settled) return;
      settled = true;
      reject(error);
    });
  });
}
