/**
 * Live progress in the terminal: one line per running job and a summary bar for a
 * batch, redrawn in place on a TTY; plain lines (one per change) otherwise, or JSON
 * lines with `--json`.
 */
interface JobLine {
  id: string;
  type: string;
  status: string;
  progress: { percent: number; step: string | null; message: string | null } | null;
  error: { code: string; message: string } | null;
}

interface BatchLine {
  id: string;
  name: string;
  status: string;
  counts: { total: number; pending: number; processing: number; completed: number; failed: number; cancelled: number };
}

const WIDTH = 24;

export function bar(percent: number): string {
  const filled = Math.round((Math.max(0, Math.min(100, percent)) / 100) * WIDTH);
  return `[${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}] ${String(Math.round(percent)).padStart(3)}%`;
}

export function createProgress(out: NodeJS.WriteStream, json: boolean) {
  const tty = out.isTTY === true && !json;
  const jobs = new Map<string, JobLine>();
  let batch: BatchLine | null = null;
  let drawn = 0;
  const lastText = new Map<string, string>();
  let closed = false;

  const jobText = (job: JobLine) => {
    const percent = job.status === 'COMPLETED' ? 100 : (job.progress?.percent ?? 0);
    const step =
      job.error !== null
        ? `${job.error.code}: ${job.error.message}`
        : [job.progress?.step, job.progress?.message].filter(Boolean).join(' · ');
    return `${bar(percent)} ${job.id} ${job.type} ${job.status}${step === '' ? '' : ` ${step}`}`;
  };
  const batchText = (b: BatchLine) => {
    const done = b.counts.completed + b.counts.failed + b.counts.cancelled;
    const percent = b.counts.total === 0 ? 100 : (done / b.counts.total) * 100;
    return `${bar(percent)} ${b.name} ${b.status} ${done}/${b.counts.total} (${b.counts.completed} completed, ${b.counts.failed} failed, ${b.counts.cancelled} cancelled)`;
  };

  function draw(): void {
    if (!tty) return;
    const lines = [
      ...[...jobs.values()].filter((j) => j.status === 'PROCESSING').map(jobText),
      ...(batch === null ? [] : [batchText(batch)]),
    ];
    if (batch === null && lines.length === 0) lines.push(...[...jobs.values()].map(jobText));
    const columns = out.columns ?? 120;
    out.write(`${drawn > 0 ? `\x1b[${drawn}A` : ''}${lines.map((l) => `\x1b[2K${l.slice(0, columns - 1)}`).join('\n')}\n`);
    drawn = lines.length;
  }

  function emit(key: string, text: string, value: unknown): void {
    if (tty) {
      draw();
      return;
    }
    if (lastText.get(key) === text) return;
    lastText.set(key, text);
    out.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
  }

  return {
    job(job: JobLine) {
      if (closed) return;
      jobs.set(job.id, job);
      emit(job.id, jobText(job), { job });
    },
    batch(b: BatchLine) {
      if (closed) return;
      batch = b;
      emit(b.id, batchText(b), { batch: b });
    },
    finish(status: string): string {
      if (tty) draw();
      closed = true;
      if (json) out.write(`${JSON.stringify({ done: true, status })}\n`);
      else out.write(`${status}\n`);
      return status;
    },
  };
}
