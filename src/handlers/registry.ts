/**
 * The handler registry: job type name → parameter schema (zod), the handler, and
 * per-type defaults. Built-in handlers and user handlers (config modules or the
 * programmatic API) go through the same `defineHandler` and `createRegistry`.
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { Job, JsonObject, LogLevel } from '../domain/types.js';
import { ConfigError, ValidationError } from '../errors.js';
import type { Logger } from '../log.js';
import type { NetGuard } from '../net/guard.js';
import type { ResultFile } from '../results/port.js';
import type { UploadStore } from '../uploads/uploads.js';
import type { Transformer } from './transformer.js';

/** What one call (an API request, a model run) used; every figure is optional. */
export interface UsageReport {
  /** Total tokens; default inputTokens + outputTokens. */
  tokens?: number;
  inputTokens?: number;
  outputTokens?: number;
  /** What it cost, in US dollars. */
  costUsd?: number;
  /** The model that did the work. */
  model?: string;
}

export interface ProgressUpdate {
  /** 0..100 */
  percent: number;
  step?: string;
  message?: string;
}

/** What a handler gets besides its parameters. */
export interface HandlerContext {
  /** The job as claimed (read-only). */
  job: Readonly<Job>;
  /** The attempt number of this run (1 for the first). */
  attempt: number;
  /** Aborted on cancellation, timeout, lease loss or shutdown; `signal.reason` says which. */
  signal: AbortSignal;
  /** Reports progress; calls are coalesced (at most one write per `worker.progressIntervalMs`). */
  progress(update: ProgressUpdate): void;
  /** Appends to the job's log (kept in the store, separate from process logs); batched. */
  log(level: LogLevel, message: string): void;
  /**
   * Reports usage (tokens, cost, model); calls add up, and the attempt's sum is stored with
   * its outcome: `Job.usage` sums every attempt, `Batch.summary` every job.
   */
  usage(report: UsageReport): void;
  /** Writes a result file of this job (fenced: refused once the job is no longer this run's). */
  writeResult(name: string, body: Uint8Array | string | Readable, contentType: string): Promise<ResultFile>;
  /** Process logger bound to the job. */
  logger: Logger;
  /** Services handlers may use. */
  services: HandlerServices;
}

export interface HandlerServices {
  /** The SSRF guard for outbound requests. */
  net: NetGuard;
  uploads: UploadStore;
  limits: { maxDownloadBytes: number; downloadTimeoutMs: number };
  /** Translation and transcription (`transformer.*`); null when not configured. */
  transformer?: Transformer | null;
  /** `transformer.defaultSourceLanguage` and `defaultTargetLanguage` (null: none). */
  languages?: { source: string | null; target: string | null };
}

export interface HandlerDefaults {
  /** Most jobs of this type one worker runs at once (within `worker.concurrency`). */
  concurrency?: number;
  /** Abort the handler after this long. */
  timeoutMs?: number;
  /** Attempt budget of new jobs of this type. */
  maxAttempts?: number;
}

export interface HandlerDefinition<S extends z.ZodType = z.ZodType> {
  /** The job type name: letters, digits, `.`, `_`, `-`. */
  type: string;
  description?: string;
  /** Validates (and may default) the job's parameters at submit time. */
  parameters: S;
  /** Does the work. Throw `PermanentJobError` for failures a retry cannot fix. */
  run(parameters: z.infer<S>, context: HandlerContext): Promise<JsonObject | undefined>;
  defaults?: HandlerDefaults;
}

/** Identity helper that keeps the parameter type flowing into `run`. */
export function defineHandler<S extends z.ZodType>(definition: HandlerDefinition<S>): HandlerDefinition<S> {
  return definition;
}

export interface JobTypeInfo {
  type: string;
  description: string | null;
  /** The parameters a submitter sends, as JSON Schema (fields with defaults are optional). */
  parameterSchema: JsonObject;
  defaults: HandlerDefaults;
}

export interface HandlerRegistry {
  readonly types: string[];
  get(type: string): HandlerDefinition | undefined;
  /** Parses parameters for a type; unknown types and invalid fields are `BAD_USER_INPUT` naming the field. */
  validate(type: string, parameters: unknown, field?: string): JsonObject;
  /** Every type with its JSON Schema; built on first use, the same objects every time (do not change them). */
  describe(): JobTypeInfo[];
}

const TYPE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

function isDefinition(value: unknown): value is HandlerDefinition {
  const v = value as Partial<HandlerDefinition> | null;
  return (
    typeof v === 'object' && v !== null && typeof v.type === 'string' && typeof v.run === 'function' && typeof v.parameters === 'object'
  );
}

export function createRegistry(definitions: readonly HandlerDefinition[]): HandlerRegistry {
  const byType = new Map<string, HandlerDefinition>();
  for (const definition of definitions) {
    if (!isDefinition(definition)) throw new ConfigError('a handler definition needs type, parameters (a zod schema) and run()');
    if (!TYPE_NAME.test(definition.type)) throw new ConfigError(`handler type "${definition.type}" must match ${TYPE_NAME}`);
    if (byType.has(definition.type)) throw new ConfigError(`two handlers are registered for job type "${definition.type}"`);
    byType.set(definition.type, definition);
  }
  const types = [...byType.keys()];
  // Built once: converting zod schemas to JSON Schema is slow, and `jobTypes` may be asked
  // for under thousands of aliases by anyone.
  let described: JobTypeInfo[] | null = null;
  return {
    types,
    get: (type) => byType.get(type),
    validate(type, parameters, field = 'parameters') {
      const definition = byType.get(type);
      if (definition === undefined) {
        throw new ValidationError(`unknown job type "${type}" (known: ${types.join(', ') || 'none'})`, { field: 'type', type });
      }
      const result = definition.parameters.safeParse(parameters ?? {});
      if (!result.success) {
        const issue = result.error.issues[0];
        const path = [field, ...(issue?.path ?? [])].join('.');
        throw new ValidationError(`${path}: ${issue?.message ?? 'invalid'}`, { field: path, type });
      }
      const value = result.data;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new ValidationError(`${field}: the ${type} handler's schema must produce an object`, { field, type });
      }
      return value as JsonObject;
    },
    describe() {
      described ??= [...byType.values()].map((d) => ({
        type: d.type,
        description: d.description ?? null,
        parameterSchema: z.toJSONSchema(d.parameters, { unrepresentable: 'any', io: 'input' }) as JsonObject,
        defaults: d.defaults ?? {},
      }));
      return described;
    },
  };
}

/** Reads handler definitions from a module: its default export or `handlers`, one definition or a list. */
export function definitionsFromModule(path: string, module: Record<string, unknown>): HandlerDefinition[] {
  const exported = module.default ?? module.handlers;
  const list = Array.isArray(exported) ? exported : [exported];
  if (exported === undefined || !list.every(isDefinition)) {
    throw new ConfigError(`handler module ${path} must export (default or \`handlers\`) a handler definition or a list of them`, {
      module: path,
    });
  }
  return list as HandlerDefinition[];
}
