import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { enqueue } from '../../queue/enqueue.js';
import { indexJob } from '../../queue/jobs.js';
import type { QueueSet } from '../../queue/queues.js';
import { loadSearchDocuments } from '../../search/document.js';
import type { SearchIndex } from '../../search/types.js';

/**
 * THE way to keep search in step: call this after any committed change to a structure (new version,
 * name, description, tags, metadata, trash, restore, purge). The index job reads the structure as it
 * is when it runs, so calling it once per change is enough and calling it twice is harmless.
 * Each call gets its own job id: a change made while an earlier job runs is never swallowed by it.
 */
export async function enqueueIndex(queues: QueueSet, structureId: string): Promise<string> {
  const stamp = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  return enqueue(queues, indexJob, { structureId, stamp });
}

/** enqueueIndex for several structures at once (a tag renamed across a project, a metadata import). */
export async function enqueueIndexAll(queues: QueueSet, structureIds: readonly string[]): Promise<void> {
  await Promise.all(structureIds.map((id) => enqueueIndex(queues, id)));
}

/**
 * What the index job does: each structure's search document upserted as Postgres has it now, or
 * deleted once the structure is gone. The only index writer besides `molvault reindex`.
 */
export async function indexStructures(ctx: { em: EntityManager; search: SearchIndex }, structureIds: readonly string[]) {
  const documents = await loadSearchDocuments(ctx.em, [...structureIds]);
  if (structureIds.length === 1) {
    const document = documents.get(structureIds[0]);
    if (document) await ctx.search.upsert(document);
    else await ctx.search.delete(structureIds[0]);
  } else {
    await ctx.search.upsertMany([...documents.values()]);
    for (const id of structureIds) if (!documents.has(id)) await ctx.search.delete(id);
  }
  return { indexed: documents.size, deleted: structureIds.length - documents.size };
}
