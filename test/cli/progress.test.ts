/**
 * CLI progress: in place on a terminal (cli-progress multi-bars, checked through a
 * stream that says it is a TTY and through a real pseudo-terminal), plain appended
 * lines otherwise; an older state of a job never drawn after a newer one.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createProgress, isNewer } from '../../src/cli/progress.js';
import { startApi, type TestApi } from '../helpers/api.js';

const job = (status: string, percent: number, attempts = 1) => ({
  id: 'job_1',
  type: 'pdf',
  status,
  attempts,
  progress: { percent, step: null, message: null },
  error: null,
});

const batch = (done: number, status = 'PROCESSING') => ({
  id: 'bat_1',
  name: 'talks',
  status,
  counts: { total: 2, pending: 2 - done, processing: 0, completed: done, failed: 0, cancelled: 0 },
});

function stream(tty: boolean) {
  const out = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
  if (tty) {
    out.isTTY = true;
    out.columns = 120;
  }
  let text = '';
  out.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  return { out: out as unknown as NodeJS.WriteStream, text: () => text };
}

/** What a terminal shows in the end: escape sequences dropped, each line's last redraw. */
function screenLines(raw: string): string[] {
  const sequences = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');
  return raw
    .replace(sequences, '')
    .split(/\r?\n/)
    .map((line) => line.split('\r').at(-1) ?? '');
}

describe('which state of a job is newer', () => {
  it('never goes back within an attempt, and a new attempt starts over', () => {
    expect(isNewer(job('PROCESSING', 75), job('PROCESSING', 50))).toBe(false);
    expect(isNewer(job('COMPLETED', 100), job('PROCESSING', 75))).toBe(false);
    expect(isNewer(job('PROCESSING', 75), job('COMPLETED', 100))).toBe(true);
    expect(isNewer(job('FAILED', 40), job('PROCESSING', 0, 2))).toBe(true);
    expect(isNewer(job('PROCESSING', 10, 2), job('FAILED', 40, 1))).toBe(false);
  });
});

describe('progress output', () => {
  it('without a terminal: one appended line per change, and a stale state is not printed after the end', () => {
    const { out, text } = stream(false);
    const progress = createProgress(out, false);
    progress.job(job('PROCESSING', 50));
    progress.job(job('COMPLETED', 100));
    progress.job(job('PROCESSING', 75));
    expect(progress.finish('COMPLETED')).toBe('COMPLETED');
    const lines = text().trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain(' 50% job_1 pdf PROCESSING');
    expect(lines[1]).toContain('100% job_1 pdf COMPLETED');
    expect(lines[2]).toBe('COMPLETED');
    expect(text()).not.toContain('\x1b[');
  });

  it('on a terminal: bars redrawn in place, ended jobs as lines above them, the status below the final frame', () => {
    const { out, text } = stream(true);
    const progress = createProgress(out, false);
    progress.batch(batch(0));
    progress.job({ ...job('PROCESSING', 75), id: 'job_a' });
    progress.job({ ...job('COMPLETED', 100), id: 'job_a' });
    progress.job({ ...job('PROCESSING', 75), id: 'job_a' });
    progress.batch(batch(1));
    progress.job({ ...job('COMPLETED', 100), id: 'job_b' });
    progress.batch(batch(2, 'COMPLETED'));
    progress.finish('COMPLETED');
    expect(text()).toContain('\x1b[');
    const lines = screenLines(text()).filter((line) => line.trim() !== '');
    expect(lines.at(-1)).toBe('COMPLETED');
    expect(lines.at(-2)).toContain('100% talks COMPLETED 2/2');
    // Each job ended once: one permanent line each, and no older state after it.
    expect(lines.filter((line) => line.includes('job_a pdf COMPLETED'))).toHaveLength(1);
    const ended = lines.findIndex((line) => line.includes('job_a pdf COMPLETED'));
    expect(lines.slice(ended).some((line) => line.includes('75%'))).toBe(false);
  });

  it('--json: JSON lines, also on a terminal', () => {
    const { out, text } = stream(true);
    const progress = createProgress(out, true);
    progress.job(job('COMPLETED', 100));
    progress.finish('COMPLETED');
    expect(
      text()
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as unknown),
    ).toEqual([{ job: job('COMPLETED', 100) }, { done: true, status: 'COMPLETED' }]);
  });
});

const hasScript = spawnSync('script', ['--version']).status === 0;

describe.skipIf(!hasScript)('conveyor watch in a pseudo-terminal (util-linux `script`)', () => {
  let api: TestApi;
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-progress-'));
  afterEach(async () => {
    await api?.stop();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('draws bars in place and ends with the batch at 100 % and its status on the last line', async () => {
    api = await startApi();
    const file = join(dir, 'batch.yaml');
    writeFileSync(
      file,
      `name: three\njobs:\n${[1, 2, 3].map((n) => `  - type: files\n    parameters: { title: "talk ${n}" }\n`).join('')}`,
    );
    const command = `${process.execPath} --import tsx src/cli/index.ts submit --file ${file} --watch`;
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      env: { ...process.env, CONVEYOR_URL: api.url, CONVEYOR_USER: 'alice', COLUMNS: '120' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let raw = '';
    child.stdout.on('data', (chunk: Buffer) => {
      raw += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(raw).toContain('\x1b[');
    const lines = screenLines(raw).filter((line) => line.trim() !== '');
    expect(lines.at(-1)).toBe('COMPLETED');
    expect(lines.at(-2)).toContain('100% three COMPLETED 3/3');
    expect(lines.filter((line) => / job_\S+ files COMPLETED/.test(line))).toHaveLength(3);
  }, 60_000);
});
