import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import { notifyWorkChanged, WORK_EVENTS_CHANNEL } from '../../db/notify.js';
import { TERMINAL_UPLOAD_STATES, Upload, type UploadError, type UploadParams } from '../../entities/Upload.js';
import type { StructureSummary, ValidationReport } from '../../formats/types.js';
import { isInfrastructureError } from '../../lib/infrastructure.js';
import type { BlobStore } from '../../storage/blobStore.js';
import type { Staging } from '../../storage/staging.js';
import { deleteBlobIfUnreferenced, lockBlobs } from '../quota/blobs.js';
import { releaseUploads } from '../quota/quota.js';
import { stageFailed, type UploadStage } from './refusals.js';

/** An upload as the stages read it (the columns of `uploads`). */
export interface UploadRow {
  id: string;
  owner_id: string;
  project_id: string;
  structure_id: string;
  creates_structure: boolean;
  state: string;
  filename: string;
  format_hint: string | null;
  received_sha256: string | null;
  params: UploadParams;
  blob_sha256: string | null;
  format: string | null;
  kind: string | null;
  summary: StructureSummary | null;
  validation: ValidationReport | null;
}

export async function loadUploads(em: EntityManager, ids: readonly string[]): Promise<UploadRow[]> {
  if (ids.length === 0) return [];
  return em.execute<UploadRow[]>(
    `select id, owner_id, project_id, structure_id, creates_structure, state, filename, format_hint, received_sha256, params,
            blob_sha256, format, kind, summary, validation
       from uploads where id = any(?::uuid[]) order by id`,
    [sqlArray(ids)],
  );
}

/** A received upload to record: its file is staged under its id. */
export interface NewUpload {
  id: string;
  ownerId: string;
  projectId: string;
  /** The structure it extends; a new one (createsStructure) when absent. */
  structureId?: string;
  createsStructure: boolean;
  filename: string;
  formatHint?: string | null;
  receivedBytes: number;
  receivedSha256: string | null;
  params: UploadParams;
  /** Content already in the blob store (a draft's checkpoint): the upload starts `processing`, at validation. */
  stored?: { blob: string; format: string };
}

/**
 * Records received uploads (state `received`), in one statement. Ids are the callers' (an import
 * item's upload has the item's id), so recording one again is a no-op. Returns each upload's
 * structure id.
 */
export async function createUploads(em: EntityManager, uploads: readonly NewUpload[]): Promise<Map<string, string>> {
  const structureIds = new Map(uploads.map((upload) => [upload.id, upload.structureId ?? randomUUID()]));
  if (uploads.length === 0) return structureIds;
  await em.execute(
    `insert into uploads (id, owner_id, project_id, structure_id, creates_structure, state, filename, format_hint, format, compression,
                          received_bytes, received_sha256, params, created_at, updated_at, blob_sha256)
     select x.id, x.owner_id, x.project_id, x.structure_id, x.creates_structure, case when x.blob is null then 'received' else 'processing' end,
            x.filename, x.format_hint, x.format, null, x.received_bytes, x.received_sha256, x.params, now(), now(), x.blob
       from jsonb_to_recordset(?::jsonb) as x(id uuid, owner_id uuid, project_id uuid, structure_id uuid, creates_structure boolean, filename text,
                                              format_hint text, format text, received_bytes bigint, received_sha256 text, params jsonb, blob text)
     on conflict (id) do nothing`,
    [
      JSON.stringify(
        uploads.map((upload) => ({
          id: upload.id,
          owner_id: upload.ownerId,
          project_id: upload.projectId,
          structure_id: structureIds.get(upload.id),
          creates_structure: upload.createsStructure,
          filename: upload.filename,
          format_hint: upload.formatHint ?? null,
          received_bytes: upload.receivedBytes,
          received_sha256: upload.receivedSha256,
          params: upload.params,
          blob: upload.stored?.blob ?? null,
          format: upload.stored?.format ?? null,
        })),
      ),
    ],
  );
  return structureIds;
}

export interface UploadEnd {
  uploadId: string;
  state: 'rejected' | 'failed';
  error: UploadError;
  /** What ingest learnt before the refusal, recorded as the one-by-one stages record it. */
  learnt?: { format: string; compression: string | null; validation: ValidationReport | null };
}

type EndServices = { blobs: BlobStore; staging: Staging };

/**
 * Ends uploads that will not become versions: state rejected (the file is at fault) or failed
 * (molvault is), and nothing half-made left. The staging files go first; then, in one transaction
 * (one statement when none holds a blob), the state changes, the blobs nothing else refers to and
 * the uploads' quota reservations go together, so whoever sees the final state also sees that
 * nothing is left behind. An upload ended meanwhile (another delivery of the same job) is left as it is.
 */
export async function endUploads(em: EntityManager, services: EndServices, ends: readonly UploadEnd[]): Promise<void> {
  if (ends.length === 0) return;
  const open = await em.execute<{ id: string; blob_sha256: string | null }[]>(
    `select id, blob_sha256 from uploads where id = any(?::uuid[]) and state in ('received', 'processing')`,
    [sqlArray(ends.map((end) => end.uploadId))],
  );
  if (open.length === 0) return;
  const blobOf = new Map(open.map((row) => [row.id, row.blob_sha256]));
  // An upload failed for the infrastructure's sake keeps its staged bytes: reconcile opens it again (maintenance/reopen.ts).
  const keepStaged = new Set(ends.filter((end) => end.state === 'failed' && isInfrastructureError(end.error.message)).map((end) => end.uploadId));
  await services.staging.removeMany(open.filter((row) => !keepStaged.has(row.id)).map((row) => row.id));
  const changes = JSON.stringify(
    ends.filter((end) => blobOf.has(end.uploadId)).map((end) => ({ id: end.uploadId, state: end.state, error: end.error, ...end.learnt })),
  );
  const setEnded = `update uploads u set state = x.state, error = x.error, blob_sha256 = null, format = coalesce(x.format, u.format),
                            compression = coalesce(x.compression, u.compression), validation = coalesce(x.validation, u.validation), updated_at = now()
                       from jsonb_to_recordset(?::jsonb) as x(id uuid, state text, error jsonb, format text, compression text, validation jsonb)
                      where u.id = x.id and u.state in ('received', 'processing')`;
  const hashes = [...new Set(open.flatMap((row) => (row.blob_sha256 ? [row.blob_sha256] : [])))];
  if (hashes.length === 0) {
    // Refused before any bytes were stored (the usual refusal): nothing to lock or delete, so one
    // statement ends them, releases their reservations and tells listeners.
    const ended = await em.execute<{ id: string }[]>(
      `with ended as (${setEnded} and u.blob_sha256 is null returning u.id),
            released as (delete from quota_reservations where upload_id in (select id from ended))
       select id, pg_notify(?, id::text) from ended`,
      [changes, WORK_EVENTS_CHANNEL],
    );
    // Any that got a blob meanwhile (another delivery got further) end the long way.
    const done = new Set(ended.map((row) => row.id));
    const others = ends.filter((end) => blobOf.has(end.uploadId) && !done.has(end.uploadId));
    if (others.length > 0) await endUploads(em, services, others);
    return;
  }
  const ended = await em.transactional(async (tx) => {
    await lockBlobs(tx, hashes);
    const rows = await tx.execute<{ id: string }[]>(`${setEnded} returning u.id`, [changes]);
    const endedIds = rows.map((row) => row.id);
    const released = new Set(endedIds.map((id) => blobOf.get(id)).filter((hash): hash is string => !!hash));
    for (const hash of [...released].sort()) await deleteBlobIfUnreferenced(tx, services.blobs, hash);
    await releaseUploads(tx, endedIds);
    return endedIds;
  });
  await notifyWorkChanged(em, ended);
}

/** endUploads for one upload. */
export async function endUpload(em: EntityManager, services: EndServices, uploadId: string, state: 'rejected' | 'failed', error: UploadError): Promise<void> {
  await endUploads(em, services, [{ uploadId, state, error }]);
}

/** A stage's job failed for good (retries exhausted, or found so by reconcile): the upload fails with where it stopped. */
export async function failUploadStage(em: EntityManager, services: EndServices, stage: UploadStage, uploadId: string, error: Error): Promise<void> {
  await endUpload(em, services, uploadId, 'failed', stageFailed(stage, error));
}

/** The last step of stored uploads: searchable now (reconcile stops coming back for them), and whoever waits is told. */
export async function markIndexed(em: EntityManager, uploadIds: readonly string[]): Promise<void> {
  if (uploadIds.length === 0) return;
  await em.execute('update uploads set indexed_at = now() where id = any(?::uuid[]) and indexed_at is null', [sqlArray(uploadIds)]);
  await notifyWorkChanged(em, uploadIds);
}

/** The upload once it has ended for whoever waits on it: stored and searchable, refused or failed; else undefined. */
export async function finishedUpload(em: EntityManager, uploadId: string): Promise<Upload | undefined> {
  const row = await em.findOne(Upload, { id: uploadId });
  if (!row) return undefined;
  if (row.state === 'stored' && !row.indexedAt) return undefined; // stored but not yet searchable
  return TERMINAL_UPLOAD_STATES.includes(row.state) ? row : undefined;
}
