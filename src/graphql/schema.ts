/** Loads the SDL files in `schema/` and binds them to the resolvers. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';
import type { Resolvers } from './generated/resolvers-types.js';

/** `schema/` at the package root: two levels up from src/graphql, three from dist/src/graphql. */
function schemaDir(): string {
  for (const up of ['../../schema', '../../../schema']) {
    const dir = fileURLToPath(new URL(up, import.meta.url));
    if (existsSync(join(dir, 'common.graphql'))) return dir;
  }
  throw new Error('cannot find the schema/ folder next to the package');
}

export function loadTypeDefs(): string[] {
  const dir = schemaDir();
  return readdirSync(dir)
    .filter((name) => name.endsWith('.graphql'))
    .sort()
    .map((name) => readFileSync(join(dir, name), 'utf8'));
}

export function buildSchema(resolvers: Resolvers): GraphQLSchema {
  return makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers: resolvers as never });
}
