/** The real entry point, as `npm start` runs it: start, serve, stop on SIGTERM; refuse bad config. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { watchLines } from './helpers/processes.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function startMain(env: Record<string, string>) {
  return spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
}

describe('conveyor main', () => {
  it('starts on the embedded store, serves /readyz, and exits 0 on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'conveyor-main-'));
    dirs.push(dataDir);
    const child = startMain({ CONVEYOR_PORT: '0', CONVEYOR_DATA_DIR: dataDir });
    let stderr = '';
    const listening = new Promise<string>((resolve) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const match = /"url":"(http:[^"]+)"/.exec(stderr);
        if (match?.[1]) resolve(match[1]);
      });
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const url = await listening;
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('"msg":"shutting down"');
  });

  it('refuses to start on invalid configuration, naming the key, without a stack trace', async () => {
    const result = await watchLines(startMain({ CONVEYOR_STORE: 'postgres' }), () => {});
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('store.driver (from CONVEYOR_STORE)');
    expect(result.stderr).not.toContain('    at ');
  });

  it('refuses the mongodb driver without a URI, saying what to set', async () => {
    const result = await watchLines(startMain({ CONVEYOR_STORE: 'mongodb', MONGODB_URI: '' }), () => {});
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('set MONGODB_URI');
  });
});
