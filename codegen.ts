/**
 * GraphQL Code Generator: typed resolvers from schema/*.graphql, with the store's
 * record types as mappers. Run `npm run codegen`; CI fails when the committed output
 * differs from what this produces. Never edit the generated file by hand.
 */
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: 'schema/*.graphql',
  generates: {
    'src/graphql/generated/resolvers-types.ts': {
      plugins: ['typescript', 'typescript-resolvers'],
      config: {
        useIndexSignature: true,
        enumsAsTypes: true,
        useTypeImports: true,
        strictScalars: true,
        scalars: { DateTime: 'Date', JSON: 'unknown' },
        contextType: '../context.js#GraphQLContext',
        mappers: {
          Job: '../../domain/types.js#Job as JobRecord',
          Batch: '../../domain/types.js#Batch as BatchRecord',
          LogEntry: '../../domain/types.js#LogEntry as LogEntryRecord',
          Viewer: '../../domain/types.js#Principal as PrincipalRecord',
          Stats: '../resolvers/stats.js#StatsModel',
          JobType: '../../handlers/registry.js#JobTypeInfo',
          JobConnection: '../connections.js#JobConnectionModel',
          BatchConnection: '../connections.js#BatchConnectionModel',
          JobChange: '../feed.js#JobChangeModel',
          BatchChange: '../feed.js#BatchChangeModel',
          DeliveryChange: '../feed.js#DeliveryChangeModel',
          Delivery: '../../domain/types.js#Delivery as DeliveryRecord',
          JobResults: '../resolvers/results.js#JobResultsModel',
          MarkdownResult: '../resolvers/results.js#MarkdownModel',
          ResultFile: '../resolvers/results.js#ResultFileModel',
        },
      },
    },
  },
};

export default config;
