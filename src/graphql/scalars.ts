import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from 'graphql';

function parseDate(value: unknown): Date {
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) {
    const date = new Date(value);
    if (!Number.isNaN(date.getTime())) return date;
  }
  throw new GraphQLError(
    `DateTime must be an ISO 8601 date and time with a zone, e.g. 2026-11-22T18:00:00Z; got ${JSON.stringify(value)}`,
    {
      extensions: { code: 'BAD_USER_INPUT' },
    },
  );
}

export const DateTime = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  serialize(value) {
    if (value instanceof Date) return value.toISOString();
    if (typeof value === 'string') return parseDate(value).toISOString();
    throw new GraphQLError('DateTime cannot represent this value');
  },
  parseValue: parseDate,
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('DateTime must be a string', { extensions: { code: 'BAD_USER_INPUT' } });
    return parseDate(ast.value);
  },
});

/**
 * Deepest nesting of objects and arrays a JSON value may have. Deeper values could only
 * make recursive code (serialising, hashing, storing) overflow its stack later.
 */
export const MAX_JSON_DEPTH = 100;

function tooDeep(): GraphQLError {
  return new GraphQLError(`JSON values may be nested at most ${MAX_JSON_DEPTH} levels deep`, {
    extensions: { code: 'BAD_USER_INPUT', limit: MAX_JSON_DEPTH },
  });
}

/** Checks the nesting without recursion, so a value of any depth is measured safely. */
function checkDepth(value: unknown): unknown {
  const stack: [unknown, number][] = [[value, 0]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [node, depth] = next;
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= MAX_JSON_DEPTH) throw tooDeep();
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return value;
}

function literal(ast: ValueNode, variables: Record<string, unknown> | null | undefined, depth = 0): unknown {
  if ((ast.kind === Kind.LIST || ast.kind === Kind.OBJECT) && depth >= MAX_JSON_DEPTH) throw tooDeep();
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map((item) => literal(item, variables, depth + 1));
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((field) => [field.name.value, literal(field.value, variables, depth + 1)]));
    case Kind.VARIABLE:
      return checkDepth(variables?.[ast.name.value] ?? null);
    default:
      throw new GraphQLError(`JSON cannot represent ${ast.kind}`);
  }
}

export const JSONScalar = new GraphQLScalarType<unknown, unknown>({
  name: 'JSON',
  serialize: (value) => value,
  parseValue: checkDepth,
  parseLiteral: (ast, variables) => literal(ast, variables),
});
