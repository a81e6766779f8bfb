import type { EntityManager } from '@mikro-orm/postgresql';
import { serializeUpload } from '../../entities/serialize.js';
import type { Upload } from '../../entities/Upload.js';
import { ApiError } from '../errors.js';
import type { AcceptedUpload } from '../intake/uploads.js';
import { presentStructure } from './structures.js';

/** The 202 body of an upload under way: the ids to follow it by. */
export function presentAcceptedUpload(accepted: AcceptedUpload) {
  return { upload: { id: accepted.uploadId, state: accepted.state }, structure: { id: accepted.structureId } };
}

/** The 201 body of a stored upload: the upload and the structure as it is now. */
export async function presentStoredUpload(em: EntityManager, upload: Upload) {
  return { upload: serializeUpload(upload), structure: await presentStructure(em, upload.structureId) };
}

/** An upload that ended without a version (refused or failed) answers with the error it recorded. */
export function uploadRefusal(upload: Upload): ApiError {
  const error = upload.error ?? { status: 500, code: 'failed', message: 'The upload failed.' };
  return new ApiError(error.status, error.code, error.message, { ...(error.details ?? {}), uploadId: upload.id });
}
