import type { EntityManager } from '@mikro-orm/postgresql';
import type { SearchHit } from '../../search/types.js';
import type { Visibility } from '../../services/auth/visibility.js';
import { searchHitsJson } from '../../services/structures/cards.js';

/**
 * Search hits as the API shows them, as JSON text: each structure's card with the hit's score and
 * highlights, in the hits' order; only structures the searcher may see (an index can lag, never leak).
 */
export function presentSearchItems(em: EntityManager, visible: Visibility, hits: SearchHit[]): Promise<string> {
  return searchHitsJson(em, visible, hits);
}
