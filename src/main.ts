/**
 * Composition root for the command line: `node dist/src/main.js [--config FILE]`.
 * Loads and validates configuration, starts the service, stops it on SIGINT/SIGTERM.
 */
import { startService } from './app.js';
import { loadConfig } from './config.js';
import { AppError, coerceError } from './errors.js';
import { createLogger } from './log.js';

function configFileFromArgs(argv: string[]): string | undefined {
  const index = argv.indexOf('--config');
  if (index === -1) return undefined;
  const file = argv[index + 1];
  if (file === undefined) throw new AppError('CONFIG_INVALID', '--config needs a file path');
  return file;
}

async function main(): Promise<void> {
  const file = configFileFromArgs(process.argv.slice(2));
  const config = loadConfig(file === undefined ? {} : { file });
  const logger = createLogger(config.log.level);
  const service = await startService(config, logger);
  const shutdown = (signal: string) => {
    logger.info('shutting down', { signal });
    service.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('shutdown failed', { error: coerceError(error) });
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((thrown: unknown) => {
  const error = coerceError(thrown);
  // Configuration and store errors are the user's to fix: say what, without a stack trace.
  process.stderr.write(error instanceof AppError ? `conveyor: ${error.message}\n` : `conveyor: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
