import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import { z } from 'zod';
import { FORMAT_ALIASES, FORMATS, type Format, MEDIA_TYPES } from '../../../formats/types.js';
import { enqueue } from '../../../queue/enqueue.js';
import { validateJob } from '../../../queue/jobs.js';
import type { AppContext } from '../../../runtime/context.js';
import { releaseReservation } from '../../../services/quota/quota.js';
import { refreshUsage } from '../../../services/quota/usage.js';
import { DraftRefusal, deleteDraft, saveDraft, serializeDraft, startCheckpoint } from '../../../services/versions/drafts.js';
import { currentVersion, findDraft, storedBlob } from '../../../services/versions/lookup.js';
import { access } from '../../access.js';
import { ApiError } from '../../errors.js';
import { attachment, etagOf } from '../../http/download.js';
import { preferredWait } from '../../http/prefer.js';
import { receiveUpload, safeFilename } from '../../http/uploadBody.js';
import { quotaHold } from '../../intake/quota.js';
import { refuseWhenStorageFull, storageFullRefusal } from '../../intake/storageFull.js';
import { waitForUpload } from '../../intake/uploads.js';
import { errorSchema } from '../../openapi.js';
import { presentAcceptedUpload, presentStoredUpload, uploadRefusal } from '../../presenters/uploads.js';
import { route } from '../../route.js';
import { idParams } from '../../schemas/common.js';
import { acceptedSchema } from '../../schemas/structures.js';
import { text } from '../../text.js';

const draftSchema = z.object({
  structureId: z.uuid(),
  format: z.enum(FORMATS),
  size: z.number(),
  sha256: z.string(),
  filename: z.string(),
  checkpointUploadId: z.uuid().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const checkpointBody = z.object({ message: text().max(10_000).optional() });

const noDraft = () => new ApiError(404, 'no_draft', 'This structure has no draft: save one with PUT /v1/structures/:id/draft first.');

function declaredFormat(fields: Record<string, string[]>): Format | undefined {
  const text = fields.format?.[fields.format.length - 1]?.trim().toLowerCase();
  if (!text) return undefined;
  const format = FORMAT_ALIASES[text] ?? text;
  if (!(FORMATS as readonly string[]).includes(format)) {
    throw new ApiError(400, 'unknown_format', `"${text}" is not a format name; use one of ${FORMATS.join(', ')}.`);
  }
  return format as Format;
}

/** Autosave: one draft per structure, replaced by every save; a checkpoint makes it a version. */
export function draftRoutes(app: AppContext): Router {
  const router = new Router();
  const tag = 'Drafts';

  route(
    router,
    app,
    {
      method: 'put',
      path: '/v1/structures/:id/draft',
      access: { on: 'structure', need: 'write' },
      summary: 'Save (autosave) the draft of a structure, replacing the previous draft; makes no version',
      tag,
      params: idParams,
      rawBody: {
        contentType: 'application/octet-stream',
        description: 'The draft bytes as the raw body (file name in ?filename= or Content-Disposition), or multipart/form-data with field "file"',
        fields: { file: 'The draft (multipart only)', format: 'Declared format, checked against the content', filename: 'File name (raw body)' },
      },
      responses: {
        200: { description: 'The saved draft', schema: draftSchema },
        413: { description: 'Too large', schema: errorSchema },
        415: { description: 'Not a format molvault reads, or not the kind this structure holds', schema: errorSchema },
        422: { description: 'Empty, or a session whose header is wrong', schema: errorSchema },
      },
    },
    async ({ params, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'write');
      await refuseWhenStorageFull(app, Number(koa.get('content-length') || 0));
      const stagingId = randomUUID();
      // A draft counts in its owner's usage (as drafts), so its bytes are held against the quota while they arrive.
      const release = () => releaseReservation(app.orm.em.fork(), stagingId);
      let received: Awaited<ReturnType<typeof receiveUpload>>;
      try {
        received = await receiveUpload(koa, app.staging, stagingId, app.config.maxUploadBytes, quotaHold(app, structure.owner, stagingId, user.id));
      } catch (error) {
        await release();
        throw storageFullRefusal(error);
      }
      let format: Format | undefined;
      let filename = safeFilename(received.filename);
      try {
        format = declaredFormat(received.fields);
        if (received.bytes === 0) throw new ApiError(422, 'empty_file', 'The draft is empty.');
        if (received.filename === 'upload' && structure.currentVersion) {
          // No name sent: keep the current version's, so the extension still says what the draft is.
          filename = (await currentVersion(em, structure))?.filename ?? filename;
        }
      } catch (error) {
        await app.staging.remove(stagingId);
        await release();
        throw error;
      }
      try {
        const draft = await saveDraft(app, em, structure, {
          stagingId,
          filename,
          bytes: received.bytes,
          sha256: received.sha256,
          head: received.head,
          declaredFormat: format,
        });
        await refreshUsage(em, structure.owner);
        return serializeDraft(draft);
      } catch (error) {
        if (error instanceof DraftRefusal) throw new ApiError(error.status, error.code, error.message, error.details);
        throw storageFullRefusal(error);
      } finally {
        await release();
      }
    },
  );

  route(
    router,
    app,
    {
      method: 'get',
      path: '/v1/structures/:id/draft',
      access: { on: 'structure', need: 'read' },
      summary: 'The draft: its bytes, or its description with Accept: application/json',
      tag,
      params: idParams,
      responses: {
        200: { description: 'The draft bytes (or JSON description)', contentType: 'application/octet-stream' },
        404: { description: 'No draft', schema: errorSchema },
      },
    },
    async ({ params, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'read', { trashed: true });
      const draft = await findDraft(em, structure.id);
      if (!draft) throw noDraft();
      // Bytes unless JSON is asked for by name: a viewer reopening its autosave wants the file.
      if (/(^|,)\s*application\/json/.test(koa.get('accept'))) return serializeDraft(draft);
      const blob = await storedBlob(em, draft.blob);
      koa.set('ETag', etagOf(blob.sha256));
      koa.set('Last-Modified', draft.updatedAt.toUTCString());
      koa.set('Cache-Control', 'private, no-cache');
      koa.set('Content-Disposition', attachment(draft.filename.replace(/\.(gz|bz2)$/i, '')));
      koa.type = MEDIA_TYPES[draft.format as Format] ?? 'application/octet-stream';
      koa.status = 200;
      koa.length = blob.size;
      koa.body = app.blobs.read(blob.sha256);
      return undefined;
    },
  );

  route(
    router,
    app,
    {
      method: 'delete',
      path: '/v1/structures/:id/draft',
      access: { on: 'structure', need: 'write' },
      summary: 'Discard the draft',
      tag,
      params: idParams,
      responses: { 204: { description: 'Discarded' }, 404: { description: 'No draft', schema: errorSchema } },
    },
    async ({ params, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'write', { trashed: true });
      if (!(await deleteDraft(em, app.blobs, structure.id))) throw noDraft();
      await refreshUsage(em, structure.owner);
      koa.status = 204;
      return undefined;
    },
  );

  route(
    router,
    app,
    {
      method: 'post',
      path: '/v1/structures/:id/checkpoint',
      access: { on: 'structure', need: 'write' },
      summary: 'Turn the draft into a new version (validated, summarised, indexed like an upload); the draft goes once the version is stored',
      tag,
      params: idParams,
      body: checkpointBody,
      responses: {
        202: { description: 'Accepted: poll the upload (Location header)', schema: acceptedSchema },
        201: { description: 'Stored (with Prefer: wait=N and the pipeline done in time)' },
        404: { description: 'No draft', schema: errorSchema },
        422: { description: 'The draft is not a valid structure (the draft is kept)', schema: errorSchema },
      },
    },
    async ({ params, body, user, koa }) => {
      const em = app.orm.em.fork();
      const structure = await access(em, user).structure(params.id, 'write');
      const checkpoint = await startCheckpoint(em, structure, structure.owner, body.message);
      if (!checkpoint) throw noDraft();
      if (checkpoint.started) {
        try {
          await enqueue(app.queues, validateJob, { uploadId: checkpoint.upload.id, ownerId: structure.owner });
        } catch (error) {
          // Recorded in Postgres: the reconcile schedule re-enqueues it.
          app.log.error({ err: error, uploadId: checkpoint.upload.id }, 'could not enqueue the checkpoint; reconcile will');
        }
      }
      const finished = await waitForUpload(app, checkpoint.upload.id, preferredWait(koa));
      if (!finished) {
        koa.status = 202;
        koa.set('Location', `/v1/uploads/${checkpoint.upload.id}`);
        return presentAcceptedUpload({ uploadId: checkpoint.upload.id, structureId: structure.id, state: checkpoint.upload.state });
      }
      if (finished.state !== 'stored') throw uploadRefusal(finished);
      koa.status = 201;
      koa.set('Location', `/v1/structures/${finished.structureId}`);
      return presentStoredUpload(app.orm.em.fork(), finished);
    },
  );

  return router;
}
