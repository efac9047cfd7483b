/** The retry schedule: exponential backoff with jitter, capped. */
export interface BackoffConfig {
  /** Delay after the first failed attempt. */
  baseMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
  /** Random spread as a fraction of the delay (0.2 = ±20 %). */
  jitter: number;
}

/**
 * Delay before the next attempt after `failedAttempt` (1-based) failed:
 * `baseMs × 2^(failedAttempt − 1)`, capped at `maxMs`, spread by ±`jitter`.
 * `random` returns [0, 1) (injectable for tests).
 */
export function retryDelay(failedAttempt: number, config: BackoffConfig, random: () => number = Math.random): number {
  const exponential = config.baseMs * 2 ** Math.max(0, failedAttempt - 1);
  const capped = Math.min(config.maxMs, exponential);
  const spread = capped * config.jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(capped + spread));
}
