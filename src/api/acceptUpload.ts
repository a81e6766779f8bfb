import { randomUUID } from 'node:crypto';
import type { Context } from 'koa';
import { z } from 'zod';
import { Structure } from '../entities/Structure.js';
import { serializeUpload } from '../entities/serialize.js';
import { TERMINAL_UPLOAD_STATES, Upload, type UploadParams } from '../entities/Upload.js';
import type { User } from '../entities/User.js';
import { sniffCompression, sniffFormat } from '../formats/sniff.js';
import { FORMATS, type Format } from '../formats/types.js';
import { enqueue } from '../queue/enqueue.js';
import { ingestJob } from '../queue/jobs.js';
import type { AppContext } from '../runtime/context.js';
import { QuotaExceededError, releaseReservation, reserve, shrinkReservation } from '../services/quota/quota.js';
import { createUploads } from '../services/upload/uploads.js';
import { preferWaitSeconds, waitFor } from './common.js';
import { ApiError } from './errors.js';
import { type QuotaHold, receiveUpload } from './receiveUpload.js';
import { checkedMetadata } from './routes/metadata/check.js';
import { presentStructure } from './routes/structures/present.js';

const FORMAT_ALIASES: Record<string, Format> = { mmcif: 'cif', ent: 'pdb', sd: 'sdf' };

const uploadFields = z.object({
  name: z.string().trim().min(1).max(255).optional(),
  description: z.string().max(10_000).optional(),
  tags: z.array(z.string().trim().min(1).max(100)).max(100).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  message: z.string().max(10_000).optional(),
  format: z.enum(FORMATS).optional(),
});

/** Text fields of a multipart upload → validated parameters. Tags may repeat or be comma-separated. */
function parseFields(fields: Record<string, string[]>) {
  const one = (name: string) => fields[name]?.[fields[name].length - 1];
  let metadata: unknown;
  const metadataText = one('metadata');
  if (metadataText !== undefined && metadataText !== '') {
    try {
      metadata = JSON.parse(metadataText);
    } catch {
      throw new ApiError(400, 'invalid_metadata', 'The "metadata" field must be a JSON object, e.g. {"organism": "E. coli"}.');
    }
  }
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

/**
 * The whole synchronous half of an upload: stream to staging, refuse what is plainly not a
 * structure, record the Upload row, enqueue ingest, and answer 202 (or wait, if asked to).
 */
export async function acceptUpload(app: AppContext, koa: Context, user: User, target: { projectId: string; structureId?: string }): Promise<void> {
  const uploadId = randomUUID();
  const quota = quotaHold(app, user.id, uploadId);
  const release = () => releaseReservation(app.orm.em.fork(), uploadId);
  let received: Awaited<ReturnType<typeof receiveUpload>>;
  try {
    received = await receiveUpload(koa, app.staging, uploadId, app.config.maxUploadBytes, quota);
    // Held from here until the upload ends: exactly the bytes received (ingest adjusts it to the content).
    await shrinkReservation(app.orm.em.fork(), uploadId, received.bytes);
  } catch (error) {
    await release();
    throw error;
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
    await app.staging.remove(uploadId);
    await release();
    throw error;
  }
  const { format, ...rest } = params;
  const uploadParams: UploadParams = rest;
  let structureId: string;
  try {
    const created = await createUploads(app.orm.em.fork(), [
      {
        id: uploadId,
        ownerId: user.id,
        projectId: target.projectId,
        structureId: target.structureId,
        createsStructure: !target.structureId,
        filename: safeFilename(received.filename),
        formatHint: format ?? null,
        receivedBytes: received.bytes,
        receivedSha256: received.sha256,
        params: uploadParams,
      },
    ]);
    structureId = created.get(uploadId) as string;
  } catch (error) {
    await app.staging.remove(uploadId);
    await release();
    throw error;
  }
  try {
    await enqueue(app.queues, ingestJob, { uploadId, ownerId: user.id });
  } catch (error) {
    // The upload is recorded in Postgres and its file staged: the reconcile schedule will pick it up.
    app.log.error({ err: error, uploadId }, 'could not enqueue ingest; the upload stays received');
  }
  await answerUpload(app, koa, uploadId, structureId, 'received');
}

/**
 * Answers for an upload in the pipeline: 202 with where to poll, or, with `Prefer: wait=N` and the
 * pipeline done in time, 201 with the structure (or the refusal's status and reason).
 */
export async function answerUpload(app: AppContext, koa: Context, uploadId: string, structureId: string, state: string): Promise<void> {
  const waitSeconds = preferWaitSeconds(koa.get('prefer'));
  if (waitSeconds > 0) {
    const done = await waitFor(
      waitSeconds,
      async () => {
        const row = await app.orm.em.fork().findOne(Upload, { id: uploadId });
        if (!row) return undefined;
        if (row.state === 'stored' && !row.indexedAt) return undefined; // stored but not yet searchable
        return TERMINAL_UPLOAD_STATES.includes(row.state) ? row : undefined;
      },
      (ms) => app.workEvents.wait(uploadId, ms),
    );
    if (done) {
      koa.set('Preference-Applied', `wait=${waitSeconds}`);
      if (done.state === 'stored') {
        koa.status = 201;
        koa.set('Location', `/v1/structures/${done.structureId}`);
        koa.body = { upload: serializeUpload(done), structure: await presentStructure(app.orm.em.fork(), done.structureId) };
        return;
      }
      const error = done.error ?? { status: 500, code: 'failed', message: 'The upload failed.' };
      throw new ApiError(error.status, error.code, error.message, { ...(error.details ?? {}), uploadId });
    }
  }
  koa.status = 202;
  koa.set('Location', `/v1/uploads/${uploadId}`);
  koa.body = { upload: { id: uploadId, state }, structure: { id: structureId } };
}

/** The upload's hold on its owner's quota; a refusal becomes the 507 answer. */
export function quotaHold(app: AppContext, userId: string, uploadId: string): QuotaHold {
  return {
    async reserve(needed, wanted) {
      try {
        return await reserve(app.orm.em.fork(), { userId, uploadId, needed, wanted });
      } catch (error) {
        if (error instanceof QuotaExceededError) throw new ApiError(507, error.code, error.message, error.details);
        throw error;
      }
    },
  };
}

/** Metadata sent with an upload must fit the project's schema as the structure will have it (a new version merges it in). */
async function checkUploadMetadata(app: AppContext, target: { projectId: string; structureId?: string }, metadata: Record<string, unknown>) {
  const em = app.orm.em.fork();
  const existing = target.structureId ? await em.findOne(Structure, { id: target.structureId }) : null;
  await checkedMetadata(em, target.projectId, existing ? { ...existing.metadata, ...metadata } : metadata);
}

/** The last path component, without control characters, at most 255 characters. */
export function safeFilename(name: string): string {
  const base = [...name.replace(/^.*[\\/]/, '')]
    .filter((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f)
    .join('')
    .trim();
  return (base || 'upload').slice(0, 255);
}
