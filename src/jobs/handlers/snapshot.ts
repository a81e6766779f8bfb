import { LockMode } from '@mikro-orm/core';
import { z } from 'zod';
import { Structure } from '../../entities/Structure.js';
import { StructureVersion } from '../../entities/StructureVersion.js';
import { Upload } from '../../entities/Upload.js';
import { lockBlob } from '../../services/quota/blobs.js';
import { chargeUpload, userHoldsBlob } from '../../services/quota/quota.js';
import { endUpload } from '../../services/upload/uploads.js';
import { removeCheckpointedDraft } from '../../services/versions/drafts.js';
import { pruneStructure } from '../../services/versions/pruning.js';
import { defineJob, type JobContext } from '../define.js';
import { enqueue } from '../enqueue.js';
import { indexJob } from './searchIndex.js';

const data = z.object({ uploadId: z.uuid(), ownerId: z.uuid() });

/** Validated upload → a new StructureVersion, numbered under a row lock, in one transaction. */
export const snapshotJob = defineJob({
  name: 'snapshot',
  queue: 'snapshot',
  data,
  jobId: (d) => `snapshot-${d.uploadId}`,
  handle: (input, ctx) => snapshotStage(input, ctx),
  async onFinalFailure({ uploadId }, error, ctx) {
    await endUpload(ctx.em, ctx, uploadId, 'failed', { status: 500, code: 'snapshot_failed', message: `Saving the version failed: ${error.message}` });
  },
});

/** The snapshot stage (shared with runUploadPipeline): the version, its charge, pruning, then indexing enqueued. */
export async function snapshotStage({ uploadId, ownerId }: z.infer<typeof data>, ctx: JobContext) {
  const outcome = await ctx.em.transactional(async (tx) => {
    const upload = await tx.findOne(Upload, { id: uploadId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!upload) return { skipped: 'missing' as const };
    if (upload.state === 'stored') return { structureId: upload.structureId, version: upload.version, skipped: 'already stored' as const };
    if (upload.state !== 'processing' || !upload.blob || !upload.summary || !upload.validation || !upload.format) {
      return { skipped: upload.state };
    }
    await lockBlob(tx, upload.blob);
    // Decided under the blob's lock, before the version exists: do these bytes cost the owner anything new?
    const [blobRow] = await tx.execute<{ size: string }[]>('select size from blobs where sha256 = ?', [upload.blob]);
    const addedBytes = (await userHoldsBlob(tx, upload.owner, upload.blob)) ? 0 : Number(blobRow?.size ?? 0);
    const params = upload.params;
    if (upload.createsStructure) {
      await tx.execute(
        `insert into structures (id, project_id, owner_id, name, description, kind, tags, metadata, created_at, updated_at)
           values (?, ?, ?, ?, ?, ?, array(select jsonb_array_elements_text(?::jsonb)), ?::jsonb, ?, ?)
           on conflict (id) do nothing`,
        [
          upload.structureId,
          upload.project,
          upload.owner,
          params.name ?? defaultName(upload.filename),
          params.description ?? '',
          upload.kind ?? 'other',
          JSON.stringify(params.tags ?? []),
          JSON.stringify(params.metadata ?? {}),
          // Millisecond times like every other row: list cursors compare them exactly.
          new Date(),
          new Date(),
        ],
      );
    }
    const structure = await tx.findOne(Structure, { id: upload.structureId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!structure || structure.deletedAt) return { gone: true as const };
    const [last] = await tx.execute<{ n: number | null }[]>('select max(number) as n from structure_versions where structure_id = ?', [structure.id]);
    const number = (last?.n ?? 0) + 1;
    const version = tx.create(StructureVersion, {
      structure: structure.id,
      number,
      blob: upload.blob,
      format: upload.format,
      filename: upload.filename,
      message: params.message ?? null,
      author: upload.owner,
      summary: upload.summary,
      validation: upload.validation,
      pinned: false,
      upload: upload.id,
    });
    await tx.flush();
    structure.currentVersion = version.id;
    if (upload.kind) structure.kind = upload.kind as typeof structure.kind;
    if (!upload.createsStructure) {
      if (params.name) structure.name = params.name;
      if (params.description !== undefined) structure.description = params.description;
      if (params.tags) structure.tags = params.tags;
      if (params.metadata) structure.metadata = { ...structure.metadata, ...params.metadata };
    }
    structure.updatedAt = new Date();
    if (params.fromDraft) await removeCheckpointedDraft(tx, structure.id, upload.id);
    upload.state = 'stored';
    upload.version = number;
    await tx.flush();
    // The version is charged and the upload's reservation released in this same transaction.
    // Bytes that already have derivatives bring those along (charged as derived), which only a recomputation counts.
    const [derived] = await tx.execute<{ n: string }[]>('select count(*) as n from derivations where source_blob_sha256 = ?', [upload.blob]);
    await chargeUpload(tx, upload.owner, upload.id, addedBytes, { recompute: Number(derived?.n ?? 0) > 0 });
    return { structureId: structure.id, version: number };
  });
  if ('gone' in outcome) {
    await endUpload(ctx.em, ctx, uploadId, 'rejected', {
      status: 409,
      code: 'structure_deleted',
      message: 'The structure was deleted while this version was being stored.',
    });
    return outcome;
  }
  if ('structureId' in outcome && outcome.structureId) {
    // The project's retention policy, now that there is one more version (a retry prunes nothing new).
    const pruned = await pruneStructure(ctx.em, ctx.blobs, outcome.structureId);
    await enqueue(ctx.queues, indexJob, { structureId: outcome.structureId, ownerId, uploadId });
    if (pruned.versions > 0) return { ...outcome, pruned };
  }
  return outcome;
}

/** A new structure's name when the upload gives none: its file name without extensions. */
export function defaultName(filename: string): string {
  return filename.replace(/\.(gz|bz2)$/i, '').replace(/\.[^.]+$/, '') || filename;
}
