/** The job store on MongoDB: the operations of `store.ts` over the MongoDB engine. */
import type { Db } from 'mongodb';
import { StoreUnavailableError } from '../../errors.js';
import { Store, type StoreOptions } from '../store.js';
import { MongoEngine, type MongoEngineOptions, mongoClient } from './mongodb-engine.js';

export interface MongoStoreOptions extends MongoEngineOptions, StoreOptions {
  /** A replica set (or sharded cluster) connection string. */
  uri: string;
  /** Database name. Default `conveyor`. */
  database?: string;
  /** Connection pool size. Default 20. */
  maxPoolSize?: number;
  /** How long to wait for a server at start and for each operation's server selection. Default 10000. */
  serverSelectionTimeoutMS?: number;
  /** Socket/operation timeout. Default 30000. */
  socketTimeoutMS?: number;
}

export class MongoStore extends Store {
  declare readonly engine: MongoEngine;

  /** The database, for GridFS result files next to the jobs (handed to `results/` by the composition root). */
  database(): Db {
    return this.engine.db;
  }

  /** Drops this store's database (tests only). */
  async dropDatabase(): Promise<void> {
    await this.engine.db.dropDatabase();
  }
}

/**
 * Connects, refuses a standalone server (no change streams or transactions there),
 * creates the indexes and measures the server's clock.
 */
export async function createMongoStore(options: MongoStoreOptions): Promise<MongoStore> {
  const client = mongoClient(options.uri, {
    maxPoolSize: options.maxPoolSize ?? 20,
    serverSelectionTimeoutMS: options.serverSelectionTimeoutMS ?? 10_000,
    socketTimeoutMS: options.socketTimeoutMS ?? 30_000,
  });
  try {
    await client.connect();
    const hello = await client.db('admin').command({ hello: 1 });
    if (typeof hello.setName !== 'string' && hello.msg !== 'isdbgrid') {
      throw new StoreUnavailableError(
        'MongoDB at the configured URI is a standalone server; Conveyor needs a replica set (change streams and transactions). ' +
          'Start mongod with --replSet and run rs.initiate() (a single-node replica set is enough).',
      );
    }
    const engine = new MongoEngine(client, client.db(options.database ?? 'conveyor'), options);
    await engine.init();
    return new MongoStore(engine, options);
  } catch (error) {
    await client.close().catch(() => {});
    if (error instanceof StoreUnavailableError) throw error;
    throw new StoreUnavailableError(`cannot use MongoDB: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
