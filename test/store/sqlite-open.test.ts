/**
 * Start-up against a data folder SQLite cannot write: the service must say so in one
 * line (no SqliteError stack trace) and leave no empty database behind. And a
 * bracketed IPv6 `server.host` is listened on.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../helpers/api.js';

const dirs: string[] = [];
let api: TestApi | null = null;
afterEach(async () => {
  await api?.stop();
  api = null;
  for (const dir of dirs.splice(0)) {
    chmodSync(dir, 0o755);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Runs the entry point until it exits; as `nobody` when the tests run as root (root may write anywhere). */
function serve(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const asRoot = process.getuid?.() === 0;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, NODE_ENV: 'production', CONVEYOR_PORT: '0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

describe('opening the SQLite store', () => {
  it('stops with one clear line and no empty database file when the data folder is read-only', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'conveyor-ro-'));
    dirs.push(dataDir);
    mkdirSync(join(dataDir, 'results'));
    chmodSync(dataDir, 0o555);
    const { code, stderr } = await serve({ CONVEYOR_DATA_DIR: dataDir });
    expect(code).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^conveyor: cannot open the SQLite database .*conveyor\.db: /);
    expect(lines[0]).toContain('writable');
    expect(stderr).not.toMatch(/SqliteError|\n\s+at /);
    expect(readdirSync(dataDir)).toEqual(['results']);
    expect(existsSync(join(dataDir, 'conveyor.db'))).toBe(false);
  }, 30_000);

  it('stops with one clear line when dataDir is a file, not a folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-file-'));
    dirs.push(dir);
    const file = join(dir, 'data');
    writeFileSync(file, 'not a folder');
    chmodSync(dir, 0o755);
    const { code, stderr } = await serve({ CONVEYOR_DATA_DIR: file });
    expect(code).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(`conveyor: dataDir ${file} is a file, not a folder: point dataDir at a folder (it is created when missing)`);
    expect(readFileSync(file, 'utf8')).toBe('not a folder');
    // A database path inside a file: one line too, and the clean-up leaves the file alone.
    const dataDir = join(dir, 'ok');
    mkdirSync(dataDir);
    const inside = await serve({ CONVEYOR_DATA_DIR: dataDir, CONVEYOR_STORE__SQLITE__PATH: join(file, 'conveyor.db') });
    expect(inside.code).toBe(1);
    expect(inside.stderr.trim().split('\n')).toHaveLength(1);
    expect(inside.stderr).toMatch(/^conveyor: cannot open the SQLite database .*data\/conveyor\.db: /);
    expect(inside.stderr).not.toMatch(/\n\s+at /);
    expect(readFileSync(file, 'utf8')).toBe('not a folder');
  }, 30_000);

  it('listens on server.host "[::1]" (IPv6 loopback, written as in a URL)', async () => {
    api = await startApi({ overrides: { 'server.host': '[::1]' } });
    expect(api.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    const { status, body } = await api.gql('{ viewer { userId } }');
    expect(status).toBe(200);
    expect(body.data).toEqual({ viewer: { userId: 'alice' } });
  });
});
