import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import { LOCK_KEYS, lockAll } from '../../db/locks.js';
import type { UploadError } from '../../entities/Upload.js';

/** Why an item's content is not imported: the project holds it already, or another item is importing it. */
export interface ClaimRefusal {
  code: 'already_stored' | 'duplicate_content';
  message: string;
  /** The structure that holds the content already (already_stored). */
  structureId?: string;
}

/** A refused claim as the end of an upload already started (content known only once unpacked): its item is then skipped (itemEnding). */
export function claimRefusalError(refusal: ClaimRefusal): UploadError {
  return { status: 409, code: refusal.code, message: refusal.message, details: refusal.structureId ? { structureId: refusal.structureId } : undefined };
}

export interface Claimant {
  id: string;
  name: string;
  sha256: string;
}

/**
 * Claims content for import items within a project, under locks on (project, content), so two
 * items with the same bytes are never both stored: an item's content is refused when a live
 * structure of the project has it as its current version, or another item (of any import, or an
 * earlier one of these) is importing it right now. Otherwise the hash is recorded on the item (the
 * claim). Items are taken in the order given. Returns the refusals, by item id.
 */
export async function claimContents(tx: EntityManager, batch: { id: string; project: string }, items: readonly Claimant[]): Promise<Map<string, ClaimRefusal>> {
  const refused = new Map<string, ClaimRefusal>();
  if (items.length === 0) return refused;
  const hashes = [...new Set(items.map((item) => item.sha256))];
  await lockAll(tx, `${LOCK_KEYS.importClaim}${batch.project}:`, hashes);
  const stored = new Map(
    (
      await tx.execute<{ sha256: string; id: string; name: string }[]>(
        `select distinct on (v.blob_sha256) v.blob_sha256 as sha256, s.id, s.name
           from structures s join structure_versions v on v.id = s.current_version_id
          where s.project_id = ? and s.deleted_at is null and v.blob_sha256 = any(?::text[])`,
        [batch.project, sqlArray(hashes)],
      )
    ).map((row) => [row.sha256, row]),
  );
  const inFlight = new Map(
    (
      await tx.execute<{ sha256: string; name: string; batch_id: string }[]>(
        `select distinct on (i.sha256) i.sha256, i.name, i.batch_id from import_items i join import_batches b on b.id = i.batch_id
          where b.project_id = ? and i.sha256 = any(?::text[]) and i.state = 'processing' and i.restore is null
            and i.id <> all(?::uuid[])`,
        [batch.project, sqlArray(hashes), sqlArray(items.map((item) => item.id))],
      )
    ).map((row) => [row.sha256, row]),
  );
  const claimedHere = new Map<string, string>();
  const claimed: Claimant[] = [];
  for (const item of items) {
    const held = stored.get(item.sha256);
    const other = inFlight.get(item.sha256);
    const earlier = claimedHere.get(item.sha256);
    if (held) {
      refused.set(item.id, {
        code: 'already_stored',
        message: `The same content is already stored in this project as "${held.name}"; it was not imported again.`,
        structureId: held.id,
      });
    } else if (other || earlier !== undefined) {
      const where = !other || other.batch_id === batch.id ? ' in this import' : ' by another import';
      refused.set(item.id, {
        code: 'duplicate_content',
        message: `The same content is being imported as "${other?.name ?? earlier}"${where}; it is stored once.`,
      });
    } else {
      claimedHere.set(item.sha256, item.name);
      claimed.push(item);
    }
  }
  if (claimed.length > 0) {
    await tx.execute(
      `update import_items i set sha256 = x.sha256, updated_at = now()
         from jsonb_to_recordset(?::jsonb) as x(id uuid, sha256 text) where i.id = x.id`,
      [JSON.stringify(claimed.map((item) => ({ id: item.id, sha256: item.sha256 })))],
    );
  }
  return refused;
}

/** One item's claim (claimContents): the refusal, or undefined when the content is now the item's. */
export async function claimContent(tx: EntityManager, batch: { id: string; project: string }, item: Claimant): Promise<ClaimRefusal | undefined> {
  return (await claimContents(tx, batch, [item])).get(item.id);
}
