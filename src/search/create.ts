import type { Config } from '../config/index.js';
import type { Orm } from '../db/orm.js';
import type { Logger } from '../lib/logger.js';
import { PostgresSearchIndex } from './postgres.js';
import type { SearchIndex } from './types.js';

/** The configured backend (or the one asked for, e.g. by `molvault reindex --backend`). */
export async function createSearchIndex(config: Config, orm: Orm, log: Logger, backend: Config['searchBackend'] = config.searchBackend): Promise<SearchIndex> {
  if (backend === 'typesense') {
    if (!config.typesense) throw new Error('the Typesense search backend needs TYPESENSE_URL (and TYPESENSE_API_KEY)');
    // Typesense's client is loaded only where it is the backend.
    const { TypesenseSearchIndex } = await import('./typesense.js');
    return new TypesenseSearchIndex({ url: config.typesense.url, apiKey: config.typesense.apiKey, alias: config.typesense.collection, log });
  }
  return new PostgresSearchIndex(orm, log, config.searchConnections);
}
