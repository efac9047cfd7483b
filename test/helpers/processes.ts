/** Starting TypeScript child processes for multi-process tests (through tsx). */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export function spawnTs(script: string, args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Calls `onLine` for each stdout line; resolves with the exit code and collected stderr. */
export function watchLines(
  child: ChildProcessWithoutNullStreams,
  onLine: (line: string) => void,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  createInterface({ input: child.stdout }).on('line', onLine);
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
}

/**
 * `promise`, or a failure carrying the child's stderr as soon as the child exits first,
 * so that a test whose child died fails at once instead of at its timeout.
 */
export function whileRunning<T>(
  promise: Promise<T>,
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>,
): Promise<T> {
  return Promise.race([
    promise,
    exited.then((result) => {
      throw new Error(`the child process exited first (code ${result.code}, signal ${result.signal}); stderr:\n${result.stderr}`);
    }),
  ]);
}
