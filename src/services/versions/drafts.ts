import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Draft } from '../../entities/Draft.js';
import type { Structure } from '../../entities/Structure.js';
import { TERMINAL_UPLOAD_STATES, Upload } from '../../entities/Upload.js';
import { inspectSessionFile } from '../../formats/session.js';
import { extensionHint, formatsCompatible, sniffCompression, sniffFormat } from '../../formats/sniff.js';
import { FORMAT_LABELS, FORMATS, type Format, MEDIA_TYPES } from '../../formats/types.js';
import { Refusal } from '../../lib/refusal.js';
import { type CpuPool, TaskTimeoutError } from '../../pool/cpuPool.js';
import type { AppContext } from '../../runtime/context.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { scratchFile } from '../../storage/create.js';
import { assertBlobsStored, deleteBlobIfUnreferenced, lockBlob, recordBlob } from '../quota/blobs.js';
import { refreshUsage } from '../quota/usage.js';
import { createUploads } from '../upload/uploads.js';

/** A refusal with the HTTP status and stable code the API answers with. */
export class DraftRefusal extends Refusal {}

export interface ReceivedDraft {
  /** The staging id the body was streamed under (removed whatever happens). */
  stagingId: string;
  filename: string;
  bytes: number;
  sha256: string;
  head: Buffer;
  declaredFormat?: Format;
}

interface Content {
  path: string;
  sha256: string;
  size: number;
  detected?: Format;
  reason?: string;
}

/**
 * The bytes as they will be stored. An uncompressed body (the usual autosave, LZ4 sessions included)
 * is already hashed and fsynced by the receiver, so it moves into the blob store as it is; a gzip or
 * bzip2 body is unwrapped with ingest's limits, like an upload.
 */
async function contentOf(app: AppContext, received: ReceivedDraft, stagedFile: string): Promise<Content> {
  if (!sniffCompression(received.head)) {
    const sniff = sniffFormat(received.head);
    return { path: stagedFile, sha256: received.sha256, size: received.bytes, detected: sniff.format, reason: sniff.format ? undefined : sniff.reason };
  }
  const tempFile = await scratchFile(app.config, 'draft');
  // In the CPU pool like every other unpacking: a large or hostile body must not hold up the API's event loop.
  let result: Awaited<ReturnType<CpuPool['ingest']>>;
  try {
    result = await app.sharedCpuPool().ingest({
      stagingFile: stagedFile,
      tempFile,
      maxExpandedBytes: app.config.maxExpandedBytes,
      maxExpansionRatio: app.config.maxExpansionRatio,
      expectedRawSha256: received.sha256,
    });
  } catch (error) {
    await fs.rm(tempFile, { force: true });
    if (error instanceof TaskTimeoutError) throw new DraftRefusal(422, 'unpack_aborted', error.message);
    throw error;
  }
  if (!result.ok) throw new DraftRefusal(result.status, result.code, result.message);
  return { path: tempFile, sha256: result.sha256, size: result.size, detected: result.detected, reason: result.sniffReason };
}

/**
 * What a draft must be before it is saved. Its format is decided by content (as for uploads), a
 * session structure takes only session drafts (header checked) and a structure only structure
 * formats. A structure draft is not parsed here: autosave must stay fast and keep half-edited work;
 * the checkpoint parses it through the normal pipeline and refuses it there, keeping the draft.
 */
async function checkFormat(structure: Structure, received: ReceivedDraft, content: Content): Promise<Format> {
  const detected = content.detected;
  if (!detected) {
    throw new DraftRefusal(415, 'unsupported_format', content.reason ?? 'molvault does not recognise this file format.', { supported: FORMATS });
  }
  if (received.declaredFormat && !formatsCompatible(received.declaredFormat, detected)) {
    throw new DraftRefusal(
      415,
      'format_mismatch',
      `The draft says it is ${FORMAT_LABELS[received.declaredFormat]}, but its content is ${FORMAT_LABELS[detected]}.`,
      {
        declared: received.declaredFormat,
        detected,
      },
    );
  }
  const claimsSession = received.declaredFormat === 'cxs' || extensionHint(received.filename) === 'cxs';
  if ((structure.kind === 'session' || claimsSession) && detected !== 'cxs') {
    throw new DraftRefusal(415, 'not_a_session', `A draft of a ChimeraX session must be a session, but this content is ${FORMAT_LABELS[detected]}.`, {
      detected,
    });
  }
  if (structure.kind !== 'session' && detected === 'cxs') {
    throw new DraftRefusal(
      415,
      'session_draft_for_structure',
      'This structure is not a session, so its draft cannot be a ChimeraX session; save the session as a structure of its own.',
    );
  }
  if (detected === 'cxs') {
    const outcome = await inspectSessionFile(content.path);
    if (!outcome.ok) throw new DraftRefusal(422, outcome.code, outcome.message, { problems: outcome.report.problems });
  }
  return detected;
}

/** Saves (or replaces) the draft of a structure. The previous draft's blob is deleted once nothing else holds it. */
export async function saveDraft(app: AppContext, em: EntityManager, structure: Structure, received: ReceivedDraft): Promise<Draft> {
  let content: Content | undefined;
  try {
    // The body as a file (the staged one, or a copy from S3) for as long as it is checked and stored.
    return await app.staging.withFile(received.stagingId, async (stagedFile) => {
      content = await contentOf(app, received, stagedFile);
      const format = await checkFormat(structure, received, content);
      const saved = content;
      // Put before the transaction, never inside it (assertBlobsStored says why).
      await app.blobs.putFile(saved.path, { sha256: saved.sha256, size: saved.size }, { move: true });
      return await em.transactional(async (tx) => {
        // The structure row serialises saves, checkpoints and deletes of its draft.
        await tx.execute('select id from structures where id = ? for update', [structure.id]);
        const previous = await tx.findOne(Draft, { structure: structure.id });
        const oldBlob = previous?.blob;
        const held = [...new Set([saved.sha256, oldBlob].filter((b): b is string => !!b))].sort();
        for (const sha256 of held) await lockBlob(tx, sha256); // in one order, so two saves cannot deadlock
        await assertBlobsStored(app.blobs, [saved.sha256]);
        await recordBlob(tx, { sha256: saved.sha256, size: saved.size, storedSize: saved.size, mediaType: MEDIA_TYPES[format] });
        const draft =
          previous ??
          tx.create(Draft, {
            structure: structure.id,
            owner: structure.owner,
            blob: saved.sha256,
            format,
            filename: received.filename,
            size: saved.size,
            checkpointUpload: null,
          });
        draft.blob = saved.sha256;
        draft.format = format;
        draft.filename = received.filename;
        draft.size = saved.size;
        draft.checkpointUpload = null; // new content: a running checkpoint of the old one must not delete it
        draft.updatedAt = new Date();
        await tx.flush();
        if (oldBlob && oldBlob !== saved.sha256) await deleteBlobIfUnreferenced(tx, app.blobs, oldBlob);
        return draft;
      });
    });
  } finally {
    await app.staging.remove(received.stagingId);
    if (content) await fs.rm(content.path, { force: true });
  }
}

/** Deletes a structure's draft; false when it had none. */
export async function deleteDraft(em: EntityManager, blobs: BlobStore, structureId: string): Promise<boolean> {
  return em.transactional(async (tx) => {
    await tx.execute('select id from structures where id = ? for update', [structureId]);
    const draft = await tx.findOne(Draft, { structure: structureId });
    if (!draft) return false;
    const blob = draft.blob;
    await lockBlob(tx, blob);
    await tx.nativeDelete(Draft, { id: draft.id });
    await deleteBlobIfUnreferenced(tx, blobs, blob);
    return true;
  });
}

/**
 * Starts turning the draft into a version: an upload that enters the pipeline at validation (the
 * bytes are already content-addressed), so the version gets its summary, number and index entry the
 * normal way. The draft stays until the snapshot stores the version (a refused checkpoint keeps it),
 * and a repeated checkpoint of the same content returns the upload already under way.
 */
export async function startCheckpoint(
  em: EntityManager,
  structure: Structure,
  userId: string,
  message: string | undefined,
): Promise<{ upload: Pick<Upload, 'id' | 'state'>; started: boolean } | undefined> {
  return em.transactional(async (tx) => {
    await tx.execute('select id from structures where id = ? for update', [structure.id]);
    const draft = await tx.findOne(Draft, { structure: structure.id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!draft) return undefined;
    if (draft.checkpointUpload) {
      const running = await tx.findOne(Upload, { id: draft.checkpointUpload });
      if (running && !TERMINAL_UPLOAD_STATES.includes(running.state)) return { upload: running, started: false };
    }
    const uploadId = randomUUID();
    await createUploads(tx, [
      {
        id: uploadId,
        ownerId: userId,
        projectId: structure.project,
        structureId: structure.id,
        createsStructure: false,
        filename: draft.filename,
        formatHint: draft.format,
        receivedBytes: draft.size,
        receivedSha256: null,
        params: { ...(message !== undefined ? { message } : {}), fromDraft: true },
        stored: { blob: draft.blob, format: draft.format },
      },
    ]);
    draft.checkpointUpload = uploadId;
    await tx.flush();
    const upload = { id: uploadId, state: 'processing' as const };
    return { upload, started: true };
  });
}

/** Called by the snapshot that stored a checkpoint: the draft it came from is now a version (its blob stays, the version holds it). */
export async function removeCheckpointedDraft(tx: EntityManager, structureId: string, uploadId: string): Promise<void> {
  await tx.execute('delete from drafts where structure_id = ? and checkpoint_upload = ?', [structureId, uploadId]);
}

/**
 * Deletes drafts not saved for `retentionDays` and their blobs when nothing else holds them.
 * For the cleanup schedule (issue 6); returns how many drafts went.
 */
export async function deleteExpiredDrafts(em: EntityManager, blobs: BlobStore, retentionDays: number): Promise<number> {
  const cutoff = new Date(Date.now() - retentionDays * 24 * 3600 * 1000);
  const expired = await em.find(Draft, { updatedAt: { $lt: cutoff } }, { fields: ['id', 'structure'] });
  let deleted = 0;
  for (const draft of expired) {
    const gone = await em.transactional(async (tx) => {
      const [owner] = await tx.execute<{ owner_id: string }[]>('select owner_id from structures where id = ? for update', [draft.structure]);
      // Read again under the lock: a save in between makes it fresh again.
      const current = await tx.findOne(Draft, { id: draft.id, updatedAt: { $lt: cutoff } });
      if (!current) return false;
      await lockBlob(tx, current.blob);
      await tx.nativeDelete(Draft, { id: current.id });
      await deleteBlobIfUnreferenced(tx, blobs, current.blob);
      return owner?.owner_id ?? true;
    });
    if (gone) deleted++;
    if (typeof gone === 'string') await refreshUsage(em, gone);
  }
  return deleted;
}

export function serializeDraft(draft: Draft) {
  return {
    structureId: draft.structure,
    format: draft.format,
    size: draft.size,
    sha256: draft.blob,
    filename: draft.filename,
    checkpointUploadId: draft.checkpointUpload ?? null,
    createdAt: draft.createdAt.toISOString(),
    updatedAt: draft.updatedAt.toISOString(),
  };
}
