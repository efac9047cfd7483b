/**
 * A server in a fresh process for the memory benchmark, so its RSS carries nothing from
 * earlier benchmarks: `raw` (a bare `ws` server) or `gql` (Conveyor's API with one
 * batch). Over IPC: sends `{ url, batchId? }` when listening; answers `{ measure }`
 * with `{ rss, heap }` (heap: V8 heap in use plus external memory), the medians of five
 * samples taken after collecting garbage.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { startServer } from './graphql-bench.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const mode = process.argv[2];
  if (mode === 'raw') {
    const http = createServer();
    new WebSocketServer({ server: http });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    process.send?.({ url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}` });
  } else {
    const server = await startServer();
    const { value } = await server.conveyor.client.submitBatch(
      { name: 'memory', active: false, jobs: [{ type: 'pdf', parameters: { url: 'https://example.com/a.pdf' } }] },
      { userId: 'bench', teams: [], admin: false },
    );
    process.send?.({ url: `${server.url.replace('http', 'ws')}/graphql`, batchId: value.batch.id });
  }
  process.on('message', async (message: { measure?: boolean }) => {
    if (message.measure !== true) return;
    // RSS moves in pages and with the collector: the median of five settled samples.
    const gc = (globalThis as { gc?: () => void }).gc;
    const samples: number[] = [];
    const heaps: number[] = [];
    for (let i = 0; i < 5; i++) {
      gc?.();
      await sleep(100);
      const usage = process.memoryUsage();
      samples.push(usage.rss);
      heaps.push(usage.heapUsed + usage.external);
    }
    samples.sort((a, b) => a - b);
    heaps.sort((a, b) => a - b);
    process.send?.({ rss: samples[2], heap: heaps[2] });
  });
}

await main();
