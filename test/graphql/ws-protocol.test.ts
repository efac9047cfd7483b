/**
 * The graphql-transport-ws server (src/graphql/ws-protocol.ts behind the `ws` adapter
 * in src/graphql/ws.ts) against graphql-ws's PROTOCOL.md: a real HTTP server on port 0
 * hands its upgrades to `serveGraphQLWs`, and raw `ws` clients send protocol messages
 * by hand, so that every close code and edge can be provoked. The schema is a small one
 * of the test's own: its subscription streams are PushStreams the test feeds and ends.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { execute, GraphQLError, parse } from 'graphql';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createSharedSubscribe } from '../../src/graphql/shared-execution.js';
import { type ConnectionExtra, type GraphQLWsConnection, type GraphQLWsServer, serveGraphQLWs } from '../../src/graphql/ws.js';
import type { ProtocolOptions } from '../../src/graphql/ws-protocol.js';
import { PushStream } from '../../src/lib/push-stream.js';
import { createLogger } from '../../src/log.js';

const PROTOCOL = 'graphql-transport-ws';

/** A promise the test settles. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** The test's server side: streams handed out to subscribers, and gates its resolvers wait on. */
class World {
  /** Every `values` subscription's stream, in the order they started. */
  readonly streams: PushStream<number>[] = [];
  /** `slow` answers when this is resolved. */
  slow = deferred<string>();
  /** Streams created since the test last took one. */
  readonly created: ((stream: PushStream<number>) => void)[] = [];
  /** Resolves with the next `values` stream to start. */
  nextStream(): Promise<PushStream<number>> {
    return new Promise((resolve) => this.created.push(resolve));
  }
}

const typeDefs = /* GraphQL */ `
  type Query {
    hello: String
    slow: String
  }
  type Mutation {
    bump(by: Int!): Int
  }
  type Subscription {
    values: Int
    generated: Int
  }
`;

function schemaFor(world: World) {
  let counter = 0;
  return makeExecutableSchema({
    typeDefs,
    resolvers: {
      Query: { hello: () => 'world', slow: () => world.slow.promise },
      Mutation: {
        bump: (_root: unknown, { by }: { by: number }) => {
          counter += by;
          return counter;
        },
      },
      Subscription: {
        values: {
          subscribe: () => {
            const stream = new PushStream<number>();
            world.streams.push(stream);
            for (const take of world.created.splice(0)) take(stream);
            return stream;
          },
          resolve: (value: number) => value,
        },
        // Not a PushStream: the server pulls from it.
        generated: {
          subscribe: async function* () {
            yield 1;
            yield 2;
          },
          resolve: (value: number) => value,
        },
      },
    },
  });
}

interface Started {
  url: string;
  world: World;
  logs: string[];
  ws: GraphQLWsServer;
  http: Server;
}

let started: Started | null = null;
const peers: Peer[] = [];

afterEach(async () => {
  for (const peer of peers.splice(0)) peer.socket.terminate();
  if (started !== null) {
    await started.ws.dispose();
    await new Promise((resolve) => started?.http.close(resolve));
    started = null;
  }
});

type Options = Omit<ProtocolOptions<ConnectionExtra>, 'onInternalError'>;

/**
 * A real HTTP server on port 0 whose upgrades `serveGraphQLWs` takes. Hooks: accept
 * every connection, run every document on the test schema, unless `overrides` (given
 * the defaults) says otherwise.
 */
async function start(overrides: Partial<Options> | ((defaults: Options) => Partial<Options>) = {}): Promise<Started> {
  const world = new World();
  const schema = schemaFor(world);
  const logs: string[] = [];
  const logger = createLogger('info', {}, (line) => logs.push(line));
  const defaults: Options = {
    execute,
    subscribe: createSharedSubscribe(),
    onConnect: () => true,
    onSubscribe: (_connection, _id, payload) => {
      const document = parse(payload.query);
      return {
        schema,
        document,
        variableValues: payload.variables ?? null,
        operationName: payload.operationName ?? null,
        contextValue: {},
      };
    },
    connectionInitWaitMs: 10_000,
  };
  const options = { ...defaults, ...(typeof overrides === 'function' ? overrides(defaults) : overrides) };
  const ws = serveGraphQLWs(options, { maxPayload: 100_000, keepAliveMs: 0, logger });
  const http = createServer();
  http.on('upgrade', (req, socket, head) => ws.upgrade(req, socket, head, 'req_protocol_test'));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  started = { url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`, world, logs, ws, http };
  return started;
}

interface Received {
  type: string;
  id?: string;
  payload?: unknown;
}

/** A raw client: every message it received, and the close code and reason once closed. */
class Peer {
  readonly messages: Received[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly waiting: { match: (message: Received) => boolean; resolve: (message: Received) => void }[] = [];

  constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as Received;
      this.messages.push(message);
      for (const waiter of this.waiting.filter((w) => w.match(message))) {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        waiter.resolve(message);
      }
    });
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The first message (received so far or later) that matches; rejects if the socket closes first. */
  receive(match: (message: Received) => boolean): Promise<Received> {
    const seen = this.messages.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return Promise.race([
      new Promise<Received>((resolve) => this.waiting.push({ match, resolve })),
      this.closed.then(({ code, reason }) => {
        throw new Error(`closed with ${code} ${reason} while waiting; received ${JSON.stringify(this.messages)}`);
      }),
    ]);
  }

  /** Messages about operation `id`. */
  about(id: string): Received[] {
    return this.messages.filter((message) => message.id === id);
  }

  /**
   * A ping answered: the server has handled everything sent before it, and sent what
   * that made it send (the test's streams live in this process, so anything they were
   * given before is on its way ahead of the pong).
   */
  async roundTrip(): Promise<void> {
    const marker = `m${Math.random()}`;
    this.send({ type: 'ping', payload: { marker } });
    await this.receive((message) => message.type === 'pong' && (message.payload as { marker?: string } | undefined)?.marker === marker);
  }
}

async function open(url: string, protocol: string | null = PROTOCOL): Promise<Peer> {
  const socket = protocol === null ? new WebSocket(url) : new WebSocket(url, protocol);
  const peer = new Peer(socket);
  peers.push(peer);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return peer;
}

/** An acknowledged connection. */
async function connect(url: string, payload?: unknown): Promise<Peer> {
  const peer = await open(url);
  peer.send(payload === undefined ? { type: 'connection_init' } : { type: 'connection_init', payload });
  await peer.receive((message) => message.type === 'connection_ack');
  return peer;
}

const subscribe = (id: string, query: string, variables?: Record<string, unknown>) => ({
  id,
  type: 'subscribe',
  payload: variables === undefined ? { query } : { query, variables },
});

describe('graphql-transport-ws: connection', () => {
  it('acknowledges connection_init without a payload, and answers ping with pong (echoing a payload) and ignores pong', async () => {
    const { url } = await start();
    const peer = await connect(url);
    expect(peer.messages).toEqual([{ type: 'connection_ack' }]);
    peer.send({ type: 'pong' });
    peer.send({ type: 'ping' });
    await peer.receive((message) => message.type === 'pong');
    expect(peer.messages[1]).toEqual({ type: 'pong' });
    peer.send({ type: 'ping', payload: { at: 1 } });
    expect(await peer.receive((message) => message.type === 'pong' && message.payload !== undefined)).toEqual({
      type: 'pong',
      payload: { at: 1 },
    });
  });

  it('passes the connection_init payload to onConnect, and closes with 4403 when it refuses', async () => {
    const seen: unknown[] = [];
    const { url } = await start({
      onConnect: (_connection, params) => {
        seen.push(params);
        return params?.token === 'good';
      },
    });
    await connect(url, { token: 'good' });
    const refused = await open(url);
    refused.send({ type: 'connection_init', payload: { token: 'bad' } });
    expect(await refused.closed).toEqual({ code: 4403, reason: 'Forbidden' });
    expect(refused.messages).toEqual([]);
    expect(seen).toEqual([{ token: 'good' }, { token: 'bad' }]);
  });

  it('closes with 4406 when the client did not offer graphql-transport-ws', async () => {
    const { url } = await start();
    const peer = await open(url, null);
    expect(await peer.closed).toEqual({ code: 4406, reason: 'Subprotocol not acceptable' });
  });

  it('closes with 4408 when connection_init does not arrive in time, and not once it has', async () => {
    const { url } = await start({ connectionInitWaitMs: 100 });
    const initialised = await connect(url);
    const silent = await open(url);
    expect(await silent.closed).toEqual({ code: 4408, reason: 'Connection initialisation timeout' });
    // The silent socket opened after this one, so this one's wait (had it still been running) ended first.
    await initialised.roundTrip();
    expect(initialised.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('closes with 4429 on a second connection_init, also while the first is still being decided', async () => {
    const gate = deferred<boolean>();
    const { url } = await start({ onConnect: () => gate.promise });
    const twice = await open(url);
    twice.send({ type: 'connection_init' });
    twice.send({ type: 'connection_init' });
    expect(await twice.closed).toEqual({ code: 4429, reason: 'Too many initialisation requests' });
    gate.resolve(true);
    const after = await connect(url);
    after.send({ type: 'connection_init' });
    expect((await after.closed).code).toBe(4429);
  });

  it('closes with 4401 on subscribe before connection_ack: before connection_init and while onConnect decides', async () => {
    const gate = deferred<boolean>();
    const { url } = await start({ onConnect: () => gate.promise });
    const early = await open(url);
    early.send(subscribe('1', '{ hello }'));
    expect(await early.closed).toEqual({ code: 4401, reason: 'Unauthorized' });

    const deciding = await open(url);
    deciding.send({ type: 'connection_init' });
    deciding.send(subscribe('1', '{ hello }'));
    expect(await deciding.closed).toEqual({ code: 4401, reason: 'Unauthorized' });
    gate.resolve(true);
  });

  it('closes with 4400 on messages that are not the protocol, and on server messages sent by the client', async () => {
    const { url } = await start();
    const cases: unknown[] = [
      '{"type": ',
      '"connection_init"',
      { type: 'nonsense' },
      { type: 'subscribe', payload: { query: '{ hello }' } },
      { type: 'subscribe', id: '', payload: { query: '{ hello }' } },
      { type: 'subscribe', id: '1', payload: { query: 42 } },
      { type: 'complete' },
      { type: 'connection_init', payload: 'token' },
      { type: 'next', id: '1', payload: { data: {} } },
      { type: 'connection_ack' },
    ];
    for (const message of cases) {
      const peer = await connect(url);
      peer.send(message);
      const { code } = await peer.closed;
      expect({ message, code }).toEqual({ message, code: 4400 });
    }
  });

  it('closes with 4500 when a hook fails, logs it, and keeps serving other connections', async () => {
    const { url, logs } = await start({
      onSubscribe: () => {
        throw new Error('hook broke');
      },
    });
    const other = await connect(url);
    const peer = await connect(url);
    peer.send(subscribe('1', '{ hello }'));
    expect(await peer.closed).toEqual({ code: 4500, reason: 'Internal server error' });
    expect(
      logs.some(
        (line) => line.includes('websocket connection failed') && line.includes('hook broke') && line.includes('req_protocol_test'),
      ),
    ).toBe(true);
    await other.roundTrip();
  });

  it('closes every connection with 1001 on dispose', async () => {
    const server = await start();
    const peer = await connect(server.url);
    await server.ws.dispose();
    expect((await peer.closed).code).toBe(1001);
  });
});

describe('graphql-transport-ws: operations', () => {
  it('answers a query and a mutation with next, then complete', async () => {
    const { url } = await start();
    const peer = await connect(url);
    peer.send(subscribe('q', '{ hello }'));
    peer.send(subscribe('m', 'mutation ($by: Int!) { bump(by: $by) }', { by: 2 }));
    await peer.receive((message) => message.id === 'q' && message.type === 'complete');
    await peer.receive((message) => message.id === 'm' && message.type === 'complete');
    expect(peer.about('q')).toEqual([
      { id: 'q', type: 'next', payload: { data: { hello: 'world' } } },
      { id: 'q', type: 'complete' },
    ]);
    expect(peer.about('m')).toEqual([
      { id: 'm', type: 'next', payload: { data: { bump: 2 } } },
      { id: 'm', type: 'complete' },
    ]);
  });

  it('sends nothing for a query the client completed before its result was ready', async () => {
    const { url, world } = await start();
    const peer = await connect(url);
    peer.send(subscribe('s', '{ slow }'));
    await peer.roundTrip();
    peer.send({ id: 's', type: 'complete' });
    await peer.roundTrip();
    world.slow.resolve('late');
    // The id is free again: its answer comes, and nothing from the completed one came before it.
    world.slow = deferred<string>();
    world.slow.resolve('again');
    peer.send(subscribe('s', '{ slow }'));
    await peer.receive((message) => message.id === 's' && message.type === 'complete');
    expect(peer.about('s')).toEqual([
      { id: 's', type: 'next', payload: { data: { slow: 'again' } } },
      { id: 's', type: 'complete' },
    ]);
  });

  it('streams a subscription, ends it with complete when the stream ends, and frees the id', async () => {
    const { url, world } = await start();
    const peer = await connect(url);
    const started = world.nextStream();
    peer.send(subscribe('1', 'subscription { values }'));
    const stream = await started;
    stream.push(1);
    stream.push(Promise.resolve(2));
    stream.push(3);
    stream.end();
    await peer.receive((message) => message.id === '1' && message.type === 'complete');
    expect(peer.about('1')).toEqual([
      { id: '1', type: 'next', payload: { data: { values: 1 } } },
      { id: '1', type: 'next', payload: { data: { values: 2 } } },
      { id: '1', type: 'next', payload: { data: { values: 3 } } },
      { id: '1', type: 'complete' },
    ]);
    // Reusing a completed id is allowed.
    const again = world.nextStream();
    peer.send(subscribe('1', 'subscription { values }'));
    (await again).push(4);
    await peer.receive((message) => message.id === '1' && message.type === 'next' && JSON.stringify(message.payload).includes('4'));
  });

  it("stops the stream on the client's complete and sends nothing more for it; a complete for an unknown id is ignored", async () => {
    const { url, world } = await start();
    const peer = await connect(url);
    const started = world.nextStream();
    peer.send(subscribe('1', 'subscription { values }'));
    const stream = await started;
    stream.push(1);
    await peer.receive((message) => message.id === '1' && message.type === 'next');
    peer.send({ id: '1', type: 'complete' });
    peer.send({ id: 'unknown', type: 'complete' });
    await peer.roundTrip();
    expect(stream.closed).toBe(true);
    stream.push(2);
    await peer.roundTrip();
    expect(peer.about('1')).toEqual([{ id: '1', type: 'next', payload: { data: { values: 1 } } }]);
    expect(peer.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('keeps the other operations of a connection running when one of them ends, and counts them for onSubscribe', async () => {
    const counts: number[] = [];
    const { url, world } = await start((defaults) => ({
      onSubscribe: (connection, id, payload) => {
        counts.push(connection.operationCount);
        return defaults.onSubscribe(connection, id, payload);
      },
    }));
    const peer = await connect(url);
    const streams: PushStream<number>[] = [];
    for (const id of ['a', 'b', 'c']) {
      const started = world.nextStream();
      peer.send(subscribe(id, 'subscription { values }'));
      streams.push(await started);
    }
    const [a, b, c] = streams as [PushStream<number>, PushStream<number>, PushStream<number>];
    // The one in the middle ends, one way or the other.
    peer.send({ id: 'b', type: 'complete' });
    await peer.roundTrip();
    expect(b.closed).toBe(true);
    a.push(1);
    c.push(3);
    await peer.roundTrip();
    expect(peer.messages.filter((message) => message.type === 'next').map((message) => message.id)).toEqual(['a', 'c']);
    const again = world.nextStream();
    peer.send(subscribe('b', 'subscription { values }'));
    await again;
    c.end();
    await peer.receive((message) => message.id === 'c' && message.type === 'complete');
    peer.send(subscribe('d', '{ hello }'));
    await peer.receive((message) => message.id === 'd' && message.type === 'complete');
    expect(counts).toEqual([1, 2, 3, 3, 3]);
    // 'a' still runs: its id is taken.
    peer.send(subscribe('a', 'subscription { values }'));
    expect((await peer.closed).code).toBe(4409);
  });

  it('closes with 4409 on a subscribe whose id is running (a long id too), and stops the running one', async () => {
    const { url, world } = await start();
    for (const id of ['dup', 'x'.repeat(200)]) {
      const peer = await connect(url);
      const started = world.nextStream();
      peer.send(subscribe(id, 'subscription { values }'));
      const stream = await started;
      peer.send(subscribe(id, 'subscription { values }'));
      const { code, reason } = await peer.closed;
      expect(code).toBe(4409);
      expect(reason).toMatch(/^Subscriber (for dup )?already exists$/);
      await expect.poll(() => stream.closed).toBe(true);
    }
  });

  it('closes with 4409 on a subscribe whose id is still starting', async () => {
    const gate = deferred();
    const { url } = await start({
      onSubscribe: async (_connection, _id, payload) => {
        await gate.promise;
        return [new GraphQLError(`refused ${payload.query}`)];
      },
    });
    const peer = await connect(url);
    peer.send(subscribe('1', '{ hello }'));
    peer.send(subscribe('1', '{ hello }'));
    expect((await peer.closed).code).toBe(4409);
    gate.resolve();
  });

  it('answers errors from onSubscribe with one error message and no complete, and keeps the connection', async () => {
    const { url } = await start({
      onSubscribe: (connection: GraphQLWsConnection, _id: string, payload: { query: string }) => [
        new GraphQLError(`refused ${payload.query} with ${connection.operationCount} running`, { extensions: { code: 'NOPE' } }),
      ],
      onError: (_connection, errors) => errors.map((error) => ({ message: error.message, extensions: { code: 'FORMATTED' } })),
    });
    const peer = await connect(url);
    peer.send(subscribe('1', '{ hello }'));
    await peer.receive((message) => message.type === 'error');
    await peer.roundTrip();
    expect(peer.about('1')).toEqual([
      { id: '1', type: 'error', payload: [{ message: 'refused { hello } with 1 running', extensions: { code: 'FORMATTED' } }] },
    ]);
  });

  it('sends no error for a subscribe the client completed while onSubscribe was deciding', async () => {
    const gate = deferred();
    const { url } = await start({
      onSubscribe: async () => {
        await gate.promise;
        return [new GraphQLError('refused')];
      },
    });
    const peer = await connect(url);
    peer.send(subscribe('1', '{ hello }'));
    peer.send({ id: '1', type: 'complete' });
    await peer.roundTrip();
    gate.resolve();
    // Handled after the refusal: anything sent for '1' would have come before this pong.
    await peer.roundTrip();
    expect(peer.about('1')).toEqual([]);
  });

  it('answers a document without the named operation with an error message', async () => {
    const { url } = await start();
    const peer = await connect(url);
    peer.send({ id: '1', type: 'subscribe', payload: { query: '{ hello }', operationName: 'Missing' } });
    expect(await peer.receive((message) => message.type === 'error')).toEqual({
      id: '1',
      type: 'error',
      payload: [{ message: 'Unable to identify operation' }],
    });
  });

  it('ends a subscription whose stream fails with an error message and no complete', async () => {
    const { url, world } = await start();
    const peer = await connect(url);
    const started = world.nextStream();
    peer.send(subscribe('1', 'subscription { values }'));
    const stream = await started;
    stream.push(1);
    stream.fail(new Error('source broke'));
    await peer.receive((message) => message.type === 'error');
    await peer.roundTrip();
    expect(peer.about('1')).toEqual([
      { id: '1', type: 'next', payload: { data: { values: 1 } } },
      { id: '1', type: 'error', payload: [{ message: 'source broke' }] },
    ]);
  });

  it('formats next payloads with onNext', async () => {
    const { url, world } = await start({ onNext: (_connection, result) => ({ data: result.data ?? null, extensions: { seen: true } }) });
    const peer = await connect(url);
    const started = world.nextStream();
    peer.send(subscribe('1', 'subscription { values }'));
    (await started).push(5);
    expect(await peer.receive((message) => message.type === 'next')).toEqual({
      id: '1',
      type: 'next',
      payload: { data: { values: 5 }, extensions: { seen: true } },
    });
  });

  it('pulls from a subscription source that is not a PushStream', async () => {
    const { url } = await start();
    const peer = await connect(url);
    peer.send(subscribe('g', 'subscription { generated }'));
    await peer.receive((message) => message.type === 'complete');
    expect(peer.about('g')).toEqual([
      { id: 'g', type: 'next', payload: { data: { generated: 1 } } },
      { id: 'g', type: 'next', payload: { data: { generated: 2 } } },
      { id: 'g', type: 'complete' },
    ]);
  });

  it('stops every running stream when the socket closes, and one that starts after it had closed', async () => {
    const gate = deferred();
    const { url, world } = await start((defaults) => ({
      onSubscribe: async (connection, id, payload) => {
        if (id === 'late') await gate.promise;
        return defaults.onSubscribe(connection, id, payload);
      },
    }));
    const peer = await connect(url);
    const first = world.nextStream();
    peer.send(subscribe('a', 'subscription { values }'));
    const a = await first;
    peer.send(subscribe('late', 'subscription { values }'));
    await peer.roundTrip();
    peer.socket.terminate();
    await peer.closed;
    await expect.poll(() => a.closed).toBe(true);
    const late = world.nextStream();
    gate.resolve();
    const stream = await late;
    await expect.poll(() => stream.closed).toBe(true);
  });
});
