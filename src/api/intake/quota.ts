import type { AppContext } from '../../runtime/context.js';
import { QuotaExceededError, reserve } from '../../services/quota/quota.js';
import { ApiError } from '../errors.js';
import type { QuotaHold } from '../http/uploadBody.js';

/** The hold on its owner's quota of an upload, a draft or an import (keyed by its id); a refusal becomes the 507 answer. */
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
