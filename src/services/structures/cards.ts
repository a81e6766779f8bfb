import type { EntityManager } from '@mikro-orm/postgresql';
import { STRUCTURE_CARD_JSON } from '../../search/cards.js';
import type { SearchHit } from '../../search/types.js';
import { type Visibility, visibleStructuresSql } from '../auth/visibility.js';

/**
 * Search hits as the API shows them, as JSON text: each structure's card (see search/cards.ts)
 * with the hit's score and highlights, in the hits' order. Only structures the caller may see: an
 * index can lag, never leak. One query whatever the count.
 */
export async function searchHitsJson(em: EntityManager, visible: Visibility, hits: SearchHit[]): Promise<string> {
  if (hits.length === 0) return '[]';
  const condition = visibleStructuresSql(visible, 'cs');
  const [row] = await em.execute<{ items: string | null }[]>(
    `select '[' || string_agg('{"structure":' || ${STRUCTURE_CARD_JSON} || ',"score":' || to_json(h.score) || ',"highlights":' || h.highlights || '}', ',' order by h.ord) || ']' as items
       from jsonb_to_recordset(?::jsonb) as h(id uuid, score float8, highlights text, ord integer)
       join structures cs on cs.id = h.id and ${condition.sql}`,
    [JSON.stringify(hits.map((h, ord) => ({ id: h.structureId, score: h.score, highlights: h.highlights, ord }))), ...condition.params],
  );
  return row?.items ?? '[]';
}
