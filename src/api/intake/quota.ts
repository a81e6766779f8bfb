import { User } from '../../entities/User.js';
import { formatBytes } from '../../lib/bytes.js';
import type { AppContext } from '../../runtime/context.js';
import { QuotaExceededError, reserve } from '../../services/quota/quota.js';
import { ApiError } from '../errors.js';
import type { QuotaHold } from '../http/uploadBody.js';

/**
 * The hold on its payer's quota (the project's owner of record) of an upload, a draft or an import
 * (keyed by its id); a refusal becomes the 507 answer, naming whose quota is full when it is not the
 * caller's own.
 */
export function quotaHold(app: AppContext, userId: string, uploadId: string, actorId: string = userId): QuotaHold {
  return {
    async reserve(needed, wanted) {
      try {
        return await reserve(app.orm.em.fork(), { userId, uploadId, needed, wanted });
      } catch (error) {
        if (!(error instanceof QuotaExceededError)) throw error;
        if (actorId === userId) throw new ApiError(507, error.code, error.message, error.details);
        const owner = await app.orm.em.fork().findOne(User, { id: userId });
        const email = owner?.email ?? 'the project owner';
        const left = Math.max(0, error.quotaBytes - error.usedBytes - error.reservedBytes);
        throw new ApiError(
          507,
          error.code,
          `This upload counts against the quota of ${email}, who owns this project, and needs ${formatBytes(error.requestedBytes)}, ` +
            `but only ${formatBytes(left)} of their ${formatBytes(error.quotaBytes)} is left. Ask them to free space, or an administrator for more.`,
          { ...error.details, chargedTo: { id: userId, email } },
        );
      }
    },
  };
}
