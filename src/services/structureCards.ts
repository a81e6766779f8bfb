/**
 * A structure as search hits show it, built by Postgres as JSON: the fields of `serializeStructure`
 * (services/serialize.ts) without the current version's validation warnings (GET
 * /v1/structures/:id has those). Searches answer up to 500 of these at once; building them in SQL
 * spares the API parsing each row's summary and metadata only to serialise them again.
 *
 * Aliases: `cs` the structure, `cv` its current version, `cb` that version's blob; join them with
 * {@link STRUCTURE_CARD_JOINS} after `structures cs`.
 */

/** A timestamptz as `Date.toISOString()` writes it (UTC, milliseconds, truncated as the pg driver reads them). */
export const isoTime = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

export const STRUCTURE_CARD_JOINS = `left join structure_versions cv on cv.id = cs.current_version_id
       left join blobs cb on cb.sha256 = cv.blob_sha256`;

export const STRUCTURE_CARD_JSON = `json_build_object(
  'id', cs.id, 'projectId', cs.project_id, 'name', cs.name, 'description', cs.description, 'kind', cs.kind,
  'tags', cs.tags, 'metadata', cs.metadata,
  'currentVersion', case when cv.id is null then null else json_build_object(
    'number', cv.number, 'format', cv.format, 'size', coalesce(cb.size, 0), 'sha256', cv.blob_sha256, 'filename', cv.filename,
    'message', cv.message, 'author', cv.author_id, 'pinned', cv.pinned, 'createdAt', ${isoTime('cv.created_at')}, 'summary', cv.summary) end,
  'viewCount', cs.view_count, 'downloadCount', cs.download_count,
  'createdAt', ${isoTime('cs.created_at')}, 'updatedAt', ${isoTime('cs.updated_at')},
  'deletedAt', ${isoTime('cs.deleted_at')})`;

/**
 * The structure as GET /v1/structures/:id shows it (`serializeStructure`): the card, with the
 * current version's validation warnings.
 */
export const STRUCTURE_JSON = STRUCTURE_CARD_JSON.replace(
  "'summary', cv.summary) end",
  "'summary', cv.summary, 'warnings', coalesce(cv.validation->'warnings', '[]'::jsonb)) end",
);
