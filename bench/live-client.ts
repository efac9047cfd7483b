/**
 * The subscriber side of the live-progress benchmark, in a process of its own. Over IPC:
 *   { open: { mode: 'gql' | 'raw', url, ids, n } } → { ready } once every socket has its
 *     first message (gql: the SNAPSHOT; raw: a hello), socket i following job ids[i % ids.length]
 *   { stats: true } → { latencies, ended } (receive time − the change's own time, ms; sockets
 *     that saw their job's terminal state)
 *   { close: true } closes every socket and exits.
 */
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

interface Open {
  mode: 'gql' | 'raw';
  url: string;
  ids: string[];
  n: number;
}

const QUERY = 'subscription ($id: ID!) { jobUpdated(id: $id) { at status progress { percent } } }';

class BenchSocket extends WebSocket {
  constructor(address: string | URL, protocols?: string | string[]) {
    super(address, protocols, { headers: { 'x-user-id': 'bench' } });
  }
}

const latencies: number[] = [];
let ended = 0;
const closers: (() => void)[] = [];

interface Change {
  at: string;
  status: string;
}

function seen(change: Change | undefined, first: boolean): void {
  if (change === undefined) return;
  if (!first) latencies.push(Date.now() - Date.parse(change.at));
  if (change.status === 'COMPLETED') ended++;
}

async function open(options: Open): Promise<void> {
  const ready: Promise<void>[] = [];
  for (let i = 0; i < options.n; i++) {
    const id = options.ids[i % options.ids.length] as string;
    if (options.mode === 'raw') {
      const socket = new WebSocket(`${options.url}?id=${id}`);
      let first = true;
      ready.push(
        new Promise((resolve) => {
          socket.on('message', (data) => {
            const change = (JSON.parse(String(data)) as { payload: { data: { jobUpdated: Change } } }).payload.data.jobUpdated;
            seen(change, first);
            if (first) {
              first = false;
              resolve();
            }
          });
        }),
      );
      closers.push(() => socket.close());
    } else {
      const client = createClient({ url: options.url, webSocketImpl: BenchSocket, retryAttempts: 0 });
      let first = true;
      ready.push(
        new Promise((resolve, reject) => {
          const dispose = client.subscribe<{ jobUpdated: Change }>(
            { query: QUERY, variables: { id } },
            {
              next(result) {
                seen(result.data?.jobUpdated, first);
                if (first) {
                  first = false; // the snapshot
                  resolve();
                }
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

process.on('message', (message: { open?: Open; stats?: boolean; close?: boolean }) => {
  if (message.open !== undefined) {
    open(message.open).then(
      () => process.send?.({ ready: true }),
      (error: unknown) => process.send?.({ error: String(error) }),
    );
  } else if (message.stats === true) {
    process.send?.({ latencies, ended });
  } else if (message.close === true) {
    for (const close of closers) close();
    setTimeout(() => process.exit(0), 200);
  }
});
