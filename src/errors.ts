/**
 * Errors with stable codes. Callers classify errors by `code`, never by message
 * text; the GraphQL layer copies `code` into `extensions.code`.
 */

/** Every error code Conveyor produces on purpose. */
export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'FORBIDDEN'
  | 'UNAUTHENTICATED'
  | 'CONFLICT'
  | 'LIMIT_EXCEEDED'
  | 'ILLEGAL_TRANSITION'
  | 'LEASE_LOST'
  | 'CURSOR_EXPIRED'
  | 'URL_EXPIRED'
  | 'SIGNATURE_INVALID'
  | 'PAYLOAD_TOO_LARGE'
  | 'UPLOAD_EXPIRED'
  | 'CONFIG_INVALID'
  | 'STORE_UNAVAILABLE'
  | 'INTERNAL';

/** Base class of every expected error: carries a stable `code` and optional details. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** Input that is wrong in a way the caller can fix (names the field where it can). */
export class ValidationError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('BAD_USER_INPUT', message, details);
  }
}

export class NotFoundError extends AppError {
  constructor(entity: string, id: string) {
    super('NOT_FOUND', `${entity} ${id} not found`, { entity, id });
  }
}

/** Credentials are missing where they are required, or present and wrong. */
export class UnauthenticatedError extends AppError {
  constructor(message: string) {
    super('UNAUTHENTICATED', message);
  }
}

/** A signed file or archive URL that expired or does not match its signature. */
export class SignedUrlError extends AppError {
  constructor(code: 'URL_EXPIRED' | 'SIGNATURE_INVALID', message: string) {
    super(code, message);
  }
}

/** An upload a job used is gone (deleted after `uploads.ttlHours`, or with another job that used it). */
export class UploadExpiredError extends AppError {
  constructor(uploadId: string, jobId: string) {
    super(
      'UPLOAD_EXPIRED',
      `upload ${uploadId} of job ${jobId} is no longer kept (uploads are deleted after uploads.ttlHours); upload the file again and submit a new job`,
      { uploadId, jobId },
    );
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'not allowed', details?: Record<string, unknown>) {
    super('FORBIDDEN', message, details);
  }
}

export class ConflictError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CONFLICT', message, details);
  }
}

export class LimitExceededError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('LIMIT_EXCEEDED', message, details);
  }
}

/** A status change the job state machine does not allow (e.g. COMPLETED → PROCESSING). */
export class IllegalTransitionError extends AppError {
  constructor(entity: string, id: string, from: string, to: string) {
    super('ILLEGAL_TRANSITION', `${entity} ${id} cannot go from ${from} to ${to}`, { entity, id, from, to });
  }
}

/**
 * The caller no longer owns the job's lease: it expired, or another worker claimed
 * the job since (the fencing token no longer matches). The write was refused.
 */
export class LeaseLostError extends AppError {
  constructor(jobId: string, attempt: number) {
    super('LEASE_LOST', `lease on job ${jobId} (attempt ${attempt}) is no longer held`, { jobId, attempt });
  }
}

/** A change-feed cursor older than what the store still holds; re-read the snapshot. */
export class CursorExpiredError extends AppError {
  constructor(cursor: string) {
    super('CURSOR_EXPIRED', 'the change cursor is older than the retained change history; read the current state again', {
      cursor,
    });
  }
}

export class ConfigError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CONFIG_INVALID', message, details);
  }
}

export class StoreUnavailableError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_UNAVAILABLE', message, undefined, options);
  }
}

/**
 * Turns anything thrown into an Error. AppErrors pass through; other Errors keep
 * their identity; non-Errors (strings, objects) are wrapped so stack and message exist.
 */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  if (typeof thrown === 'string') return new Error(thrown);
  let text: string;
  try {
    text = JSON.stringify(thrown);
  } catch {
    text = String(thrown);
  }
  return new Error(`non-error thrown: ${text}`, { cause: thrown });
}

/** The stable code of an error, or `INTERNAL` for anything unexpected. */
export function errorCode(thrown: unknown): ErrorCode {
  return thrown instanceof AppError ? thrown.code : 'INTERNAL';
}

/**
 * A handler's failure with its own stable code (e.g. `PDF_INVALID`). `retriable: false`
 * fails the job at once whatever attempts are left; the worker retries the others.
 */
export class JobFailure extends Error {
  readonly code: string;
  readonly retriable: boolean;
  /** JSON-safe facts about the failure, kept with the job's error (`JobError.details`). */
  readonly details: { [key: string]: unknown } | null;

  constructor(code: string, message: string, options?: JobFailureOptions & { retriable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options?.retriable ?? true;
    this.details = options?.details ?? null;
  }
}

export interface JobFailureOptions {
  cause?: unknown;
  /** E.g. `{ url, status }` of a failed download; shown as `JobError.details`. */
  details?: { [key: string]: unknown };
}

/** A failure that retrying cannot fix (bad input, corrupt file, forbidden target): no retry. */
export class PermanentJobError extends JobFailure {
  constructor(code: string, message: string, options?: JobFailureOptions) {
    super(code, message, { ...options, retriable: false });
  }
}
