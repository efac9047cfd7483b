/**
 * The built service as users run it: `node dist/src/main.js` with NODE_ENV=production
 * (libraries behave differently under vitest's NODE_ENV=test: Apollo Server installs
 * signal handlers only outside it). Signals for each role, idle and busy; a second
 * Ctrl-C; a signal during start-up; bad command lines; log format by terminal.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createClient } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Role } from '../src/conveyor.js';
import { createSqliteStore } from '../src/store/sqlite/sqlite-store.js';

const HANDLERS = 'test/fixtures/handlers/signal-handlers.mjs';

beforeAll(() => {
  // The suite runs what `npm start` runs: the compiled entry point.
  // Type errors are the typecheck's business (`npm run typecheck`); tsc still emits then
  // (exit status 2). Status 1 means nothing was emitted.
  const build = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { encoding: 'utf8' });
  if (build.status !== 0 && build.status !== 2) throw new Error(`the build failed:\n${build.stdout}${build.stderr}`);
}, 180_000);

const dirs: string[] = [];
const children: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

interface Service {
  child: ChildProcessWithoutNullStreams;
  dataDir: string;
  /** Every stderr (log) line so far. */
  logs: string[];
  /** Resolves with the first stdout line matching, or rejects when the process exits first. */
  stdoutLine(pattern: RegExp): Promise<string>;
  /** Resolves with the first log line matching, or rejects when the process exits first. */
  logLine(pattern: RegExp): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startService(args: string[], env: Record<string, string> = {}, dataDir = tempDir()): Service {
  const child = spawn(process.execPath, ['dist/src/main.js', ...args], {
    env: {
      ...process.env,
      NODE_ENV: 'production',
      CONVEYOR_PORT: '0',
      CONVEYOR_DATA_DIR: dataDir,
      CONVEYOR_LOG__FORMAT: 'json',
      CONVEYOR_HANDLERS__MODULES: HANDLERS,
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  const logs: string[] = [];
  const stdout: string[] = [];
  const waiters: { lines: string[]; pattern: RegExp; resolve: (line: string) => void; reject: (error: Error) => void }[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      for (const waiter of waiters.splice(0)) {
        waiter.reject(new Error(`the service exited (${code ?? signal}) before printing ${waiter.pattern}:\n${logs.join('\n')}`));
      }
      resolve({ code, signal });
    });
  });
  const feed = (lines: string[]) => (line: string) => {
    lines.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.lines === lines && waiter.pattern.test(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  };
  createInterface({ input: child.stderr }).on('line', feed(logs));
  createInterface({ input: child.stdout }).on('line', feed(stdout));
  const wait = (lines: string[]) => (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const seen = lines.find((line) => pattern.test(line));
      if (seen !== undefined) resolve(seen);
      else if (child.exitCode !== null || child.signalCode !== null) reject(new Error(`the service has exited:\n${logs.join('\n')}`));
      else waiters.push({ lines, pattern, resolve, reject });
    });
  return { child, dataDir, logs, stdoutLine: wait(stdout), logLine: wait(logs), exited };
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-entry-'));
  dirs.push(dir);
  return dir;
}

async function listening(service: Service): Promise<string> {
  const line = await service.logLine(/"msg":"conveyor listening"/);
  return (JSON.parse(line) as { url: string }).url;
}

async function createHoldJob(dataDir: string, ms: number): Promise<string> {
  const store = createSqliteStore({ path: join(dataDir, 'conveyor.db') });
  try {
    const [created] = await store.createJobs([{ type: 'hold', parameters: { ms }, maxAttempts: 3, ownerId: 'alice' }]);
    return created?.value.id as string;
  } finally {
    await store.close();
  }
}

async function readJob(dataDir: string, id: string) {
  const store = createSqliteStore({ path: join(dataDir, 'conveyor.db') });
  try {
    const [job] = await store.getJobs([id]);
    return job;
  } finally {
    await store.close();
  }
}

const ROLES: Role[] = ['all', 'api', 'worker'];
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

describe('signals stop the built service', () => {
  for (const role of ROLES) {
    for (const signal of SIGNALS) {
      it(`idle, role ${role}: ${signal} exits 0`, async () => {
        const service = startService(['--role', role]);
        const url = await listening(service);
        expect((await fetch(`${url}/readyz`)).status).toBe(200);
        service.child.kill(signal);
        expect(await service.exited).toEqual({ code: 0, signal: null });
        expect(service.logs.some((line) => line.includes('"msg":"stopped"'))).toBe(true);
        // A clean start and stop prints no warning (Apollo's option warnings among them).
        expect(service.logs.filter((line) => /"level":"(warn|error)"/.test(line))).toEqual([]);
      });
    }
  }

  for (const role of ['all', 'worker'] as const) {
    for (const signal of SIGNALS) {
      it(`busy, role ${role}: ${signal} hands a job still running after the grace period back to the queue`, async () => {
        const dataDir = tempDir();
        const id = await createHoldJob(dataDir, 600_000);
        const service = startService(['--role', role], { CONVEYOR_WORKER__SHUTDOWN_GRACE_MS: '200' }, dataDir);
        await service.stdoutLine(new RegExp(`started ${id}`));
        service.child.kill(signal);
        expect(await service.exited).toEqual({ code: 0, signal: null });
        const job = await readJob(dataDir, id);
        // Released, not failed: pending again with the attempt refunded.
        expect(job).toMatchObject({ status: 'PENDING', attempts: 0 });
      });
    }

    it(`busy, role ${role}: a job that ends within the grace period completes before the process exits`, async () => {
      const dataDir = tempDir();
      const id = await createHoldJob(dataDir, 300);
      const service = startService(['--role', role], { CONVEYOR_WORKER__SHUTDOWN_GRACE_MS: '60000' }, dataDir);
      await service.stdoutLine(new RegExp(`started ${id}`));
      service.child.kill('SIGTERM');
      expect(await service.exited).toEqual({ code: 0, signal: null });
      expect(await readJob(dataDir, id)).toMatchObject({ status: 'COMPLETED', attempts: 1 });
    });
  }

  it('busy, role api: open websockets are closed (1001) and the process exits 0', async () => {
    const service = startService(['--role', 'api']);
    const url = await listening(service);
    let connected!: () => void;
    const open = new Promise<void>((resolve) => {
      connected = resolve;
    });
    const closed = new Promise<number>((resolve) => {
      const client = createClient({
        url: `${url.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: false,
        on: { connected, closed: (event) => resolve((event as { code: number }).code) },
      });
      client.subscribe({ query: 'subscription { jobEvents { cursor } }' }, { next() {}, error() {}, complete() {} });
    });
    await open;
    service.child.kill('SIGINT');
    expect(await closed).toBe(1001);
    expect(await service.exited).toEqual({ code: 0, signal: null });
  });

  it('a second Ctrl-C exits at once (130) while running jobs are still in their grace period', async () => {
    const dataDir = tempDir();
    const id = await createHoldJob(dataDir, 600_000);
    const service = startService(['--role', 'all'], { CONVEYOR_WORKER__SHUTDOWN_GRACE_MS: '600000' }, dataDir);
    await service.stdoutLine(new RegExp(`started ${id}`));
    service.child.kill('SIGINT');
    await service.logLine(/"msg":"waiting for running jobs"/);
    service.child.kill('SIGINT');
    expect(await service.exited).toEqual({ code: 130, signal: null });
    expect(service.logs.some((line) => line.includes('second signal'))).toBe(true);
  });

  it('a signal during start-up stops gracefully once start-up has finished, without serving', async () => {
    const service = startService(['--role', 'all'], { TEST_HOLD_STARTUP: '1' });
    await service.stdoutLine(/loading handlers/);
    service.child.kill('SIGTERM');
    await service.logLine(/"msg":"shutting down"/);
    service.child.stdin.write('go on\n');
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(service.logs.some((line) => line.includes('conveyor listening'))).toBe(false);
  });
});

describe('bad command lines', () => {
  it('refuses an unknown --role, naming the allowed ones, with exit code 1 and no stack trace', async () => {
    const service = startService(['--role', 'banana']);
    expect(await service.exited).toEqual({ code: 1, signal: null });
    expect(service.logs.join('\n')).toContain('--role must be one of all, api, worker, not "banana"');
    expect(service.logs.join('\n')).not.toContain('    at ');
  });

  it('refuses --config without a value and a --config file that does not exist', async () => {
    const missingValue = startService(['--config']);
    expect(await missingValue.exited).toEqual({ code: 1, signal: null });
    expect(missingValue.logs.join('\n')).toContain('--config needs a value');
    const missingFile = startService(['--config', '/nonexistent/conveyor.yaml']);
    expect(await missingFile.exited).toEqual({ code: 1, signal: null });
    expect(missingFile.logs.join('\n')).toContain('/nonexistent/conveyor.yaml');
    expect(missingFile.logs.join('\n')).not.toContain('    at ');
  });
});

const hasScript = spawnSync('script', ['--version']).status === 0;

describe('log format', () => {
  it('prints JSON lines when stderr is not a terminal', async () => {
    const service = startService(['--role', 'all'], { CONVEYOR_LOG__FORMAT: 'auto' });
    const line = await service.logLine(/conveyor listening/);
    expect(JSON.parse(line)).toMatchObject({ level: 'info', msg: 'conveyor listening' });
    service.child.kill('SIGTERM');
    expect((await service.exited).code).toBe(0);
  });

  it.skipIf(!hasScript)(
    'prints readable lines and the start banner on a terminal (util-linux `script` for a pseudo-terminal)',
    async () => {
      const dataDir = tempDir();
      // `script` gives the service a terminal; a shell line stops it once it listens.
      const command = `node dist/src/main.js & pid=$!; while ! grep -q 'Conveyor is running' ${dataDir}/out 2>/dev/null; do sleep 0.1; done; kill -INT $pid; wait $pid; echo "exit=$?"`;
      const child = spawn('script', ['-qfec', `sh -c '${command.replaceAll("'", "'\\''")}'`, `${dataDir}/out`], {
        env: { ...process.env, NODE_ENV: 'production', CONVEYOR_PORT: '0', CONVEYOR_DATA_DIR: dataDir },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      children.push(child as ChildProcessWithoutNullStreams);
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code).toBe(0);
      expect(output).toContain('exit=0');
      expect(output).toMatch(/INFO.*conveyor listening/);
      expect(output).not.toContain('"msg":"conveyor listening"');
      expect(output).toMatch(/dashboard +http:\/\/127\.0\.0\.1:\d+\//);
      expect(output).toMatch(/GraphQL +http:\/\/127\.0\.0\.1:\d+\/graphql/);
      expect(output).toMatch(/metrics +http:\/\/127\.0\.0\.1:\d+\/metrics/);
      expect(output).toContain('press Ctrl-C again to exit at once');
    },
  );
});
