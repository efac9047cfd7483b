/**
 * Runs one benchmark function in a fresh Node process, so that memory figures carry
 * nothing from the benchmarks before it: `node isolated.js <module> <export> <json args>`.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './store-bench.js';

if (process.send !== undefined && process.argv[2] !== undefined) {
  const [module, name, args] = process.argv.slice(2) as [string, string, string];
  const exported = (await import(new URL(module, import.meta.url).href)) as Record<string, (...a: unknown[]) => Promise<BenchResult>>;
  const result = await (exported[name] as (...a: unknown[]) => Promise<BenchResult>)(...(JSON.parse(args) as unknown[]));
  process.send(result, () => process.exit(0));
}

/** `module` relative to this folder (e.g. './worker-bench.js'). */
export function isolated(module: string, name: string, ...args: unknown[]): Promise<BenchResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [module, name, JSON.stringify(args)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.once('message', (result) => resolve(result as BenchResult));
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`benchmark ${name} exited with ${code}`));
    });
  });
}
