/**
 * Every kind of thing that can hold on to a blob, in one list. Garbage collection, blob deletion
 * and usage accounting all read this list, so a new kind of reference (a draft, a derivative, an
 * export archive, a backup manifest) is added here once and is then both protected and charged.
 *
 * Each source is a SQL select yielding rows (owner_id, blob_sha256, category). `category` is the
 * usage bucket the bytes are charged to; null means "held, but charged to nobody" (e.g. an upload
 * still in flight, which the quota reservation already covers).
 */
export const USAGE_CATEGORIES = ['current', 'history', 'trash', 'drafts', 'derived', 'exports'] as const;
export type UsageCategory = (typeof USAGE_CATEGORIES)[number];

export interface BlobReferenceSource {
  name: string;
  sql: string;
}

export const BLOB_REFERENCE_SOURCES: BlobReferenceSource[] = [
  {
    name: 'structure versions',
    sql: `select s.owner_id, v.blob_sha256,
                 case when s.deleted_at is not null then 'trash'
                      when s.current_version_id = v.id then 'current'
                      else 'history' end as category
            from structure_versions v join structures s on s.id = v.structure_id`,
  },
  {
    name: 'drafts',
    sql: `select d.owner_id, d.blob_sha256, 'drafts' as category from drafts d`,
  },
  {
    name: 'uploads in flight',
    sql: `select u.owner_id, u.blob_sha256, null::text as category
            from uploads u where u.blob_sha256 is not null and u.state in ('received', 'processing')`,
  },
];

/** One select over every source: (owner_id, blob_sha256, category). */
export function allBlobReferencesSql(): string {
  return BLOB_REFERENCE_SOURCES.map((source) => `(${source.sql})`).join('\nunion all\n');
}
