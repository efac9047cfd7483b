/**
 * The graphql-ws transport's keep-alive (src/graphql/ws.ts) through a real server and
 * real `ws` clients speaking the graphql-transport-ws protocol by hand, so that one of
 * them can stop answering pings (`autoPong: false`) like a peer whose network vanished.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startApi, type TestApi } from '../helpers/api.js';

let api: TestApi;
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await api?.stop();
});

interface Peer {
  socket: WebSocket;
  /** Pings the server sent this peer so far. */
  pings: number;
  /** Resolves once the peer has seen `n` pings in all. */
  pinged(n: number): Promise<void>;
  /** Resolves with the close code and reason when the connection ends. */
  closed: Promise<{ code: number; reason: string }>;
}

/** A graphql-transport-ws connection, acknowledged, that answers pings only when `autoPong`. */
async function connect(autoPong: boolean): Promise<Peer> {
  const socket = new WebSocket(api.wsUrl, 'graphql-transport-ws', { autoPong, headers: { 'x-user-id': 'alice' } });
  sockets.push(socket);
  const waiting: { n: number; resolve: () => void }[] = [];
  const peer: Peer = {
    socket,
    pings: 0,
    pinged: (n) =>
      peer.pings >= n
        ? Promise.resolve()
        : Promise.race([
            new Promise<void>((resolve) => waiting.push({ n, resolve })),
            peer.closed.then(({ code }) => {
              throw new Error(`closed (${code}) after ${peer.pings} pings, waiting for ${n}`);
            }),
          ]),
    closed: new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: String(reason) }))),
  };
  socket.on('ping', () => {
    peer.pings++;
    for (const w of waiting.filter((w) => w.n <= peer.pings)) w.resolve();
  });
  const acked = new Promise<void>((resolve, reject) => {
    socket.on('message', (data) => {
      if ((JSON.parse(String(data)) as { type: string }).type === 'connection_ack') resolve();
    });
    socket.on('error', reject);
    void peer.closed.then(({ code, reason }) => reject(new Error(`closed before connection_ack: ${code} ${reason}`)));
  });
  socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
  await acked;
  return peer;
}

/** Subscriptions open on the server, as /metrics reports them. */
async function activeSubscriptions(): Promise<number> {
  return Number(/^conveyor_subscriptions_active (\d+)$/m.exec(await api.conveyor.metrics.render())?.[1]);
}

describe('graphql-ws keep-alive', () => {
  it("answers the peer's websocket pings with pongs carrying the same data", async () => {
    api = await startApi({ overrides: { 'graphql.keepAliveMs': 0 } });
    const peer = await connect(true);
    for (const marker of ['first', 'second']) {
      const pong = new Promise<string>((resolve) => peer.socket.once('pong', (data) => resolve(String(data))));
      peer.socket.ping(marker);
      expect(await Promise.race([pong, peer.closed.then(({ code }) => `closed ${code}`)])).toBe(marker);
    }
    expect(peer.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('terminates a peer that stops answering pings and frees its subscription; a peer that answers stays', async () => {
    api = await startApi({ overrides: { 'graphql.keepAliveMs': 200 } });
    const live = await connect(true);
    // Two pings: the second came after the server had checked the first's pong.
    await live.pinged(2);

    const dead = await connect(false);
    dead.socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { jobEvents { op jobId } }' } }));
    await expect.poll(activeSubscriptions).toBe(1);

    // Terminated, not closed: 1006 is what a peer sees when the server drops the connection.
    // The dead peer is checked twice within two intervals of connecting; four more pings
    // to the live peer take at least three, so reaching them without a close is a failure.
    const ended = await Promise.race([dead.closed, live.pinged(live.pings + 4).then(() => 'still open after 4 pings')]);
    expect(ended).toEqual({ code: 1006, reason: '' });
    expect(dead.pings).toBeGreaterThanOrEqual(1);
    await expect.poll(activeSubscriptions).toBe(0);

    // The answering peer lives on through further checks.
    const seen = live.pings;
    await live.pinged(seen + 2);
    expect(live.socket.readyState).toBe(WebSocket.OPEN);
  });
});
