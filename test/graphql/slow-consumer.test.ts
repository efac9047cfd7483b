/**
 * A subscriber that stops reading: the server holds its messages once the socket's send
 * buffer is full, replaces a held job state by the newer one, and sends the job's final
 * state when the reader comes back.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { z } from 'zod';
import { defineHandler } from '../../src/handlers/registry.js';
import { startApi, subscribe, type TestApi } from '../helpers/api.js';

const UPDATES = 600;
const chatty = defineHandler({
  type: 'chatty',
  description: 'Reports progress many times with a large message, then completes.',
  parameters: z.strictObject({}),
  async run(_p, ctx) {
    const filler = 'x'.repeat(50_000);
    for (let i = 1; i <= UPDATES; i++) {
      ctx.progress({ percent: Math.floor((i / UPDATES) * 100), step: String(i), message: filler });
      // Long enough for each update to be written on its own (the worker merges updates that wait).
      await delay(2);
    }
    return { done: true };
  },
});

let api: TestApi;
afterEach(async () => {
  await api?.stop();
});

interface Next {
  status: string;
  progress: { percent: number; step: string } | null;
}

describe('slow consumers', () => {
  it("hold and replace a paused reader's job states, and deliver the final one when it reads again", async () => {
    api = await startApi({ handlers: [chatty] });
    const { body } = await api.gql<{ submitBatch: { batch: { id: string; jobs: { edges: { node: { id: string } }[] } } } }>(
      'mutation { submitBatch(input: { name: "slow", active: false, jobs: [{ type: "chatty", parameters: {} }] }) { batch { id jobs(first: 1) { edges { node { id } } } } } }',
    );
    const batchId = body.data?.submitBatch.batch.id as string;
    const jobId = body.data?.submitBatch.batch.jobs.edges[0]?.node.id as string;
    expect(jobId).toMatch(/^job_/);

    const socket = new WebSocket(api.wsUrl, 'graphql-transport-ws', { headers: { 'x-user-id': 'alice' } });
    const nexts: Next[] = [];
    let snapshot!: () => void;
    const subscribed = new Promise<void>((resolve) => {
      snapshot = resolve;
    });
    let finished!: () => void;
    const completed = new Promise<void>((resolve) => {
      finished = resolve;
    });
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { type: string; payload?: { data?: { jobUpdated: Next } } };
      if (message.type === 'connection_ack') {
        socket.send(
          JSON.stringify({
            id: '1',
            type: 'subscribe',
            payload: {
              query: 'subscription ($id: ID!) { jobUpdated(id: $id) { status progress { percent step message } } }',
              variables: { id: jobId },
            },
          }),
        );
      } else if (message.type === 'next' && message.payload?.data !== undefined) {
        if (nexts.length === 0) snapshot();
        nexts.push(message.payload.data.jobUpdated);
        if (message.payload.data.jobUpdated.status === 'COMPLETED') finished();
      }
    });
    await new Promise<void>((resolve) => socket.once('open', () => resolve()));
    socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    await subscribed;

    // A reader that keeps up sees every state the store recorded.
    const everything = subscribe<Next>(
      api.client(),
      'subscription ($id: ID!) { jobUpdated(id: $id) { status progress { percent step } } }',
      { id: jobId },
      (values) => values.at(-1)?.status === 'COMPLETED',
      60_000,
    );
    await expect.poll(() => everything.values.length).toBeGreaterThan(0);

    // The other stops reading; the job sends its thousand large updates meanwhile.
    const raw = (socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    raw.pause();
    await api.gql('mutation ($id: ID!) { setBatchActive(id: $id, active: true) { id } }', { id: batchId });
    await expect
      .poll(
        async () =>
          (await api.gql<{ job: { status: string } }>('query ($id: ID!) { job(id: $id) { status } }', { id: jobId })).body.data?.job.status,
        {
          timeout: 30_000,
        },
      )
      .toBe('COMPLETED');
    raw.resume();
    await completed;
    socket.close();

    // Every state arrived in order, the last one is the job's end, and states were replaced while held.
    expect(nexts.at(-1)?.status).toBe('COMPLETED');
    const steps = nexts.flatMap((next) => (next.progress === null || next.status !== 'PROCESSING' ? [] : [Number(next.progress.step)]));
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(new Set(steps).size).toBe(steps.length);
    const all = await everything.finished;
    expect(all.length).toBeGreaterThan(100);
    expect(nexts.length).toBeLessThan(all.length / 2);
  }, 90_000);
});
