/**
 * Query limits, checked during validation (before anything runs): selection depth,
 * and an estimated cost where every field counts 1 and a list field multiplies what
 * it selects by its page size (`first`, or the largest page when it comes from a
 * variable). Both fail with `LIMIT_EXCEEDED`.
 */
import {
  type ASTVisitor,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
} from 'graphql';
import { LimitExceededError } from '../errors.js';

/** The store never returns more than this many items per page. */
const MAX_PAGE = 1000;

function measure(
  selectionSet: SelectionSetNode | undefined,
  fragments: (name: string) => FragmentDefinitionNode | null | undefined,
  seen: Set<string>,
): { depth: number; cost: number } {
  if (selectionSet === undefined) return { depth: 0, cost: 0 };
  let depth = 0;
  let cost = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      const inner = measure(selection.selectionSet, fragments, seen);
      const first = selection.arguments?.find((arg) => arg.name.value === 'first');
      const size = first === undefined ? 1 : first.value.kind === Kind.INT ? Math.min(Number(first.value.value), MAX_PAGE) : MAX_PAGE;
      depth = Math.max(depth, (selection.selectionSet === undefined ? 0 : 1) + inner.depth);
      cost += 1 + size * inner.cost;
    } else {
      const set =
        selection.kind === Kind.INLINE_FRAGMENT
          ? selection.selectionSet
          : seen.has(selection.name.value)
            ? undefined // a cycle; graphql's own NoFragmentCycles rule reports it
            : fragments(selection.name.value)?.selectionSet;
      const name = selection.kind === Kind.FRAGMENT_SPREAD ? selection.name.value : null;
      if (name !== null) seen.add(name);
      const inner = measure(set, fragments, seen);
      if (name !== null) seen.delete(name);
      depth = Math.max(depth, inner.depth);
      cost += inner.cost;
    }
  }
  return { depth, cost };
}

/** Validation rules for `maxDepth` and `maxCost`. */
export function queryLimitRules(limits: { maxDepth: number; maxCost: number }) {
  return [
    (context: ValidationContext): ASTVisitor => ({
      OperationDefinition(node: OperationDefinitionNode) {
        const { depth, cost } = measure(node.selectionSet, (name) => context.getFragment(name), new Set());
        const fail = (message: string, details: Record<string, unknown>) =>
          context.reportError(new GraphQLError(message, { nodes: [node], originalError: new LimitExceededError(message, details) }));
        if (depth > limits.maxDepth) {
          fail(`the query is ${depth} levels deep; at most ${limits.maxDepth} are allowed (graphql.maxDepth)`, {
            depth,
            limit: limits.maxDepth,
          });
        }
        if (cost > limits.maxCost) {
          fail(`the query's estimated cost is ${cost}; at most ${limits.maxCost} is allowed (graphql.maxCost): ask for smaller pages`, {
            cost,
            limit: limits.maxCost,
          });
        }
      },
    }),
  ];
}
