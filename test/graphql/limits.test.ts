/**
 * What a query may ask for, through the real server: the cost model counts every list,
 * the answer has a size limit, introspection and suggestions follow NODE_ENV, and
 * malformed input (deep JSON, a subscription over HTTP) is a 4xx, never a 500.
 */
import {
  type ASTVisitor,
  type FormattedExecutionResult,
  getNullableType,
  isInterfaceType,
  isListType,
  isObjectType,
  parse,
  TypeInfo,
  ValidationContext,
  validate,
  visit,
  visitWithTypeInfo,
} from 'graphql';
import { createClient as createSseClient } from 'graphql-sse';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { JSON_COST, LIST_SIZES, queryLimitRules } from '../../src/graphql/limits.js';
import { createResolvers } from '../../src/graphql/resolvers/index.js';
import { buildSchema } from '../../src/graphql/schema.js';
import { startApi, subscribe, type TestApi } from '../helpers/api.js';

let api: TestApi | null = null;
afterEach(async () => {
  await api?.stop();
  api = null;
});

const schema = buildSchema(createResolvers());

/** The cost the rule computes for `query` (from its error), or 0 when it is within `maxCost`. */
function cost(query: string, maxCost = 0, listSizes: Record<string, () => number> = {}): number {
  const errors = validate(schema, parse(query), queryLimitRules({ maxDepth: 100, maxCost, listSizes }));
  const found = errors.map((error) => /estimated cost is (\d+)/.exec(error.message)?.[1]).find((value) => value !== undefined);
  return found === undefined ? 0 : Number(found);
}

describe('query cost', () => {
  it('refuses 10,000 aliases of jobTypes { parameterSchema } from an anonymous caller before running anything', async () => {
    // Within graphql.maxTokens, to reach the cost rule.
    api = await startApi({ user: null, overrides: { 'graphql.maxTokens': 100_000 } });
    const query = `{ ${Array.from({ length: 10_000 }, (_, i) => `a${i}: jobTypes { parameterSchema }`).join(' ')} }`;
    const { status, body } = await api.gql(query);
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions?.code).toBe('LIMIT_EXCEEDED');
    expect(body.errors?.[0]?.message).toContain('graphql.maxCost');
    // One of them is fine.
    const one = await api.gql('{ jobTypes { name parameterSchema } }');
    expect(one.status).toBe(200);
    expect((one.body.data as { jobTypes: unknown[] }).jobTypes.length).toBe(api.conveyor.registry.types.length);
  });

  it('counts every list by its size: page sizes (defaults too), the real number of job types, and estimates for the rest', () => {
    expect(cost('{ jobTypes { name } }', 0, { 'Query.jobTypes': () => 7 })).toBe(1 + 7);
    expect(cost('{ jobTypes { parameterSchema } }', 0, { 'Query.jobTypes': () => 7 })).toBe(1 + 7 * JSON_COST);
    // logs(first) defaults to 100 when absent.
    expect(cost('{ job(id: "x") { logs { message } } }')).toBe(1 + 1 + 100);
    expect(cost('{ job(id: "x") { teamIds } }')).toBe(1 + 1 + (LIST_SIZES['Job.teamIds'] as number));
    expect(cost('query ($n: Int!) { jobs(first: $n) { edges { node { id } } } }')).toBe(1 + 1000 * (1 + 1 + 1));
    expect(cost('{ jobs(first: 10) { edges { node { ...f } } } } fragment f on Job { id parameters }')).toBe(
      1 + 10 * (1 + 1 + 1 + JSON_COST),
    );
  });

  it('measures each fragment once however often it is spread (a document of 1 KB cost 2^n steps)', async () => {
    const levels = 20;
    const fragments = ['fragment F0 on Query { __typename }'];
    for (let i = 1; i <= levels; i++) fragments.push(`fragment F${i} on Query { ...F${i - 1} ...F${i - 1} }`);
    const query = `query { ...F${levels} } ${fragments.join(' ')}`;
    // Run the rule alone and count how often it looks a fragment up: once per spread in
    // the document (41), not once per spread reached by walking them all (2^21).
    const document = parse(query);
    const typeInfo = new TypeInfo(schema);
    const context = new ValidationContext(schema, document, typeInfo, () => {});
    let lookups = 0;
    const getFragment = context.getFragment.bind(context);
    context.getFragment = (name) => {
      lookups++;
      return getFragment(name);
    };
    const [rule] = queryLimitRules({ maxDepth: 100, maxCost: 0 });
    visit(document, visitWithTypeInfo(typeInfo, (rule as (context: ValidationContext) => ASTVisitor)(context)));
    expect(lookups).toBe(2 * levels + 1);
    // The cost is exact, and the server refuses the document before running it.
    expect(cost(query)).toBe(2 ** levels);
    api = await startApi({ user: null });
    const { status, body } = await api.gql(query);
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', cost: 2 ** levels });
  });

  it('knows a size for every list field of the schema', () => {
    const missing: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__') || !(isObjectType(type) || isInterfaceType(type))) continue;
      for (const field of Object.values(type.getFields())) {
        const key = `${type.name}.${field.name}`;
        const paged = field.args.some((arg) => arg.name === 'first');
        if (isListType(getNullableType(field.type)) && !paged && LIST_SIZES[key] === undefined) missing.push(key);
      }
    }
    expect(missing).toEqual([]);
  });

  it('replaces an answer larger than graphql.maxResponseBytes with LIMIT_EXCEEDED', async () => {
    api = await startApi({ overrides: { 'graphql.maxResponseBytes': 2000 } });
    const { status, body } = await api.gql('{ jobTypes { name parameterSchema defaults } }');
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 2000 });
    expect(body.errors?.[0]?.message).toContain('graphql.maxResponseBytes');
    expect((await api.gql('{ viewer { userId } }')).status).toBe(200);
  });
});

describe('answer size', () => {
  const aliases = (count: number, field: (i: number) => string) => Array.from({ length: count }, (_, i) => field(i)).join(' ');

  /** A batch whose metadata holds `bytes` characters; returns its id. */
  async function bigBatch(bytes: number): Promise<string> {
    const submitted = await api?.gql<{ submitBatch: { batch: { id: string } } }>(
      'mutation($input: SubmitBatchInput!) { submitBatch(input: $input) { batch { id } } }',
      { input: { name: 'big', active: false, jobs: [{ type: 'echo' }], metadata: { notes: 'x'.repeat(bytes) } } },
    );
    const id = submitted?.body.data?.submitBatch.batch.id;
    expect(id).toBeTypeOf('string');
    return id as string;
  }

  it('stops building an answer once it passes graphql.maxResponseBytes: 900 KB of metadata under 2,000 aliases', async () => {
    // Within graphql.maxTokens, to reach execution.
    api = await startApi({ overrides: { 'graphql.maxTokens': 50_000 } });
    const id = await bigBatch(900_000);
    const response = await fetch(`${api.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': 'alice' },
      body: JSON.stringify({
        query: `query($id: ID!) { ${aliases(2000, (i) => `a${i}: batch(id: $id) { metadata }`)} }`,
        variables: { id },
      }),
    });
    const body = (await response.json()) as { data?: unknown; errors: { message: string; extensions: Record<string, unknown> }[] };
    expect(response.status).toBe(400);
    expect(body.data).toBeUndefined();
    // One error, with the request's id, instead of a masked internal error.
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0]?.extensions).toEqual({
      code: 'LIMIT_EXCEEDED',
      limit: 10_485_760,
      requestId: response.headers.get('x-request-id'),
    });
    expect(body.errors[0]?.message).toContain('graphql.maxResponseBytes');
    // A few of them fit.
    const few = await api.gql(`query($id: ID!) { ${aliases(3, (i) => `a${i}: batch(id: $id) { metadata }`)} }`, { id });
    expect(few.status).toBe(200);
  });

  it("counts an anonymous caller's jobTypes { parameterSchema } aliases by their real size", async () => {
    api = await startApi({ user: null, overrides: { 'graphql.maxResponseBytes': 100_000 } });
    // Within the cost limit, but megabytes of JSON Schema.
    const query = `{ ${aliases(1000, (i) => `a${i}: jobTypes { parameterSchema }`)} }`;
    const { status, body } = await api.gql(query);
    expect(status).toBe(400);
    expect(body.errors).toHaveLength(1);
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 100_000, requestId: expect.any(String) });
    // Over the websocket, where no finished answer is measured, the budget alone stops it.
    const answer = await new Promise<FormattedExecutionResult>((resolve, reject) => {
      api
        ?.client()
        .subscribe({ query }, { next: (result) => resolve(result as FormattedExecutionResult), error: reject, complete: () => undefined });
    });
    expect(answer.errors).toHaveLength(1);
    expect(answer.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 100_000 });
  });

  it('holds over the websocket too: queries, and each event of a subscription', async () => {
    api = await startApi({ overrides: { 'graphql.maxResponseBytes': 1_000_000 } });
    const id = await bigBatch(100_000);
    const client = api.client();
    const query = `query($id: ID!) { ${aliases(50, (i) => `a${i}: batch(id: $id) { metadata }`)} }`;
    const answer = await new Promise<FormattedExecutionResult>((resolve, reject) => {
      client.subscribe(
        { query, variables: { id } },
        { next: (result) => resolve(result as FormattedExecutionResult), error: reject, complete: () => undefined },
      );
    });
    expect(answer.data ?? null).toBeNull();
    expect(answer.errors).toHaveLength(1);
    expect(answer.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 1_000_000 });
    const updates = subscribe(
      client,
      `subscription($id: ID!) { batchUpdated(id: $id) { ${aliases(50, (i) => `a${i}: batch { metadata }`)} } }`,
      { id },
      () => true,
    );
    await expect(updates.finished).rejects.toMatchObject({ errors: [{ extensions: { code: 'LIMIT_EXCEEDED', limit: 1_000_000 } }] });
  });

  it("gives each subscription event's LIMIT_EXCEEDED the websocket's request id", async () => {
    api = await startApi({ overrides: { 'graphql.maxResponseBytes': 1_000_000 } });
    const id = await bigBatch(100_000);
    const socket = new WebSocket(api.wsUrl, 'graphql-transport-ws', { headers: { 'x-user-id': 'alice' } });
    const requestId = new Promise<string | undefined>((resolve) =>
      socket.once('upgrade', (res) => resolve(res.headers['x-request-id'] as string)),
    );
    const first = new Promise<{ errors?: { extensions?: Record<string, unknown> }[] }>((resolve, reject) => {
      socket.on('message', (data) => {
        const message = JSON.parse(String(data)) as { type: string; payload?: unknown };
        if (message.type === 'connection_ack') {
          const query = `subscription($id: ID!) { batchUpdated(id: $id) { ${aliases(50, (i) => `a${i}: batch { metadata }`)} } }`;
          socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables: { id } } }));
        } else if (message.type === 'next') resolve(message.payload as { errors?: { extensions?: Record<string, unknown> }[] });
      });
      socket.on('close', (code) => reject(new Error(`closed with ${code}`)));
    });
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
    try {
      const result = await first;
      expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', requestId: await requestId });
      expect(await requestId).toMatch(/./);
    } finally {
      socket.terminate();
    }
  });
});

describe('document size', () => {
  const variables = `query(${Array.from({ length: 50_000 }, (_, i) => `$v${i}: Int`).join(' ')}) { viewer { userId } }`;
  const directives = `{ viewer { userId ${'@include(if: true) '.repeat(40_000)} } }`;

  it('refuses documents of more than graphql.maxTokens tokens before parsing them, over HTTP, WebSocket and SSE', async () => {
    api = await startApi({ overrides: { 'graphql.maxRequestBytes': 2_000_000 } });
    for (const query of [variables, directives]) {
      const response = await fetch(`${api.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-user-id': 'alice' },
        body: JSON.stringify({ query }),
      });
      const body = (await response.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };
      expect(response.status).toBe(400);
      expect(body.errors).toHaveLength(1);
      expect(body.errors[0]?.extensions).toEqual({
        code: 'LIMIT_EXCEEDED',
        limit: 10_000,
        requestId: response.headers.get('x-request-id'),
      });
      expect(body.errors[0]?.message).toContain('graphql.maxTokens');
    }
    const overWs = await new Promise<unknown>((resolve) => {
      api?.client().subscribe({ query: directives }, { next: () => undefined, error: resolve, complete: () => undefined });
    });
    expect(overWs).toMatchObject([{ extensions: { code: 'LIMIT_EXCEEDED', limit: 10_000 } }]);
    const sse = createSseClient({ url: `${api.url}/graphql/stream`, headers: { 'x-user-id': 'alice' }, retryAttempts: 0 });
    const overSse = await new Promise<FormattedExecutionResult>((resolve, reject) => {
      sse.subscribe(
        { query: `subscription { jobEvents { jobId ${'@include(if: true) '.repeat(40_000)} } }` },
        { next: (result) => resolve(result as FormattedExecutionResult), error: reject, complete: () => undefined },
      );
    });
    sse.dispose();
    expect(overSse.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED' });
    // A query within the limit runs.
    expect((await api.gql('{ viewer { userId } }')).status).toBe(200);
  });
});

describe('schema exposure', () => {
  const introspect = '{ __schema { queryType { name } } }';
  const typo = '{ jobz(first: 1) { totalCount } }';

  it('allows introspection and suggestions outside production', async () => {
    api = await startApi();
    expect((await api.gql(introspect)).status).toBe(200);
    expect((await api.gql(typo)).body.errors?.[0]?.message).toContain('Did you mean');
  });

  it('turns both off by default with NODE_ENV=production, over HTTP and WebSocket; config can turn them on', async () => {
    const previous = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      api = await startApi();
      const http = await api.gql(introspect);
      expect(http.status).toBe(400);
      expect(http.body.errors?.[0]?.message).toMatch(/introspection/i);
      const wrong = await api.gql(typo);
      expect(wrong.status).toBe(400);
      expect(wrong.body.errors?.[0]?.message).toContain('jobz');
      expect(wrong.body.errors?.[0]?.message).not.toContain('Did you mean');
      const ws = await new Promise<unknown>((resolve) => {
        api?.client().subscribe({ query: introspect }, { next: resolve, error: resolve, complete: () => undefined });
      });
      expect(JSON.stringify(ws)).toMatch(/introspection/i);
      const wsTypo = await new Promise<unknown>((resolve) => {
        api?.client().subscribe({ query: typo }, { next: resolve, error: resolve, complete: () => undefined });
      });
      expect(JSON.stringify(wsTypo)).not.toContain('Did you mean');
      await api.stop();

      api = await startApi({ overrides: { 'graphql.introspection': true, 'graphql.suggestions': true } });
      expect((await api.gql(introspect)).status).toBe(200);
      expect((await api.gql(typo)).body.errors?.[0]?.message).toContain('Did you mean');
    } finally {
      process.env.NODE_ENV = previous;
    }
  });
});

describe('bad input is a 4xx', () => {
  /** JSON text nested `depth` objects deep (built as text: JSON.stringify itself would overflow). */
  const nested = (depth: number) => `${'{"a":'.repeat(depth)}"leaf"${'}'.repeat(depth)}`;
  const post = async (query: string, variables: string) => {
    const response = await fetch(`${api?.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': 'alice' },
      body: `{"query":${JSON.stringify(query)},"variables":${variables}}`,
    });
    return { status: response.status, body: (await response.json()) as { errors?: { message: string; extensions?: { code?: string } }[] } };
  };

  it('refuses deeply nested JSON in variables and literals with BAD_USER_INPUT', async () => {
    api = await startApi();
    const submit = 'mutation ($p: JSON) { submitJob(input: { type: "review", parameters: $p }) { job { id } } }';
    for (const depth of [5000, 100_000]) {
      const deep = await post(submit, `{"p":{"action":"x","deep":${nested(depth)}}}`);
      expect(deep.status).toBeLessThan(500);
      expect(deep.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(deep.body.errors?.[0]?.message).toMatch(/nested/);
    }
    const batch = await post(
      'mutation ($m: JSON) { submitBatch(input: { name: "n", metadata: $m, jobs: [{ type: "echo" }] }) { batch { id } } }',
      `{"m":${nested(5000)}}`,
    );
    expect(batch.status).toBeLessThan(500);
    expect(batch.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const literal = `mutation { submitJob(input: { type: "review", parameters: ${'{a: '.repeat(2000)}1${'}'.repeat(2000)} }) { job { id } } }`;
    const fromLiteral = await post(literal, '{}');
    expect(fromLiteral.status).toBeLessThan(500);
    expect(fromLiteral.body.errors?.[0]?.extensions?.code).not.toBe('INTERNAL_SERVER_ERROR');
    // A reasonable depth still works.
    expect((await post(submit, `{"p":{"action":"x","deep":${nested(20)}}}`)).body.errors).toBeUndefined();
  });

  it('answers a subscription sent over HTTP with 400 and where to send it', async () => {
    api = await startApi();
    const { status, body } = await api.gql('subscription { jobEvents { jobId } }');
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    expect(body.errors?.[0]?.message).toContain('websocket');
  });
});
