/**
 * Wires the parts together for one process: store, retention sweep, HTTP server.
 * `main.ts` calls it for the command line; embedders and tests call it directly.
 */
import type { AddressInfo } from 'node:net';
import type { ResolvedConfig } from './config.js';
import { coerceError } from './errors.js';
import { createHttpServer } from './http/server.js';
import type { Logger } from './log.js';
import { openStore } from './store/index.js';
import type { JobStore } from './store/port.js';

export interface RunningService {
  readonly address: AddressInfo;
  readonly store: JobStore;
  /** Graceful stop: HTTP drained, timers cleared, store closed. Safe to call twice. */
  stop(): Promise<void>;
}

const DAY = 86_400_000;
const HOUR = 3_600_000;

/** One retention sweep: deletes what `retention.*` says is too old. */
export async function sweepRetention(store: JobStore, config: ResolvedConfig, now: Date = new Date()) {
  const { jobsDays, changesHours } = config.retention;
  return store.purge({
    ...(jobsDays > 0 ? { jobsFinishedBefore: new Date(now.getTime() - jobsDays * DAY) } : {}),
    ...(changesHours > 0 ? { changesBefore: new Date(now.getTime() - changesHours * HOUR) } : {}),
  });
}

export async function startService(config: ResolvedConfig, logger: Logger): Promise<RunningService> {
  const store = await openStore(config);
  const http = createHttpServer({ store, logger, shutdownGraceMs: config.server.shutdownGraceMs });
  let address: AddressInfo;
  try {
    address = await http.listen(config.server.port, config.server.host);
  } catch (error) {
    await store.close();
    throw error;
  }
  let sweeping = false;
  const sweep =
    config.retention.intervalMs > 0
      ? setInterval(() => {
          if (sweeping) return;
          sweeping = true;
          sweepRetention(store, config)
            .then((result) => {
              if (result.jobs + result.changes > 0) logger.info('retention sweep', { ...result });
            })
            .catch((error: unknown) => logger.error('retention sweep failed', { error: coerceError(error) }))
            .finally(() => {
              sweeping = false;
            });
        }, config.retention.intervalMs)
      : null;
  sweep?.unref();
  logger.info('conveyor listening', {
    url: `http://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`,
    store: store.driver,
  });

  let stopping: Promise<void> | null = null;
  return {
    address,
    store,
    stop() {
      stopping ??= (async () => {
        if (sweep !== null) clearInterval(sweep);
        await http.close();
        await store.close();
      })();
      return stopping;
    },
  };
}
