/** The signal listener's decisions: graceful stop, failure, deadline, second signal. */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { createShutdown } from '../src/shutdown.js';

function harness(stop: () => Promise<void>, deadlineMs = 60_000) {
  const lines: string[] = [];
  let exited!: (code: number) => void;
  const exit = new Promise<number>((resolve) => {
    exited = resolve;
  });
  const codes: number[] = [];
  const onSignal = createShutdown({
    stop,
    deadlineMs,
    logger: createLogger('debug', {}, (line) => lines.push(line)),
    exit: (code) => {
      codes.push(code);
      exited(code);
    },
  });
  return { onSignal, exit, codes, lines };
}

describe('shutdown on signals', () => {
  it('exits 0 once stopping has finished, and stops only once', async () => {
    let stops = 0;
    const { onSignal, exit } = harness(async () => {
      stops += 1;
    });
    onSignal('SIGTERM');
    expect(await exit).toBe(0);
    expect(stops).toBe(1);
  });

  it('exits 1 and logs why when stopping fails', async () => {
    const { onSignal, exit, lines } = harness(() => Promise.reject(new Error('disk went away')));
    onSignal('SIGTERM');
    expect(await exit).toBe(1);
    expect(lines.some((line) => line.includes('shutdown failed') && line.includes('disk went away'))).toBe(true);
  });

  it('exits 1 when stopping outlasts its deadline', async () => {
    const { onSignal, exit, lines } = harness(() => new Promise<void>(() => {}), 1);
    onSignal('SIGINT');
    expect(await exit).toBe(1);
    expect(lines.some((line) => line.includes('did not finish in time'))).toBe(true);
  });

  it('exits at once on a second signal, with the shell code of that signal', async () => {
    const { onSignal, codes } = harness(() => new Promise<void>(() => {}));
    onSignal('SIGINT');
    expect(codes).toEqual([]);
    onSignal('SIGINT');
    expect(codes).toEqual([130]);
    onSignal('SIGTERM');
    expect(codes).toEqual([130, 143]);
  });
});
