/**
 * A real HTTP server on 127.0.0.1, port 0, that answers every request with a gzip bomb:
 * `total` bytes of zeros (1 GiB by default, about 1 MB on the wire), compressed on the
 * fly and written only as fast as the client reads. Its state tells whether the client
 * read the whole body or hung up early.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGzip } from 'node:zlib';

export interface GzipBomb {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Uncompressed bytes in the answer. */
  total: number;
  /** Uncompressed bytes handed to the compressor so far. */
  written: number;
  /** The whole body went out. */
  finished: boolean;
  /** The connection is closed (by the client, when `finished` is false). */
  closed: boolean;
  /** Paths and headers of the requests received. */
  requests: { path: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

export async function startGzipBomb(options: { total?: number; contentType?: string } = {}): Promise<GzipBomb> {
  const zeros = Buffer.alloc(64 * 1024);
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      bomb.requests.push({ path: req.url ?? '/', headers: req.headers });
      res.writeHead(200, { 'content-type': options.contentType ?? 'text/plain', 'content-encoding': 'gzip' });
      const gzip = createGzip();
      gzip.pipe(res);
      const pump = () => {
        while (bomb.written < bomb.total && !res.destroyed) {
          bomb.written += zeros.length;
          if (!gzip.write(zeros)) {
            gzip.once('drain', pump);
            return;
          }
        }
        gzip.end();
      };
      res.on('finish', () => {
        bomb.finished = true;
      });
      res.on('close', () => {
        bomb.closed = true;
        gzip.destroy();
      });
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const bomb: GzipBomb = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    total: options.total ?? 2 ** 30,
    written: 0,
    finished: false,
    closed: false,
    requests: [],
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return bomb;
}
