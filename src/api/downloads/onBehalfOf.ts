import type { EntityManager } from '@mikro-orm/postgresql';
import type { Structure } from '../../entities/Structure.js';
import { activeUser } from '../../services/auth/auth.js';
import { access } from '../access.js';
import { ApiError } from '../errors.js';

/**
 * The structure, if `userId` (who signed a URL or made a share link) may still read it now: an
 * active user whose access has not ended, the structure neither trashed nor purged. Undefined
 * otherwise, so what was shared stops working the moment its sharer could no longer get it (a
 * disabled sharer within the same few seconds as their bearer tokens).
 */
export async function readableOnBehalfOf(em: EntityManager, userId: string, structureId: string): Promise<Structure | undefined> {
  const user = await activeUser(em, userId);
  if (!user) return undefined;
  try {
    return await access(em, user).structure(structureId, 'read');
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 403)) return undefined;
    throw error;
  }
}
