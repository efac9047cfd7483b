/**
 * Subscription execution shared between subscribers. When many clients follow the same
 * batch with the same query, every change would otherwise be executed once per
 * subscriber. The feed hands every live subscriber of a topic the same event object,
 * so the result of executing (document, variables, principal) against that object can
 * be computed once and sent to all of them. Different principals never share a result:
 * resolvers apply read access per principal.
 */
import {
  createSourceEventStream,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLError,
  type GraphQLSchema,
  parse,
  type ValidationRule,
  validate,
} from 'graphql';
import { LRUCache } from 'lru-cache';
import { PushStream } from '../lib/push-stream.js';
import type { GraphQLContext } from './context.js';
import { checkTokens } from './limits.js';
import { executeWithinBudget } from './response-budget.js';

type Result = ExecutionResult | Promise<ExecutionResult>;

export interface ParsedQuery {
  document: DocumentNode;
  errors: readonly GraphQLError[];
  /** The query text as first seen: subscribers with the same query can keep this one copy. */
  query: string;
}

/**
 * Parses and validates a query once per distinct text (bounded cache). A document of
 * more than `maxTokens` tokens throws LIMIT_EXCEEDED before it is parsed.
 */
export function createDocumentCache(
  schema: GraphQLSchema,
  rules: readonly ValidationRule[],
  options: { maxTokens: number; size?: number },
) {
  const documents = new LRUCache<string, ParsedQuery>({ max: options.size ?? 1000 });
  return (query: string): ParsedQuery => {
    let entry = documents.get(query);
    if (entry === undefined) {
      checkTokens(query, options.maxTokens);
      const document = parse(query, { maxTokens: options.maxTokens });
      entry = { document, errors: validate(schema, document, rules), query };
      documents.set(query, entry);
    }
    return entry;
  };
}

function principalKey(context: unknown): string {
  const principal = (context as GraphQLContext | undefined)?.principal;
  if (principal === undefined) return '';
  return `${principal.admin ? 'admin' : ''}|${principal.userId ?? ''}|${principal.teams.join(',')}`;
}

/** Like `mapAsyncIterator`, but `return()` reaches the source at once (unsubscribes never wait for the next event). */
function mapStream<T>(source: AsyncIterator<unknown>, map: (value: unknown) => Promise<T> | T): AsyncIterableIterator<T> {
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      const result = await source.next();
      if (result.done === true) return { done: true, value: undefined };
      return { done: false, value: await map(result.value) };
    },
    async return() {
      await source.return?.();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/**
 * One subscriber's events, executed once per (event, key) and shared with every
 * subscriber of the same key. A class, so that an idle subscriber holds one small
 * object rather than closures over its arguments.
 */
class SharedResults {
  constructor(
    private readonly results: WeakMap<object, Map<number, Result>>,
    private readonly args: ExecutionArgs,
    private readonly key: number,
  ) {}

  map(payload: unknown): Result {
    if (typeof payload !== 'object' || payload === null) return this.run(payload);
    let perPayload = this.results.get(payload);
    if (perPayload === undefined) {
      perPayload = new Map();
      this.results.set(payload, perPayload);
    }
    let result = perPayload.get(this.key);
    if (result === undefined) {
      result = this.run(payload);
      perPayload.set(this.key, result);
    }
    return result;
  }

  /** Every event's answer has a budget of its own (the context's is the template it copies the limit from). */
  private run(payload: unknown): Result {
    const context = this.args.contextValue as GraphQLContext | undefined;
    const contextValue = context?.budget === undefined ? context : { ...context, budget: context.budget.fresh(context.requestId) };
    return executeWithinBudget({ ...this.args, rootValue: payload, contextValue });
  }
}

/** A `subscribe` for graphql-ws that executes each event once per (document, variables, principal). */
export function createSharedSubscribe() {
  const results = new WeakMap<object, Map<number, Result>>();
  // Subscribers keep a number, not their own copy of the key text. Bounded: a key
  // dropped here only means later subscribers with it share executions among
  // themselves, not with the earlier ones.
  const keyIds = new LRUCache<string, number>({ max: 10_000 });
  let nextKeyId = 0;
  const keyId = (key: string): number => {
    let id = keyIds.get(key);
    if (id === undefined) {
      id = nextKeyId++;
      keyIds.set(key, id);
    }
    return id;
  };
  const documentIds = new WeakMap<DocumentNode, number>();
  let nextId = 0;
  const documentId = (document: DocumentNode) => {
    let id = documentIds.get(document);
    if (id === undefined) {
      id = nextId++;
      documentIds.set(document, id);
    }
    return id;
  };
  return async (args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> => {
    const source = await createSourceEventStream(args);
    if (!(Symbol.asyncIterator in source)) return source as ExecutionResult;
    const key = keyId(
      `${documentId(args.document)}|${args.operationName ?? ''}|${JSON.stringify(args.variableValues ?? {})}|${principalKey(args.contextValue)}`,
    );
    const iterator = (source as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    const mapper = new SharedResults(results, args, key);
    // The feed's streams map in place; anything else gets a wrapper.
    return iterator instanceof PushStream ? iterator.mapValues(mapper) : mapStream(iterator, (payload) => mapper.map(payload));
  };
}
