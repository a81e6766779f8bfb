import { randomUUID } from 'node:crypto';
import type { Context } from 'koa';
import { z } from 'zod';
import type { Upload, UploadParams, UploadState } from '../../entities/Upload.js';
import type { User } from '../../entities/User.js';
import { formatsCompatible, sniffCompression, sniffFormat } from '../../formats/sniff.js';
import { FORMAT_ALIASES, FORMATS } from '../../formats/types.js';
import { enqueue } from '../../queue/enqueue.js';
import { ingestJob } from '../../queue/jobs.js';
import type { AppContext } from '../../runtime/context.js';
import { metadataAfterUpload } from '../../services/metadata/metadata.js';
import { releaseReservation, shrinkReservation } from '../../services/quota/quota.js';
import { createUploads, finishedUpload } from '../../services/upload/uploads.js';
import { ApiError } from '../errors.js';
import { waitFor } from '../http/prefer.js';
import { receiveUpload, safeFilename } from '../http/uploadBody.js';
import { checkedMetadata } from '../metadata.js';
import { metadataSchema, tagsSchema } from '../schemas/common.js';
import { assertSafeFields, parseMetadataField, text } from '../text.js';
import { quotaHold } from './quota.js';
import { ReceiptParse } from './receipt.js';
import { refuseWhenStorageFull, storageFullRefusal } from './storageFull.js';

const uploadFields = z.object({
  name: text().trim().min(1).max(255).optional(),
  description: text().max(10_000).optional(),
  tags: tagsSchema.optional(),
  metadata: metadataSchema.optional(),
  message: text().max(10_000).optional(),
  format: z.enum(FORMATS).optional(),
});

/** Text fields of a multipart upload → validated parameters. Tags may repeat or be comma-separated. */
function parseFields(fields: Record<string, string[]>) {
  assertSafeFields(fields, 'The upload fields');
  const one = (name: string) => fields[name]?.[fields[name].length - 1];
  let metadata: unknown;
  const metadataText = one('metadata');
  if (metadataText !== undefined && metadataText !== '') metadata = parseMetadataField(metadataText);
  const tags = fields.tags
    ?.flatMap((t) => t.split(','))
    .map((t) => t.trim())
    .filter(Boolean);
  const formatText = one('format')?.trim().toLowerCase();
  const result = uploadFields.safeParse({
    name: one('name'),
    description: one('description'),
    tags,
    metadata,
    message: one('message'),
    format: formatText ? (FORMAT_ALIASES[formatText] ?? formatText) : undefined,
  });
  if (!result.success) {
    const issues = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new ApiError(400, 'invalid_request', `The upload fields are not valid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}.`, { issues });
  }
  return result.data;
}

/** An upload taken in: the route answers with where to follow it, or waits for it with `waitForUpload`. */
export interface AcceptedUpload {
  uploadId: string;
  structureId: string;
  state: UploadState;
}

/**
 * The whole synchronous half of an upload: stream to staging, refuse what is plainly not a
 * structure (thrown as the answer), record the Upload row and enqueue ingest.
 */
/** `target.payerId`: the project's owner of record, whose quota the upload is charged to (the caller may be an editor). */
export async function acceptUpload(
  app: AppContext,
  koa: Context,
  user: User,
  target: { projectId: string; structureId?: string; payerId: string },
): Promise<AcceptedUpload> {
  // A full disk refuses at once, before a byte is kept or quota held.
  const declared = Number(koa.get('content-length') || 0);
  await refuseWhenStorageFull(app, declared);
  const uploadId = randomUUID();
  // Parsed while it arrives when it is large, so it is searchable soon after its last byte.
  const receipt = ReceiptParse.for(app, declared, uploadId);
  const quota = quotaHold(app, target.payerId, uploadId, user.id);
  const release = () => releaseReservation(app.orm.em.fork(), uploadId);
  let received: Awaited<ReturnType<typeof receiveUpload>>;
  try {
    received = await receiveUpload(koa, app.staging, uploadId, app.config.maxUploadBytes, quota, receipt);
    // Held from here until the upload ends: exactly the bytes received (ingest adjusts it to the content).
    await shrinkReservation(app.orm.em.fork(), uploadId, received.bytes);
  } catch (error) {
    receipt?.abort();
    await release();
    throw storageFullRefusal(error);
  }
  let params: ReturnType<typeof parseFields>;
  try {
    params = parseFields(received.fields);
    if (received.bytes === 0)
      throw new ApiError(422, 'empty_file', 'The file is empty.', { problems: [{ code: 'empty_file', message: 'The file is empty.' }] });
    // A new structure must fit the project's schema even without metadata (it may require keys); a new version only changes what it sends.
    if (params.metadata || !target.structureId) await checkUploadMetadata(app, target, params.metadata ?? {});
    // Uncompressed content can be judged right away; compressed content is judged once unpacked.
    if (!sniffCompression(received.head)) {
      const sniff = sniffFormat(received.head);
      if (!sniff.format) throw new ApiError(415, 'unsupported_format', sniff.reason, { supported: FORMATS });
    }
  } catch (error) {
    receipt?.abort();
    await app.staging.remove(uploadId);
    await release();
    throw error;
  }
  const { format, ...rest } = params;
  // Kept only when it is the format the upload will settle on (ingest checks again, against the stored bytes).
  const parsed = await receipt?.outcome();
  const parsedOnReceipt = parsed && (!format || formatsCompatible(format, parsed.format)) ? parsed : undefined;
  const uploadParams: UploadParams = rest;
  let structureId: string;
  try {
    const created = await createUploads(app.orm.em.fork(), [
      {
        id: uploadId,
        ownerId: target.payerId,
        projectId: target.projectId,
        structureId: target.structureId,
        createsStructure: !target.structureId,
        filename: safeFilename(received.filename),
        formatHint: format ?? null,
        receivedBytes: received.bytes,
        receivedSha256: received.sha256,
        params: uploadParams,
        parsed: parsedOnReceipt && {
          format: parsedOnReceipt.format,
          kind: parsedOnReceipt.outcome.kind,
          summary: parsedOnReceipt.outcome.summary,
          report: parsedOnReceipt.outcome.report,
        },
      },
    ]);
    structureId = created.get(uploadId) as string;
  } catch (error) {
    await app.staging.remove(uploadId);
    await release();
    throw error;
  }
  try {
    await enqueue(app.queues, ingestJob, { uploadId, ownerId: target.payerId });
  } catch (error) {
    // The upload is recorded in Postgres and its file staged: the reconcile schedule will pick it up.
    app.log.error({ err: error, uploadId }, 'could not enqueue ingest; the upload stays received');
  }
  return { uploadId, structureId, state: 'received' };
}

/**
 * With `Prefer: wait=N` (N > 0): the upload once it has ended (stored and searchable, refused or
 * failed) within N seconds; otherwise, or once N seconds have passed, undefined.
 */
export async function waitForUpload(app: AppContext, uploadId: string, seconds: number): Promise<Upload | undefined> {
  if (seconds <= 0) return undefined;
  return waitFor(
    seconds,
    () => finishedUpload(app.orm.em.fork(), uploadId),
    (ms) => app.workEvents.wait(uploadId, ms),
  );
}

/** Metadata sent with an upload must fit the project's schema as the structure will have it (a new version merges it in). */
async function checkUploadMetadata(app: AppContext, target: { projectId: string; structureId?: string }, metadata: Record<string, unknown>) {
  const em = app.orm.em.fork();
  await checkedMetadata(em, target.projectId, await metadataAfterUpload(em, target.structureId, metadata));
}
