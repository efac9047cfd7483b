/** When a failed delivery is tried again. */

/** Delay before the next attempt, after `attempts` attempts; null when the schedule is used up. */
export function nextDelay(
  schedule: readonly number[],
  attempts: number,
  jitter: number,
  random: () => number = Math.random,
): number | null {
  const base = schedule[attempts - 1];
  if (base === undefined) return null;
  return Math.max(0, Math.round(base * (1 + jitter * (2 * random() - 1))));
}

/** `Retry-After` as milliseconds (delta-seconds or an HTTP date), capped; null when absent or unreadable. */
export function retryAfterMs(header: string | undefined, capMs: number, now: number = Date.now()): number | null {
  if (header === undefined || header.trim() === '') return null;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - now;
  if (!Number.isFinite(ms)) return null;
  return Math.min(Math.max(0, ms), capMs);
}
