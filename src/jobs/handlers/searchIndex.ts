import { z } from 'zod';
import { sqlArray } from '../../db/arrays.js';
import { Upload } from '../../entities/Upload.js';
import { loadSearchDocuments } from '../../search/document.js';
import { notifyUploadChanged } from '../../services/upload/events.js';
import { defineJob } from '../define.js';

const data = z.object({
  structureId: z.uuid(),
  /** Not needed (the structure names its owner); accepted from older enqueuers. */
  ownerId: z.uuid().optional(),
  /** Set when an upload triggered the indexing: makes the job id deterministic per upload. */
  uploadId: z.uuid().optional(),
  /** Otherwise a stamp of the change (e.g. updatedAt in ms), one job per change. */
  stamp: z.string().optional(),
  /** A bulk import's chunk: all these structures (structureId is the first), and the uploads that made them. */
  structureIds: z.array(z.uuid()).max(1000).optional(),
  uploadIds: z.array(z.uuid()).max(1000).optional(),
});

/**
 * Structure → its search document upserted (or deleted once the structure is gone). The only index
 * writer besides `molvault reindex`. Enqueue it through `enqueueIndex` (services/search/indexing.ts).
 */
export const indexJob = defineJob({
  name: 'index',
  queue: 'index',
  data,
  jobId: (d) => (d.uploadId ? `index-${d.uploadId}` : `index-${d.structureId}-${d.stamp ?? 'now'}`),
  async handle({ structureId, uploadId, structureIds, uploadIds }, ctx) {
    const { em } = ctx;
    if (structureIds) {
      const documents = await loadSearchDocuments(em, structureIds);
      await ctx.search.upsertMany([...documents.values()]);
      for (const id of structureIds) if (!documents.has(id)) await ctx.search.delete(id);
      if (uploadIds?.length) {
        await em.execute(`update uploads set indexed_at = now() where id = any(?::uuid[]) and indexed_at is null`, [sqlArray(uploadIds)]);
        await em.execute(`select pg_notify('molvault_upload', id) from jsonb_array_elements_text(?::jsonb) as id`, [JSON.stringify(uploadIds)]);
      }
      return { indexed: documents.size, deleted: structureIds.length - documents.size };
    }
    const document = (await loadSearchDocuments(em, [structureId])).get(structureId);
    if (document) await ctx.search.upsert(document);
    else await ctx.search.delete(structureId);
    // Either way the upload's indexing is done; reconcile must not come back for it.
    if (uploadId) {
      await em.nativeUpdate(Upload, { id: uploadId, indexedAt: null }, { indexedAt: new Date() });
      await notifyUploadChanged(em, uploadId);
    }
    return document ? { indexed: true } : { deleted: true };
  },
});
