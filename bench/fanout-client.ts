/**
 * The client side of the fan-out benchmark, run as a separate process so the server's
 * event loop is not shared with its subscribers. Driven over IPC by graphql-bench.ts:
 *   { open: { mode: 'gql' | 'raw', url, n, query?, variables? } } → { ready }
 *   { expect: total } → { reached: epochMs } once `total` messages arrived in all
 *   { latency: true } → { latencies: number[] } (receive time − event time, ms)
 */
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

interface Open {
  mode: 'gql' | 'raw';
  url: string;
  n: number;
  query?: string;
  variables?: Record<string, unknown>;
}

/** Header mode takes the identity from the upgrade request's headers. */
class BenchSocket extends WebSocket {
  constructor(address: string | URL, protocols?: string | string[]) {
    super(address, protocols, { headers: { 'x-user-id': 'bench' } });
  }
}

let received = 0;
let target = Number.POSITIVE_INFINITY;
let latencies: number[] = [];
const closers: (() => void)[] = [];

function count(at: string | undefined): void {
  received++;
  if (at !== undefined) latencies.push(Date.now() - Date.parse(at));
  if (received >= target) {
    target = Number.POSITIVE_INFINITY;
    process.send?.({ reached: Date.now() });
  }
}

async function open(options: Open): Promise<void> {
  const ready: Promise<void>[] = [];
  for (let i = 0; i < options.n; i++) {
    if (options.mode === 'raw') {
      const socket = new WebSocket(options.url);
      ready.push(new Promise((resolve) => socket.once('open', () => resolve())));
      socket.on('message', (data) =>
        count((JSON.parse(String(data)) as { payload: { data: { batchUpdated: { at: string } } } }).payload.data.batchUpdated.at),
      );
      closers.push(() => socket.close());
    } else {
      const client = createClient({
        url: options.url,
        webSocketImpl: BenchSocket,
        retryAttempts: 0,
      });
      let first = true;
      ready.push(
        new Promise((resolve, reject) => {
          const dispose = client.subscribe<{ batchUpdated: { at: string } }>(
            { query: options.query as string, variables: options.variables ?? {} },
            {
              next(result) {
                if (first) {
                  first = false; // the snapshot
                  resolve();
                  return;
                }
                count(result.data?.batchUpdated.at);
              },
              error: reject,
              complete: () => undefined,
            },
          );
          closers.push(() => {
            dispose();
            void client.dispose();
          });
        }),
      );
    }
    // Open in small waves: thousands of simultaneous handshakes would only measure the accept queue.
    if (i % 200 === 199) await Promise.all(ready.slice(-200));
  }
  await Promise.all(ready);
}

process.on('message', (message: { open?: Open; expect?: number; latency?: boolean; reset?: boolean; close?: boolean }) => {
  if (message.open !== undefined) {
    open(message.open).then(
      () => process.send?.({ ready: true }),
      (error: unknown) => process.send?.({ error: String(error) }),
    );
  } else if (message.expect !== undefined) {
    target = received + message.expect;
    if (received >= target) process.send?.({ reached: Date.now() });
  } else if (message.reset === true) {
    latencies = [];
    process.send?.({ reset: true });
  } else if (message.latency === true) {
    process.send?.({ latencies });
  } else if (message.close === true) {
    for (const close of closers) close();
    setTimeout(() => process.exit(0), 200);
  }
});
