/**
 * Query limits: the document's size in tokens, checked before it is parsed; selection
 * depth and an estimated cost of the answer, checked during validation (before
 * anything runs). All fail with `LIMIT_EXCEEDED`.
 *
 * Cost: every field counts 1, a JSON value counts `JSON_COST` (it can hold a document
 * of its own), and a list multiplies what it selects by its size: the page size for
 * fields with `first` (its default when absent, the largest page when it comes from
 * a variable), the real size where it is known (job types), and otherwise the
 * estimate in `LIST_SIZES`. A list of scalars counts 1 per item. Every list field of
 * the schema has a size here (a test checks it), so no list counts as one item.
 */
import {
  type ASTVisitor,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLField,
  type GraphQLNamedType,
  getNamedType,
  getNullableType,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  Lexer,
  type OperationDefinitionNode,
  type SelectionSetNode,
  Source,
  TokenKind,
  type ValidationContext,
  valueFromASTUntyped,
} from 'graphql';
import { LimitExceededError } from '../errors.js';

/**
 * Refuses a document of more than `maxTokens` lexical tokens (comments aside, as graphql's
 * own `maxTokens` counts) before it is parsed: parsing and validating a megabyte of
 * variable definitions or directives takes seconds. Reads at most `maxTokens + 1`
 * tokens; a syntax error within them is left for the parser to report.
 */
export function checkTokens(query: string, maxTokens: number): void {
  const lexer = new Lexer(new Source(query));
  let count = 0;
  try {
    while (lexer.advance().kind !== TokenKind.EOF) {
      if (++count > maxTokens) {
        const message = `the document has more than ${maxTokens} tokens (graphql.maxTokens): send a smaller query`;
        throw new LimitExceededError(message, { limit: maxTokens });
      }
    }
  } catch (error) {
    if (error instanceof LimitExceededError) throw error;
  }
}

/** The store never returns more than this many items per page. */
const MAX_PAGE = 1000;

/** What one JSON value counts: parameters, metadata and schemas can be large. */
export const JSON_COST = 10;

/**
 * Estimated largest size of lists without `first`, by `Type.field`. Lists inside a
 * connection (`edges`) are already counted by the connection's page size.
 */
export const LIST_SIZES: Readonly<Record<string, number>> = {
  'JobConnection.edges': 1,
  'BatchConnection.edges': 1,
  'Job.teamIds': 10,
  'Batch.teamIds': 10,
  'Viewer.teams': 10,
  'AccessControl.read': 10,
  'AccessControl.write': 10,
  'AccessControl.admin': 10,
  'Job.errors': 10,
  'Usage.models': 10,
  'JobResults.files': 100,
  'Job.deliveries': 10,
  'Batch.deliveries': 100,
  'Delivery.attempts': 10,
  'WebhookInfo.events': 5,
  'WebhookInfo.headerNames': 20,
  'Stats.byType': 50,
  'Stats.byTrack': 100,
  'Stats.ingest': 50,
  'Query.jobTypes': 50,
};

export interface QueryLimits {
  maxDepth: number;
  maxCost: number;
  /** Real sizes known at run time (`Query.jobTypes`: the registry's size), over `LIST_SIZES`. */
  listSizes?: Record<string, () => number>;
}

interface Measure {
  depth: number;
  cost: number;
}

function fieldOf(type: GraphQLNamedType | undefined, name: string): GraphQLField<unknown, unknown> | undefined {
  return type !== undefined && (isObjectType(type) || isInterfaceType(type)) ? type.getFields()[name] : undefined;
}

export function queryLimitRules(limits: QueryLimits) {
  const sizeOf = (key: string): number => limits.listSizes?.[key]?.() ?? LIST_SIZES[key] ?? 100;

  return [
    (context: ValidationContext): ASTVisitor => {
      const schema = context.getSchema();

      function listSize(
        parent: GraphQLNamedType | undefined,
        field: GraphQLField<unknown, unknown> | undefined,
        node: { arguments?: readonly { name: { value: string }; value: import('graphql').ValueNode }[] },
      ): number {
        if (field === undefined || parent === undefined) return 1;
        const argument = field.args.find((arg) => arg.name === 'first');
        if (argument !== undefined) {
          const given = node.arguments?.find((arg) => arg.name.value === 'first');
          if (given === undefined) return Math.min(Number(argument.defaultValue ?? MAX_PAGE), MAX_PAGE);
          if (given.value.kind !== Kind.INT) return MAX_PAGE; // a variable: the largest page
          return Math.max(0, Math.min(Number(valueFromASTUntyped(given.value)), MAX_PAGE));
        }
        return isListType(getNullableType(field.type)) ? sizeOf(`${parent.name}.${field.name}`) : 1;
      }

      /**
       * A fragment's measure on a parent type, computed once per document: a fragment
       * spread many times (each level spreading the one below twice, say) would otherwise
       * be walked again at every spread, exponentially in the document's size.
       */
      const fragments = new Map<string, Measure>();

      function measure(selectionSet: SelectionSetNode | undefined, parent: GraphQLNamedType | undefined, seen: Set<string>): Measure {
        if (selectionSet === undefined) return { depth: 0, cost: 0 };
        let depth = 0;
        let cost = 0;
        for (const selection of selectionSet.selections) {
          if (selection.kind === Kind.FIELD) {
            const field = fieldOf(parent, selection.name.value);
            const type = field === undefined ? undefined : getNamedType(field.type);
            const inner = measure(selection.selectionSet, type, seen);
            const size = listSize(parent, field, selection);
            // A leaf: 1, or JSON_COST for a JSON value; each item of a list of them counts.
            const each = selection.selectionSet === undefined ? (type?.name === 'JSON' ? JSON_COST : 1) : inner.cost;
            depth = Math.max(depth, (selection.selectionSet === undefined ? 0 : 1) + inner.depth);
            cost += selection.selectionSet === undefined && size === 1 ? each : 1 + size * each;
          } else {
            const name = selection.kind === Kind.FRAGMENT_SPREAD ? selection.name.value : null;
            const fragment: FragmentDefinitionNode | null | undefined = name === null ? null : context.getFragment(name);
            const set =
              selection.kind === Kind.INLINE_FRAGMENT
                ? selection.selectionSet
                : name === null || seen.has(name)
                  ? undefined // a cycle; graphql's own NoFragmentCycles rule reports it
                  : fragment?.selectionSet;
            const condition = selection.kind === Kind.INLINE_FRAGMENT ? selection.typeCondition : fragment?.typeCondition;
            const type = condition === undefined || condition === null ? parent : (schema.getType(condition.name.value) ?? undefined);
            const key = name === null ? null : `${name} on ${type?.name ?? ''}`;
            let inner = key === null ? undefined : fragments.get(key);
            if (inner === undefined) {
              if (name !== null) seen.add(name);
              inner = measure(set, type, seen);
              if (name !== null) seen.delete(name);
              // Inside a cycle the measure is partial; NoFragmentCycles refuses such a document anyway.
              if (key !== null) fragments.set(key, inner);
            }
            depth = Math.max(depth, inner.depth);
            cost += inner.cost;
          }
        }
        return { depth, cost };
      }

      return {
        OperationDefinition(node: OperationDefinitionNode) {
          const root =
            node.operation === 'query'
              ? schema.getQueryType()
              : node.operation === 'mutation'
                ? schema.getMutationType()
                : schema.getSubscriptionType();
          const { depth, cost } = measure(node.selectionSet, root ?? undefined, new Set());
          const fail = (message: string, details: Record<string, unknown>) =>
            context.reportError(new GraphQLError(message, { nodes: [node], originalError: new LimitExceededError(message, details) }));
          if (depth > limits.maxDepth) {
            fail(`the query is ${depth} levels deep; at most ${limits.maxDepth} are allowed (graphql.maxDepth)`, {
              depth,
              limit: limits.maxDepth,
            });
          }
          if (cost > limits.maxCost) {
            fail(
              `the query's estimated cost is ${cost}; at most ${limits.maxCost} is allowed (graphql.maxCost): ask for smaller pages or fewer fields`,
              { cost, limit: limits.maxCost },
            );
          }
        },
      };
    },
  ];
}
