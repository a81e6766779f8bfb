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

/**
 * How long an announced put holds its blob (blobs.ts, announceBlobPuts): long past any put, so it
 * only matters when a worker died between announcing and recording; then the blob is garbage
 * collection's again, and the cleanup schedule drops the row.
 */
export const BLOB_PUT_HOLD = '6 hours';

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
  {
    // Announced before its put, not yet recorded (blobs.ts, announceBlobPuts): held, charged to nobody.
    // Its text hash given as varchar like every other source's: Postgres pushes a filter on the hash
    // into each branch (and its blob index) only when all branches give the column one type.
    name: 'blobs being put',
    sql: `select null::uuid as owner_id, i.sha256::varchar as blob_sha256, null::text as category
            from blob_put_intents i where i.created_at > now() - interval '${BLOB_PUT_HOLD}'`,
  },
  {
    // A converted file is charged to every owner of a structure version stored as its source.
    // Charged to each user who downloaded the derivative and still holds its source bytes.
    name: 'derivations',
    sql: `select distinct s.owner_id, d.blob_sha256, 'derived' as category
            from derivations d
            join derivation_owners o on o.derivation_id = d.id
            join structure_versions v on v.blob_sha256 = d.source_blob_sha256
            join structures s on s.id = v.structure_id and s.owner_id = o.owner_id`,
  },
  {
    // Kept while anyone holds the source bytes, whoever asked for it: a cache, charged to nobody else.
    name: 'derivations (shared cache)',
    sql: `select distinct s.owner_id, d.blob_sha256, null::text as category
            from derivations d
            join structure_versions v on v.blob_sha256 = d.source_blob_sha256
            join structures s on s.id = v.structure_id`,
  },
  {
    // A finished export archive, charged to its owner until it expires (expiry clears the column).
    name: 'export archives',
    sql: `select e.owner_id, e.blob_sha256, 'exports' as category from export_archives e where e.blob_sha256 is not null`,
  },
];

/** One select over every source: (owner_id, blob_sha256, category). */
export function allBlobReferencesSql(): string {
  return BLOB_REFERENCE_SOURCES.map((source) => `(${source.sql})`).join('\nunion all\n');
}
