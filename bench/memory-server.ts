/**
 * A server in a fresh process for the memory benchmark, so its RSS carries nothing from
 * earlier benchmarks: `raw` (a bare `ws` server), `gql` (Conveyor's API with one
 * batch) or `stock` (graphql-ws's own `ws` server with graphql-js, no Conveyor). Over IPC: sends `{ url, batchId? }` when listening; answers `{ measure }`
 * with `{ rss, heap }` (heap: V8 heap in use plus external memory), the medians of five
 * samples taken after collecting garbage.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { useServer } from 'graphql-ws/use/ws';
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
  } else if (mode === 'stock') {
    // graphql-ws's own `ws` integration and graphql-js with a subscription that answers
    // once and then waits: what any graphql-ws server pays per subscriber.
    const schema = makeExecutableSchema({
      typeDefs: `type Counts { total: Int, pending: Int, completed: Int }
        type BatchChange { at: String, cursor: String, status: String, active: Boolean, counts: Counts }
        type Query { ok: Boolean }
        type Subscription { batchUpdated(id: ID!): BatchChange }`,
      resolvers: {
        Subscription: {
          batchUpdated: {
            async *subscribe() {
              const at = new Date().toISOString();
              yield { batchUpdated: { at, cursor: '1', status: 'PENDING', active: false, counts: { total: 1, pending: 1, completed: 0 } } };
              await new Promise(() => undefined);
            },
          },
        },
      },
    });
    const http = createServer();
    useServer({ schema }, new WebSocketServer({ server: http, path: '/graphql' }));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    process.send?.({ url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`, batchId: 'bat_stock' });
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
