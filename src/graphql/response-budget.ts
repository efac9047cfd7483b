/**
 * The answer's size, counted while it is built. The cost estimate (`limits.ts`) cannot
 * know how large a JSON value is (one batch's metadata may be a megabyte, asked for
 * under two thousand aliases), so every execution carries a budget of
 * `graphql.maxResponseBytes`: each field adds its response key and, for scalars and
 * enums, the size of its value (JSON values by their serialised length). Once the
 * budget is spent, every further field fails at once without running its resolver, and
 * the whole result is replaced by one `LIMIT_EXCEEDED` error: the answer is never
 * built, let alone serialised.
 *
 * The count is close to the serialised size, not exact (string escapes are not
 * counted); the HTTP layer still measures the finished answer.
 */
import {
  defaultFieldResolver,
  type ExecutionArgs,
  type ExecutionResult,
  execute,
  GraphQLError,
  type GraphQLField,
  type GraphQLFieldResolver,
  type GraphQLSchema,
  getNamedType,
  isLeafType,
  isObjectType,
} from 'graphql';
import { LimitExceededError } from '../errors.js';

/** Serialised lengths of JSON objects already measured (the same metadata object under many aliases). */
const jsonLengths = new WeakMap<object, number>();

/** Bytes one scalar or enum value takes in the answer. */
function valueBytes(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return value.length + 2;
    case 'number':
    case 'boolean':
    case 'bigint':
      return 8;
    case 'object': {
      if (value === null) return 4;
      if (value instanceof Date) return 26;
      let length = jsonLengths.get(value);
      if (length === undefined) {
        length = JSON.stringify(value)?.length ?? 4;
        jsonLengths.set(value, length);
      }
      return length;
    }
    default:
      return 4;
  }
}

/** One execution's count of answer bytes, against its limit. */
export class ResponseBudget {
  private used = 0;
  private failure: LimitExceededError | null = null;

  constructor(
    readonly limit: number,
    private readonly requestId: string,
  ) {}

  /** A budget of the same limit for another execution (each event of a subscription), of request `requestId`. */
  fresh(requestId = this.requestId): ResponseBudget {
    return new ResponseBudget(this.limit, requestId);
  }

  /** The error once the budget is spent, else null. */
  get exceeded(): LimitExceededError | null {
    return this.failure;
  }

  /** Counts `bytes`; throws LIMIT_EXCEEDED once the total passes the limit (and on every call after). */
  spend(bytes: number): void {
    if (this.failure !== null) throw this.failure;
    this.used += bytes;
    if (this.used > this.limit) {
      this.failure = new LimitExceededError(
        `the answer would be larger than graphql.maxResponseBytes (${this.limit} bytes): ask for fewer fields, fewer aliases or smaller pages`,
        { limit: this.limit, requestId: this.requestId },
      );
      throw this.failure;
    }
  }

  /** Counts a leaf field's value (a list's items each). */
  spendValue(value: unknown): void {
    if (Array.isArray(value)) {
      let bytes = 2;
      for (const item of value) bytes += valueBytes(item) + 1;
      this.spend(bytes);
    } else {
      this.spend(valueBytes(value));
    }
  }
}

/** What the budget needs from a context. */
interface Metered {
  budget?: ResponseBudget;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

function metered(field: GraphQLField<unknown, unknown>): GraphQLFieldResolver<unknown, unknown> {
  const resolve = field.resolve ?? defaultFieldResolver;
  const leaf = isLeafType(getNamedType(field.type));
  return (source, args, context, info) => {
    const budget = (context as Metered | undefined)?.budget;
    if (budget === undefined) return resolve(source, args, context, info);
    // The key, quotes, colon and comma; then the value for scalars (objects count by their fields).
    budget.spend(String(info.path.key).length + 4);
    const value = resolve(source, args, context, info);
    if (!leaf) return value;
    if (isPromiseLike(value)) {
      return Promise.resolve(value).then((resolved) => {
        budget.spendValue(resolved);
        return resolved;
      });
    }
    budget.spendValue(value);
    return value;
  };
}

/**
 * Counts every field of the schema's object types against the context's budget (the
 * introspection types aside). Changes the schema's resolvers in place.
 */
export function meterAnswers(schema: GraphQLSchema): GraphQLSchema {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) field.resolve = metered(field);
  }
  return schema;
}

/** The result to send for an execution: one LIMIT_EXCEEDED error when its budget ran out. */
export function withinBudget(result: ExecutionResult, context: unknown): ExecutionResult {
  const failure = (context as Metered | undefined)?.budget?.exceeded;
  if (failure === null || failure === undefined) return result;
  return { errors: [new GraphQLError(failure.message, { originalError: failure })] };
}

/** graphql's `execute`, answering one LIMIT_EXCEEDED error when the answer outgrows its budget. */
export function executeWithinBudget(args: ExecutionArgs): ExecutionResult | Promise<ExecutionResult> {
  const result = execute(args);
  return isPromiseLike(result)
    ? Promise.resolve(result).then((done) => withinBudget(done, args.contextValue))
    : withinBudget(result, args.contextValue);
}
