/**
 * A delivery's body is the same on every attempt: its signed file and archive URLs are
 * signed as of the moment the delivery was enqueued, not when it is sent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Delivery, Job } from '../../src/domain/types.js';
import { createFsResultStore } from '../../src/results/fs/fs-result-store.js';
import { createUrlSigner } from '../../src/results/urls.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { deliveryBody } from '../../src/webhooks/dispatcher.js';

describe('webhook delivery body', () => {
  let dir: string;
  let store: SqliteStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-body-'));
    store = createSqliteStore({ path: join(dir, 'conveyor.db') });
  });
  afterEach(async () => {
    vi.useRealTimers();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends the same bytes, with URLs signed at enqueue time, however late the attempt', async () => {
    const results = createFsResultStore(join(dir, 'results'));
    const signer = createUrlSigner({ secret: 'test-secret', ttl: 86_400, baseUrl: 'https://jobs.example.test' });
    const webhook = { url: 'https://example.test/hook', includeMarkdown: true };
    await store.createJobs([{ type: 'noop', parameters: {}, maxAttempts: 1, ownerId: 'alice', webhook }]);
    const job = (await store.claimNext({ workerId: 'w', leaseMs: 30_000 })) as Job;
    await results.put(job.id, 'out.md', Buffer.from('# Title\n'), 'text/markdown');
    const files = [{ name: 'out.md', contentType: 'text/markdown', size: 8, sha256: 'x' }];
    await store.complete({ jobId: job.id, workerId: 'w', leaseToken: job.leaseToken }, { files, markdown: 'out.md' });
    const [delivery] = (await store.listDeliveries({ jobId: job.id })) as [Delivery];

    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(delivery.createdAt.getTime() + 5_000);
    const first = await deliveryBody(delivery, results, signer);
    vi.setSystemTime(delivery.createdAt.getTime() + 3_600_000);
    const later = await deliveryBody(delivery, results, signer);

    expect(later).toBe(first);
    const body = JSON.parse(first) as { data: { files: { url: string }[]; archiveUrl: string; markdown: string } };
    expect(body.data.markdown).toBe('# Title\n');
    const exp = Math.floor(delivery.createdAt.getTime() / 1000) + 86_400;
    expect(new URL(body.data.files[0]?.url as string).searchParams.get('exp')).toBe(String(exp));
    expect(new URL(body.data.archiveUrl).searchParams.get('exp')).toBe(String(exp));
  });
});
