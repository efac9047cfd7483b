/** The `conveyor` command as users run it: a child process against a real server. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../helpers/api.js';
import { unzip } from '../helpers/zip.js';

let api: TestApi;
const dir = mkdtempSync(join(tmpdir(), 'conveyor-cli-'));
afterEach(async () => {
  await api?.stop();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], {
      env: { ...process.env, CONVEYOR_URL: api?.url ?? '', CONVEYOR_USER: 'alice', CONVEYOR_DATA_DIR: join(dir, 'data'), ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('conveyor CLI', () => {
  it('submit --file --watch of a 5-job batch shows progress to 100 % and exits 0; download saves the ZIP', async () => {
    api = await startApi();
    const file = join(dir, 'batch.yaml');
    writeFileSync(
      file,
      `name: five\njobs:\n${[1, 2, 3, 4, 5].map((n) => `  - type: files\n    parameters: { title: "talk ${n}" }\n`).join('')}`,
    );
    const result = await cli(['submit', '--file', file, '--watch']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('100% five COMPLETED 5/5');
    expect(result.stdout.trim().endsWith('COMPLETED')).toBe(true);
    const batchId = /^submitted batch (bat_[0-9A-Za-z]+) \(5 jobs\)$/m.exec(result.stdout)?.[1];
    expect(batchId, result.stdout).toBeDefined();
    expect((await api.conveyor.client.getBatch(batchId as string))?.name).toBe('five');
    const target = join(dir, 'five.zip');
    const download = await cli(['download', batchId as string, '-o', target]);
    expect(download.code).toBe(0);
    const zip = await unzip(readFileSync(target));
    expect([...zip.keys()].filter((k) => k.endsWith('report.md'))).toHaveLength(5);
  }, 60_000);

  it('exits 1 when the job fails, 3 when it is cancelled, and prints JSON that parses with --json', async () => {
    api = await startApi();
    api.gates.open('fail');
    const failed = await cli(['submit', 'gate', '--param', 'key=fail', '--param', 'fail=true', '--watch']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('GATE_FAILED');

    const submitted = await cli(['submit', 'gate', '--param', 'key=never', '--json']);
    expect(submitted.code).toBe(0);
    const job = JSON.parse(submitted.stdout) as { id: string; type: string; status: string };
    expect(job).toMatchObject({ type: 'gate', status: 'PENDING' });
    await expect.poll(async () => (await api.conveyor.client.getJob(job.id))?.status).toBe('PROCESSING');
    const watching = cli(['watch', job.id, '--json']);
    const cancelled = await cli(['cancel', job.id, '--json']);
    expect(cancelled.code).toBe(0);
    expect(JSON.parse(cancelled.stdout)).toMatchObject({ id: job.id });
    const watched = await watching;
    expect(watched.code).toBe(3);
    const lines = watched.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.at(-1)).toEqual({ done: true, status: 'CANCELLED' });

    const status = await cli(['status', job.id, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ id: job.id, status: 'CANCELLED' });
    expect(status.code).toBe(3);
  }, 60_000);

  it('watching a batch that ends PARTIAL exits 1; restart runs a cancelled job again', async () => {
    api = await startApi();
    api.gates.open('ok');
    api.gates.open('bad');
    const file = join(dir, 'partial.json');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'mixed',
        jobs: [
          { type: 'gate', parameters: { key: 'ok' } },
          { type: 'gate', parameters: { key: 'bad', fail: true } },
        ],
      }),
    );
    const partial = await cli(['submit', '--file', file, '--watch']);
    expect(partial.stderr).toBe('');
    expect(partial.stdout.trim().endsWith('PARTIAL')).toBe(true);
    expect(partial.code).toBe(1);

    const submitted = await cli(['submit', 'gate', '--param', 'key=later', '--json']);
    const job = JSON.parse(submitted.stdout) as { id: string };
    expect((await cli(['cancel', job.id])).code).toBe(0);
    await expect.poll(async () => (await api.conveyor.client.getJob(job.id))?.status).toBe('CANCELLED');
    const restarted = await cli(['restart', job.id, '--json']);
    expect(restarted.code).toBe(0);
    expect(JSON.parse(restarted.stdout)).toEqual({ id: job.id, status: 'PENDING' });
    api.gates.open('later');
    const watched = await cli(['watch', job.id]);
    expect(watched.code).toBe(0);
    expect(watched.stdout.trim().endsWith('COMPLETED')).toBe(true);
    expect((await api.conveyor.client.getJob(job.id))?.attempts).toBe(1);
  }, 60_000);

  it('prints the usage with --help (and help, and no command) and exits 0', async () => {
    for (const args of [['--help'], ['help'], [], ['submit', '--help']]) {
      const result = await cli(args, { CONVEYOR_URL: 'http://127.0.0.1:9' });
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stderr, args.join(' ')).toContain('usage: conveyor <command>');
      expect(result.stderr).toContain('exit codes: 0 completed, 1 failed, 2 usage error, 3 cancelled, 4 server error');
    }
  }, 60_000);

  it('answers a bad flag, a missing argument and an unknown command with usage and exit code 2; an unreachable server with 4', async () => {
    for (const args of [['submit', 'echo', '--bogus'], ['status'], ['frobnicate'], ['submit', 'echo', '--param', 'novalue']]) {
      const result = await cli(args, { CONVEYOR_URL: 'http://127.0.0.1:9' });
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toContain('usage: conveyor <command>');
    }
    const unreachable = await cli(['status', 'job_x'], { CONVEYOR_URL: 'http://127.0.0.1:9' });
    expect(unreachable.code).toBe(4);
    expect(unreachable.stderr).toContain('cannot reach http://127.0.0.1:9');
  }, 60_000);

  it('demo --exit runs a batch of real session jobs against the local sample site and exits 0', async () => {
    const result = await cli(['demo', '--port', '0', '--exit'], { CONVEYOR_DATA_DIR: join(dir, 'demo-data') });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('DemoConf 2026 · day 1 COMPLETED 4/4');
    expect(result.stdout).toMatch(/dashboard {4}http:\/\/127\.0\.0\.1:\d+\//);
    // A queue of its own, so a service running beside it neither takes nor shows its jobs.
    expect(existsSync(join(dir, 'demo-data', 'demo', 'conveyor.db'))).toBe(true);
    expect(existsSync(join(dir, 'demo-data', 'conveyor.db'))).toBe(false);
  }, 90_000);
});
