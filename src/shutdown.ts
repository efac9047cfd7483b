/**
 * What the process does on SIGINT and SIGTERM: the first signal stops gracefully
 * (exit 0, or 1 when stopping fails or outlasts its deadline); a second one exits at
 * once (130 after SIGINT, 143 after SIGTERM), for the person pressing Ctrl-C again.
 */
import { coerceError } from './errors.js';
import type { Logger } from './log.js';

export interface ShutdownOptions {
  /** Stops everything; awaited once. */
  stop: () => Promise<void>;
  /**
   * How long a graceful stop may take before the process exits with 1 anyway: the
   * HTTP and worker grace periods plus a margin, so a stuck close never leaves a process
   * that a container runtime has to kill.
   */
  deadlineMs: number;
  logger: Logger;
  /** Ends the process (tests pass their own). */
  exit: (code: number) => void;
  /** Told on the first signal: a hint for people at a terminal. */
  interactive?: boolean;
}

const SIGNAL_EXIT_CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/** Returns the signal listener; install it with `process.on('SIGINT' | 'SIGTERM', …)`. */
export function createShutdown(options: ShutdownOptions): (signal: NodeJS.Signals) => void {
  const { logger, exit } = options;
  let stopping = false;
  return (signal) => {
    if (stopping) {
      logger.warn('second signal: exiting now, without waiting for running jobs', { signal });
      exit(SIGNAL_EXIT_CODES[signal] ?? 1);
      return;
    }
    stopping = true;
    logger.info('shutting down', {
      signal,
      ...(options.interactive === true ? { hint: 'press Ctrl-C again to exit at once' } : {}),
    });
    const deadline = setTimeout(() => {
      logger.error('shutdown did not finish in time: exiting', { deadlineMs: options.deadlineMs });
      exit(1);
    }, options.deadlineMs);
    deadline.unref();
    options.stop().then(
      () => {
        clearTimeout(deadline);
        logger.info('stopped');
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(deadline);
        logger.error('shutdown failed', { error: coerceError(error) });
        exit(1);
      },
    );
  };
}
