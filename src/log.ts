/**
 * Structured process logs (pino): one JSON object per line on stderr, with `time`,
 * `level` (as a word), `msg` and the bound fields (request id, job id, batch id,
 * worker id…); readable, coloured lines when stderr is a terminal. Job logs (per job,
 * in the store) are separate from these.
 */
import { pino, stdSerializers } from 'pino';
import pretty from 'pino-pretty';

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'auto' | 'json' | 'pretty';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  /** Where lines go; default stderr (pretty when it is a terminal and `pretty` is not false). */
  write?: (line: string) => void;
  pretty?: boolean;
  /** `auto` (the default) decides `pretty` by whether stderr is a terminal. */
  format?: LogFormat;
}

function wrap(instance: pino.Logger): Logger {
  return {
    debug: (m, f) => instance.debug(f ?? {}, m),
    info: (m, f) => instance.info(f ?? {}, m),
    warn: (m, f) => instance.warn(f ?? {}, m),
    error: (m, f) => instance.error(f ?? {}, m),
    child: (fields) => wrap(instance.child(fields)),
  };
}

/**
 * `write` receives each JSON line (tests capture them); the third argument is kept for
 * callers that passed a writer directly.
 */
export function createLogger(level: Level, bound: Record<string, unknown> = {}, write?: ((line: string) => void) | LoggerOptions): Logger {
  const options: LoggerOptions = typeof write === 'function' ? { write } : (write ?? {});
  const destination =
    options.write !== undefined
      ? { write: options.write }
      : (options.pretty ?? (options.format === undefined || options.format === 'auto' ? process.stderr.isTTY : options.format === 'pretty'))
        ? pretty({ destination: 2, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', sync: true })
        : pino.destination({ fd: 2, sync: true });
  const instance = pino(
    {
      level,
      base: bound,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { error: stdSerializers.err, err: stdSerializers.err },
    },
    destination,
  );
  return wrap(instance);
}
