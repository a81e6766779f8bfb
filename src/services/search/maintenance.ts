import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../../lib/logger.js';
import type { QueueSet } from '../../queue/queues.js';
import { allSearchDocuments, documentFingerprint, loadSearchDocuments } from '../../search/document.js';
import type { RebuildProgress, SearchIndex } from '../../search/types.js';
import { enqueueIndex } from './indexing.js';

async function structureCount(em: EntityManager): Promise<number> {
  const [row] = await em.execute<{ n: string }[]>('select count(*) as n from structures');
  return Number(row?.n ?? 0);
}

/**
 * Rebuilds `index` from Postgres (every structure, trashed ones included), then re-sends the
 * structures changed while it ran, so a rebuild next to live traffic ends up current; and repairs
 * the structure cards hits are shown from.
 */
export async function reindexAll(em: EntityManager, index: SearchIndex, onProgress?: (progress: RebuildProgress) => void) {
  const [{ started }] = await em.execute<{ started: string }[]>('select now()::text as started');
  const total = await structureCount(em);
  await index.rebuild(allSearchDocuments(em.fork()), total, onProgress);
  const changed = await em.execute<{ id: string }[]>('select id from structures where updated_at >= ?::timestamptz', [started]);
  const documents = await loadSearchDocuments(
    em.fork(),
    changed.map((r) => r.id),
  );
  await index.upsertMany([...documents.values()]);
  return { documents: total, replayed: documents.size, cardsRepaired: await repairStructureCards(em) };
}

/**
 * Rebuilds every kept structure card (structures.card_members, which search hits are shown from)
 * that is missing or says other than its structure now does; triggers keep them current, so this
 * repairs only what went around them. Returns how many were rewritten.
 */
export async function repairStructureCards(em: EntityManager): Promise<number> {
  const repaired = await em.execute<{ id: string }[]>(
    `update structures s set card_members = c.members
     from (select id, case when current_version_id is not null then structure_card_members(id) end as members from structures) c
     where s.id = c.id and s.card_members is distinct from c.members
     returning s.id`,
  );
  return repaired.length;
}

export interface DriftReport {
  structures: number;
  documents: number;
  /** Structures with no document, or documents with no structure (found only when the counts differ). */
  missing: number;
  orphaned: number;
  sampled: number;
  differing: number;
  reenqueued: number;
  rebuilt: boolean;
}

/**
 * Compares the index with Postgres: the counts (and, when they differ, every id), and the documents
 * of a random sample of structures. What differs is re-enqueued for the index job, which stays the
 * only writer. A backend whose stored schema is out of date is rebuilt instead.
 */
export async function checkSearchDrift(em: EntityManager, index: SearchIndex, queues: QueueSet, sample: number, log?: Logger): Promise<DriftReport> {
  if (await index.needsRebuild()) {
    const { documents } = await reindexAll(em, index);
    log?.info({ backend: index.backend, documents }, 'search index schema was out of date: rebuilt');
    return { structures: documents, documents, missing: 0, orphaned: 0, sampled: 0, differing: 0, reenqueued: 0, rebuilt: true };
  }
  const structures = await structureCount(em);
  const documents = await index.count();
  const stale = new Set<string>();
  let missing = 0;
  let orphaned = 0;
  if (structures !== documents) {
    const indexed = new Set<string>();
    for await (const ids of index.ids()) for (const id of ids) indexed.add(id);
    let after: string | undefined;
    for (;;) {
      const rows = await em.execute<{ id: string }[]>(`select id from structures ${after ? 'where id > ?' : ''} order by id limit 5000`, after ? [after] : []);
      if (rows.length === 0) break;
      after = rows[rows.length - 1].id;
      for (const { id } of rows) {
        if (indexed.delete(id)) continue;
        missing++;
        stale.add(id);
      }
    }
    // What is left in `indexed` has no structure: the index job deletes its document.
    orphaned = indexed.size;
    for (const id of indexed) stale.add(id);
  }
  const picked = sample > 0 ? await em.execute<{ id: string }[]>('select id from structures order by random() limit ?', [sample]) : [];
  const expected = await loadSearchDocuments(
    em.fork(),
    picked.map((r) => r.id),
  );
  const stored = await index.get([...expected.keys()]);
  let differing = 0;
  for (const [id, document] of expected) {
    const actual = stored.get(id);
    if (actual && documentFingerprint(actual) === documentFingerprint(document)) continue;
    differing++;
    stale.add(id);
  }
  for (const id of stale) await enqueueIndex(queues, id);
  const report = { structures, documents, missing, orphaned, sampled: expected.size, differing, reenqueued: stale.size, rebuilt: false };
  if (stale.size > 0) log?.warn({ backend: index.backend, ...report }, 'search index drifted from Postgres: re-enqueued what differs');
  return report;
}
