/**
 * Memory of a streamed batch archive: the RSS growth of a server streaming the ZIP of a
 * 1,000-job batch (100 KB per job, about 100 MB) to a client that reads it at once. The
 * archive opens each entry only when it reaches it, so memory should stay flat. Run in
 * a fresh process (`isolated`) so that RSS does not carry earlier benchmarks' garbage.
 */
import { mkdtempSync, rmSync } from 'node:fs';
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

const LIMIT_MB = 50;

export async function benchArchiveMemory(jobs: number): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-abench-'));
  const store = createSqliteStore({ path: join(dir, 'bench.db') });
  const results = createFsResultStore(join(dir, 'results'));
  const logger = createLogger('error');
  try {
    const { value } = await store.createBatch({
      name: 'big',
      ownerId: 'bench',
      jobs: Array.from({ length: jobs }, (_, n) => ({ type: 'bench', parameters: { session: `s${n}` }, maxAttempts: 1 })),
    });
    const blob = Buffer.alloc(100_000, 7);
    for (;;) {
      const job = await store.claimNext({ workerId: 'bench', leaseMs: 60_000 });
      if (job === null) break;
      const file = await results.put(job.id, 'talk.bin', blob, 'application/octet-stream');
      await store.complete({ jobId: job.id, workerId: 'bench', leaseToken: job.leaseToken }, { files: [{ ...file }] });
    }
    let base = '';
    const signer = createUrlSigner({ secret: 'bench-secret', ttl: 3600, baseUrl: () => base });
    const http = createHttpServer({
      store,
      logger,
      shutdownGraceMs: 1000,
      routes: [createFileRoutes({ store, results, signer, authenticator: createAuthenticator(DEFAULTS.auth), logger })],
    });
    const address: AddressInfo = await http.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${address.port}`;
    try {
      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 20);
      const bytes = await new Promise<number>((resolve, reject) => {
        get(signer.archiveUrl('batches', value.batch.id, 'owner'), (res) => {
          let n = 0;
          res.on('data', (chunk: Buffer) => {
            n += chunk.length;
            peak = Math.max(peak, process.memoryUsage().rss);
          });
          res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`archive answered ${res.statusCode}`))));
        }).on('error', reject);
      });
      clearInterval(sampler);
      const growth = (peak - before) / 1e6;
      return {
        name: `RSS growth while streaming the archive of a ${jobs.toLocaleString('en')}-job batch (${Math.round(bytes / 1e6)} MB)`,
        value: `${growth.toFixed(1)} MB`,
        target: `< ${LIMIT_MB} MB`,
        pass: growth < LIMIT_MB,
      };
    } finally {
      await http.close();
    }
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
