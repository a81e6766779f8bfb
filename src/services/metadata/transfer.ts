/**
 * A project's metadata as one JSON document or one CSV table, and back. CSV cells keep JSON types:
 * a cell is read as JSON when it parses (42, true, {"a": 1}), otherwise as text; text that would
 * parse as JSON ("42") is written JSON-quoted, so an export imports back to exactly what it was.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { parse as parseCsv } from 'csv-parse/sync';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import type { Project } from '../../entities/Project.js';
import { Structure } from '../../entities/Structure.js';
import { type Metadata, metadataProblems } from './metadata.js';

const METADATA_PREFIX = 'metadata.';
const FIXED_COLUMNS = ['id', 'name', 'description', 'tags'] as const;
const MAX_TAGS = 100;

export interface MetadataRow {
  id?: string;
  name?: string;
  description?: string;
  tags?: string[];
  metadata?: Metadata;
}

export interface RowError {
  row: number;
  reason: string;
}

export interface ExportedMetadata {
  project: { id: string; name: string; metadata: Metadata };
  structures: { id: string; name: string; description: string; tags: string[]; metadata: Metadata }[];
}

/** The live structures of a project (the trash is not exported), oldest first. */
export async function exportProjectMetadata(em: EntityManager, project: Project): Promise<ExportedMetadata> {
  const structures = await em.find(Structure, { project: project.id, deletedAt: null }, { orderBy: { createdAt: 'asc', id: 'asc' } });
  return {
    project: { id: project.id, name: project.name, metadata: project.metadata },
    structures: structures.map((s) => ({ id: s.id, name: s.name, description: s.description, tags: s.tags, metadata: s.metadata })),
  };
}

function encodeCell(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') return JSON.stringify(value);
  return looksLikeJson(value) ? JSON.stringify(value) : value;
}

function looksLikeJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function decodeCell(cell: string): unknown {
  try {
    return JSON.parse(cell);
  } catch {
    return cell;
  }
}

/** Tags as "a; b" (or a JSON array when a tag holds a semicolon), readable in a spreadsheet. */
function encodeTags(tags: string[]): string {
  return tags.some((t) => t.includes(';') || t.startsWith('[')) ? JSON.stringify(tags) : tags.join('; ');
}

function decodeTags(cell: string): unknown {
  const trimmed = cell.trim();
  if (trimmed.startsWith('[')) return decodeCell(trimmed);
  return trimmed
    .split(';')
    .map((t) => t.trim())
    .filter(Boolean);
}

export function metadataToCsv(exported: ExportedMetadata): string {
  const keys = [...new Set(exported.structures.flatMap((s) => Object.keys(s.metadata)))].sort();
  const header = [...FIXED_COLUMNS, ...keys.map((k) => `${METADATA_PREFIX}${k}`)];
  const rows = exported.structures.map((s) => [s.id, s.name, s.description, encodeTags(s.tags), ...keys.map((k) => encodeCell(s.metadata[k]))]);
  return stringifyCsv([header, ...rows]);
}

export class ImportFileError extends Error {}

/** CSV text → rows; a row number is its record's place in the file, the header being row 1. */
export function rowsFromCsv(text: string): { row: number; value: MetadataRow }[] {
  const nulAt = text.indexOf('\u0000');
  if (nulAt >= 0) {
    const line = text.slice(0, nulAt).split('\n').length;
    throw new ImportFileError(`The CSV holds a NUL character (\\u0000) on line ${line}, which molvault cannot store; remove it.`);
  }
  let records: string[][];
  try {
    records = parseCsv(text, { bom: true, skip_empty_lines: true, relax_column_count: false });
  } catch (error) {
    throw new ImportFileError(`The CSV cannot be read: ${(error as Error).message}`);
  }
  const [header, ...body] = records;
  if (!header) throw new ImportFileError('The CSV is empty: it needs a header row with an id or name column.');
  const columns = header.map((h) => h.trim());
  const unknown = columns.filter(
    (c) => !(FIXED_COLUMNS as readonly string[]).includes(c) && !(c.startsWith(METADATA_PREFIX) && c.length > METADATA_PREFIX.length),
  );
  if (unknown.length > 0) {
    throw new ImportFileError(
      `Unknown column${unknown.length > 1 ? 's' : ''} ${unknown.map((c) => `"${c}"`).join(', ')}: use id, name, description, tags and metadata.<key>.`,
    );
  }
  if (!columns.includes('id') && !columns.includes('name')) throw new ImportFileError('The CSV needs an id or a name column to match rows to structures.');
  const hasMetadata = columns.some((c) => c.startsWith(METADATA_PREFIX));
  return body.map((record, index) => {
    const value: MetadataRow = {};
    if (hasMetadata) value.metadata = {};
    columns.forEach((column, i) => {
      const cell = record[i] ?? '';
      if (column === 'id') {
        if (cell.trim()) value.id = cell.trim();
      } else if (column === 'name') {
        if (cell.trim()) value.name = cell.trim();
      } else if (column === 'description') value.description = cell;
      else if (column === 'tags') value.tags = decodeTags(cell) as string[];
      else if (cell !== '' && value.metadata) value.metadata[column.slice(METADATA_PREFIX.length)] = decodeCell(cell);
    });
    return { row: index + 2, value };
  });
}

/** JSON import: the export's shape ({structures: [...]}) or a bare array; rows are numbered from 1. */
export function rowsFromJson(body: unknown): { rows: { row: number; value: unknown }[]; projectMetadata?: unknown } {
  const list = Array.isArray(body) ? body : (body as { structures?: unknown })?.structures;
  if (!Array.isArray(list)) throw new ImportFileError('The JSON must be {"structures": [...]} (as exported) or an array of rows.');
  const projectMetadata = Array.isArray(body) ? undefined : (body as { project?: { metadata?: unknown } }).project?.metadata;
  return { rows: list.map((value, index) => ({ row: index + 1, value })), projectMetadata };
}

function checkRowShape(value: unknown): { row?: MetadataRow; reason?: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { reason: 'the row is not an object' };
  const raw = value as Record<string, unknown>;
  const extra = Object.keys(raw).filter((k) => !(FIXED_COLUMNS as readonly string[]).includes(k) && k !== 'metadata');
  if (extra.length) return { reason: `unknown field${extra.length > 1 ? 's' : ''} ${extra.join(', ')}` };
  if (raw.id !== undefined && (typeof raw.id !== 'string' || !/^[0-9a-f-]{36}$/i.test(raw.id))) return { reason: 'id is not a structure id (a UUID)' };
  if (raw.name !== undefined && (typeof raw.name !== 'string' || !raw.name.trim() || raw.name.length > 255)) {
    return { reason: 'name must be text of 1 to 255 characters' };
  }
  if (raw.description !== undefined && (typeof raw.description !== 'string' || raw.description.length > 10_000)) {
    return { reason: 'description must be text of at most 10000 characters' };
  }
  if (raw.tags !== undefined) {
    const tags = raw.tags;
    if (!Array.isArray(tags) || tags.length > MAX_TAGS || tags.some((t) => typeof t !== 'string' || !t.trim() || t.length > 100)) {
      return { reason: `tags must be a list of at most ${MAX_TAGS} non-empty texts of up to 100 characters` };
    }
  }
  if (raw.metadata !== undefined && (typeof raw.metadata !== 'object' || raw.metadata === null || Array.isArray(raw.metadata))) {
    return { reason: 'metadata must be a JSON object' };
  }
  if (raw.id === undefined && raw.name === undefined) return { reason: 'the row has neither an id nor a name to match a structure' };
  return { row: raw as MetadataRow };
}

export interface ImportPlan {
  errors: RowError[];
  changes: { structure: Structure; row: MetadataRow }[];
}

/** Matches every row to a structure of the project and checks it; applies nothing. */
export async function planImport(em: EntityManager, project: Project, rows: { row: number; value: unknown }[]): Promise<ImportPlan> {
  const structures = await em.find(Structure, { project: project.id, deletedAt: null });
  const byId = new Map(structures.map((s) => [s.id, s]));
  const byName = new Map<string, Structure[]>();
  for (const s of structures) byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
  const errors: RowError[] = [];
  const changes: ImportPlan['changes'] = [];
  const claimed = new Map<string, number>();
  for (const { row, value } of rows) {
    const shape = checkRowShape(value);
    if (!shape.row) {
      errors.push({ row, reason: shape.reason ?? 'the row is not valid' });
      continue;
    }
    const data = shape.row;
    let structure: Structure | undefined;
    if (data.id) {
      structure = byId.get(data.id.toLowerCase());
      if (!structure) {
        errors.push({ row, reason: `no structure with id ${data.id} in this project` });
        continue;
      }
    } else if (data.name) {
      const named = byName.get(data.name) ?? [];
      if (named.length !== 1) {
        errors.push({
          row,
          reason: named.length === 0 ? `no structure named "${data.name}" in this project` : `${named.length} structures are named "${data.name}"; give the id`,
        });
        continue;
      }
      structure = named[0];
    }
    if (!structure) continue;
    const earlier = claimed.get(structure.id);
    if (earlier !== undefined) {
      errors.push({ row, reason: `row ${earlier} already changes this structure (${structure.name})` });
      continue;
    }
    claimed.set(structure.id, row);
    if (data.metadata) {
      const problems = metadataProblems(project.metadataSchema, data.metadata);
      if (problems.length) {
        errors.push({ row, reason: `metadata does not fit the project's schema: ${problems.map((p) => p.message).join('; ')}` });
        continue;
      }
    }
    changes.push({ structure, row: data });
  }
  return { errors, changes };
}

/** Applies a checked plan to the loaded structures; returns those that changed. Flush inside the caller's transaction. */
export function applyImport(plan: ImportPlan): Structure[] {
  const changed: Structure[] = [];
  for (const { structure, row } of plan.changes) {
    const before = JSON.stringify([structure.name, structure.description, structure.tags, structure.metadata]);
    if (row.id && row.name) structure.name = row.name.trim();
    if (row.description !== undefined) structure.description = row.description;
    if (row.tags !== undefined) structure.tags = [...new Set(row.tags.map((t) => t.trim()))];
    if (row.metadata !== undefined) structure.metadata = row.metadata;
    if (JSON.stringify([structure.name, structure.description, structure.tags, structure.metadata]) !== before) {
      structure.updatedAt = new Date();
      changed.push(structure);
    }
  }
  return changed;
}
