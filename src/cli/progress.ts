/**
 * Live progress in the terminal. On a TTY, cli-progress multi-bars redrawn in place:
 * one bar for a job, or one for a batch plus one per job while it runs; the final
 * lines are printed below once the bars are stopped, so nothing is drawn over them.
 * Otherwise plain lines, one per change, or JSON lines with `--json`.
 */
import cliProgress from 'cli-progress';

interface JobLine {
  id: string;
  type: string;
  status: string;
  attempts?: number;
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
const ENDED = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

export function bar(percent: number): string {
  const filled = Math.round((Math.max(0, Math.min(100, percent)) / 100) * WIDTH);
  return `[${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}] ${String(Math.round(percent)).padStart(3)}%`;
}

const jobPercent = (job: JobLine) => (job.status === 'COMPLETED' ? 100 : (job.progress?.percent ?? 0));

const jobDetail = (job: JobLine) =>
  job.error !== null ? `${job.error.code}: ${job.error.message}` : [job.progress?.step, job.progress?.message].filter(Boolean).join(' · ');

const jobLabel = (job: JobLine) => {
  const detail = jobDetail(job);
  return `${job.id} ${job.type} ${job.status}${detail === '' ? '' : ` ${detail}`}`;
};

const batchDone = (b: BatchLine) => b.counts.completed + b.counts.failed + b.counts.cancelled;

const batchLabel = (b: BatchLine) =>
  `${b.name} ${b.status} ${batchDone(b)}/${b.counts.total} (${b.counts.completed} completed, ${b.counts.failed} failed, ${b.counts.cancelled} cancelled)`;

const jobText = (job: JobLine) => `${bar(jobPercent(job))} ${jobLabel(job)}`;

const batchText = (b: BatchLine) => `${bar(b.counts.total === 0 ? 100 : (batchDone(b) / b.counts.total) * 100)} ${batchLabel(b)}`;

/**
 * Whether `next` may replace `previous`: events of one job can arrive out of order (the
 * batch's feed and a final read), and an older state must never be drawn after a newer
 * one. An ended job stays ended until a new attempt starts; within an attempt progress
 * only moves forward.
 */
export function isNewer(previous: JobLine | undefined, next: JobLine): boolean {
  if (previous === undefined) return true;
  const attempt = (job: JobLine) => job.attempts ?? 0;
  if (attempt(next) !== attempt(previous)) return attempt(next) > attempt(previous);
  if (ENDED.has(previous.status)) return ENDED.has(next.status);
  if (ENDED.has(next.status)) return true;
  return jobPercent(next) >= jobPercent(previous);
}

type Bar = ReturnType<cliProgress.MultiBar['create']>;

export function createProgress(out: NodeJS.WriteStream, json: boolean) {
  const tty = out.isTTY === true && !json;
  const jobs = new Map<string, JobLine>();
  const lastText = new Map<string, string>();
  let batch: BatchLine | null = null;
  let closed = false;

  // TTY: the bars, created on first use (nothing is drawn for a watch that ends at once).
  let multibar: cliProgress.MultiBar | null = null;
  const bars = new Map<string, Bar>();
  const bars$ = () => {
    multibar ??= new cliProgress.MultiBar(
      {
        stream: out,
        format: (_options, params, payload: { label: string }) =>
          `${bar((params.total === 0 ? 1 : params.value / params.total) * 100)} ${payload.label}`.slice(0, (out.columns ?? 120) - 1),
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        linewrap: false,
        autopadding: false,
        gracefulExit: false,
        // Lines logged above the bars move them; an unchanged bar must still be drawn again.
        forceRedraw: true,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    return multibar;
  };
  const logged = new Set<string>();
  const drawJob = (job: JobLine) => {
    const existing = bars.get(job.id);
    // In a batch, a job has its own bar only while it runs; once it has ended, one
    // permanent line above the bars says how.
    if (batch !== null && job.status !== 'PROCESSING') {
      if (existing !== undefined) {
        bars$().remove(existing);
        bars.delete(job.id);
      }
      const key = `${job.id}:${job.attempts ?? 0}`;
      if (ENDED.has(job.status) && !logged.has(key)) {
        logged.add(key);
        bars$().log(`${jobText(job)}\n`);
      }
      return;
    }
    if (existing === undefined) bars.set(job.id, bars$().create(100, jobPercent(job), { label: jobLabel(job) }));
    else existing.update(jobPercent(job), { label: jobLabel(job) });
  };
  const drawBatch = (b: BatchLine) => {
    const existing = bars.get(b.id);
    if (existing === undefined) bars.set(b.id, bars$().create(b.counts.total, batchDone(b), { label: batchLabel(b) }));
    else {
      existing.setTotal(b.counts.total);
      existing.update(batchDone(b), { label: batchLabel(b) });
    }
  };

  const emit = (key: string, text: string, value: unknown) => {
    if (lastText.get(key) === text) return;
    lastText.set(key, text);
    out.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
  };

  return {
    job(job: JobLine) {
      if (closed || !isNewer(jobs.get(job.id), job)) return;
      jobs.set(job.id, job);
      if (tty) drawJob(job);
      else emit(job.id, jobText(job), { job });
    },
    batch(b: BatchLine) {
      if (closed) return;
      batch = b;
      if (tty) drawBatch(b);
      else emit(b.id, batchText(b), { batch: b });
    },
    /** Stops the bars and prints the end state below them; returns `status`. */
    finish(status: string): string {
      if (closed) return status;
      closed = true;
      if (tty) {
        if (multibar !== null) {
          // Draw what is pending (lines logged above the bars) before the final frame.
          multibar.update();
          multibar.stop();
        }
      }
      if (json) out.write(`${JSON.stringify({ done: true, status })}\n`);
      else out.write(`${status}\n`);
      return status;
    },
  };
}
