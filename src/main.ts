/**
 * Composition root for the command line:
 *   node dist/src/main.js [--config FILE] [--role all|api|worker]   (also `conveyor serve`)
 * Loads and validates configuration, starts what the role says, and stops gracefully
 * on SIGINT/SIGTERM (running jobs finish or are released; exit code 0).
 */
import { pathToFileURL } from 'node:url';

import { loadConfig, type ResolvedConfig } from './config.js';
import { type Conveyor, createConveyor, type Role } from './conveyor.js';
import { AppError, coerceError } from './errors.js';
import { createLogger } from './log.js';
import { createShutdown } from './shutdown.js';

const ROLES: readonly Role[] = ['all', 'api', 'worker'];

/** Beyond the HTTP and worker grace periods, how long closing the store and sockets may take. */
const SHUTDOWN_MARGIN_MS = 5_000;

function flag(argv: string[], name: string): string | undefined {
  const index = argv.indexOf(name);
  if (index === -1) return undefined;
  const value = argv[index + 1];
  if (value === undefined || value.startsWith('--')) throw new AppError('CONFIG_INVALID', `${name} needs a value`);
  return value;
}

/** Starts the service; resolves once it is listening (or stopped by a signal during start-up). */
export async function serve(argv: string[], options: { onStarted?: (url: string, config: ResolvedConfig) => void } = {}): Promise<void> {
  const file = flag(argv, '--config');
  const role = flag(argv, '--role');
  if (role !== undefined && !ROLES.includes(role as Role)) {
    throw new AppError('CONFIG_INVALID', `--role must be one of ${ROLES.join(', ')}, not "${role}"`);
  }
  const config = loadConfig({
    ...(file === undefined ? {} : { file }),
    ...(role === undefined ? {} : { overrides: { role } }),
  });
  const logger = createLogger(config.log.level, {}, { format: config.log.format });
  // Signals are handled from the start: a stop requested while starting up waits for
  // start-up to finish, then stops just as gracefully.
  let stopRequested = false;
  let started: Promise<{ conveyor: Conveyor; url: string | null }> | null = null;
  const onSignal = createShutdown({
    async stop() {
      stopRequested = true;
      const running = await started?.catch(() => null);
      await running?.conveyor.stop();
    },
    deadlineMs: config.server.shutdownGraceMs + config.worker.shutdownGraceMs + SHUTDOWN_MARGIN_MS,
    logger,
    exit: (code) => process.exit(code),
    interactive: process.stderr.isTTY === true,
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  started = (async () => {
    const conveyor = await createConveyor({ config, logger });
    if (stopRequested) return { conveyor, url: null };
    const { url } = await conveyor.start();
    return { conveyor, url };
  })();
  const { url } = await started;
  if (url !== null && !stopRequested) options.onStarted?.(url, config);
}

/** What a person starting the service in a terminal wants to know first. */
export function startBanner(url: string, config: ResolvedConfig): string {
  const lines = [`\nConveyor is running (${config.role}, ${config.store.driver}).`];
  if (config.role !== 'worker') lines.push(`  dashboard  ${url}/`, `  GraphQL    ${url}/graphql`);
  else lines.push(`  health     ${url}/readyz`);
  if (config.metrics.enabled) lines.push(`  metrics    ${url}/metrics`);
  lines.push('  demo       npm run demo   (its own queue and a sample site; sign in as "demo")', '');
  return `${lines.join('\n')}\n`;
}

/** Prints a start-up failure the way users need it: configuration and store errors without a stack trace. */
export function exitOnStartupError(thrown: unknown): never {
  const error = coerceError(thrown);
  process.stderr.write(error instanceof AppError ? `conveyor: ${error.message}\n` : `conveyor: ${error.stack ?? error.message}\n`);
  process.exit(1);
}

const invoked = process.argv[1] === undefined ? '' : pathToFileURL(process.argv[1]).href;
if (invoked === import.meta.url || invoked.replace(/\.ts$/, '.js') === import.meta.url.replace(/\.ts$/, '.js')) {
  serve(process.argv.slice(2), {
    onStarted: (url, config) => {
      if (process.stdout.isTTY) process.stdout.write(startBanner(url, config));
    },
  }).catch(exitOnStartupError);
}
