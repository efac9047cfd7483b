/** Loads the SDL files in `schema/` and binds them to the resolvers. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';
import { packageRoot } from '../package-root.js';
import type { Resolvers } from './generated/resolvers-types.js';

export function loadTypeDefs(): string[] {
  const dir = join(packageRoot(), 'schema');
  return readdirSync(dir)
    .filter((name) => name.endsWith('.graphql'))
    .sort()
    .map((name) => readFileSync(join(dir, name), 'utf8'));
}

export function buildSchema(resolvers: Resolvers): GraphQLSchema {
  return makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers: resolvers as never });
}
