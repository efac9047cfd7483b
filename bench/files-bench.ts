/**
 * `/files` download throughput of a 50 MB result (signed URL checked, job read, access
 * decided, ETag and headers, streamed from the result store) ÷ `fs.createReadStream`
 * of the same file piped to the response, on the same server, alternating rounds.
 */
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthenticator } from '../src/auth/auth.js';
import { DEFAULTS } from '../src/config.js';
import { createFileRoutes } from '../src/http/files.js';
import { createHttpServer } from '../src/http/server.js';
import { createLogger } from '../src/log.js';
import { createFsResultStore } from '../src/results/fs/fs-result-store.js';
import { createUrlSigner } from '../src/results/urls.js';
import { createSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { BenchResult } from './store-bench.js';

const SIZE = 50 * 1024 * 1024;

/** Downloads a URL, counting bytes; resolves with MB/s. */
function download(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    get(url, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      res.on('end', () => {
        if (res.statusCode !== 200 || bytes !== SIZE) reject(new Error(`download of ${url}: ${res.statusCode}, ${bytes} bytes`));
        else resolve(bytes / 1e6 / ((performance.now() - started) / 1000));
      });
    }).on('error', reject);
  });
}

export async function benchFiles(rounds: number): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-fbench-'));
  const store = createSqliteStore({ path: join(dir, 'bench.db') });
  const results = createFsResultStore(join(dir, 'results'));
  const logger = createLogger('error');
  try {
    const [created] = await store.createJobs([{ type: 'bench', parameters: {}, maxAttempts: 1, ownerId: 'bench' }]);
    const job = await store.claimNext({ workerId: 'bench', leaseMs: 60_000 });
    if (job === null || created === undefined) throw new Error('bench job not claimed');
    const body = Buffer.alloc(SIZE);
    for (let i = 0; i < SIZE; i += 4096) body[i] = i % 251;
    const file = await results.put(job.id, 'talk.bin', body, 'application/octet-stream');
    await store.complete({ jobId: job.id, workerId: 'bench', leaseToken: job.leaseToken }, { files: [{ ...file }] });
    const path = join(dir, 'results', job.id, 'talk.bin');

    let base = '';
    const signer = createUrlSigner({ secret: 'bench-secret', ttl: 3600, baseUrl: () => base });
    const raw = async (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      if (req.url !== '/raw') return false;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': SIZE });
      createReadStream(path).pipe(res);
      return true;
    };
    const http = createHttpServer({
      store,
      logger,
      shutdownGraceMs: 1000,
      routes: [createFileRoutes({ store, results, signer, authenticator: createAuthenticator(DEFAULTS.auth), logger }), raw],
    });
    const address: AddressInfo = await http.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${address.port}`;
    try {
      const ratios: number[] = [];
      let last = { files: 0, raw: 0 };
      await download(signer.fileUrl(job.id, 'talk.bin', 'owner')); // warm-up
      await download(`${base}/raw`);
      for (let round = 0; round < rounds; round++) {
        const files = await download(signer.fileUrl(job.id, 'talk.bin', 'owner'));
        const bare = await download(`${base}/raw`);
        ratios.push(files / bare);
        last = { files, raw: bare };
      }
      const ratio = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)] as number;
      return {
        name: '/files download of a 50 MB result ÷ fs.createReadStream piped to the response, same server',
        value: `${ratio.toFixed(2)} (/files ≈ ${Math.round(last.files)} MB/s, raw ≈ ${Math.round(last.raw)} MB/s)`,
        target: '≥ 0.8',
        pass: ratio >= 0.8,
      };
    } finally {
      await http.close();
    }
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
