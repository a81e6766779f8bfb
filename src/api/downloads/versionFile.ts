import type { EntityManager } from '@mikro-orm/postgresql';
import type { Context } from 'koa';
import type { Derivation } from '../../entities/Derivation.js';
import type { StructureVersion } from '../../entities/StructureVersion.js';
import { sessionConversionRefusal } from '../../formats/session.js';
import { FORMATS, type Format } from '../../formats/types.js';
import type { AppContext } from '../../runtime/context.js';
import { ApiError } from '../errors.js';
import { type ConversionUnderWay, derivativeFor } from './conversion.js';

/** The file a download of a version serves: its stored bytes, or a conversion's. */
export interface VersionFile {
  blobSha256: string;
  format: Format;
  /** The name to save it under: the upload's name without .gz/.bz2, the extension changed for a conversion. */
  filename: string;
  /** The conversion that made it, when it is one. */
  derivation?: Derivation;
}

/** `original`, absent or the version's own format all mean the stored bytes. */
export function normalizedFormat(version: StructureVersion, wanted: string | undefined): string {
  const format = wanted?.toLowerCase();
  return !format || format === 'original' || format === version.format ? 'original' : format;
}

/** The version's file name as served in `format` (`original` or a format name). */
export function versionFilename(version: StructureVersion, format: string): string {
  const stored = version.filename.replace(/\.(gz|bz2)$/i, '');
  return format === 'original' ? stored : `${stored.replace(/\.[A-Za-z0-9]{1,5}$/, '')}.${format}`;
}

/**
 * Which file serves a version in the wanted format (`original` or absent: the stored bytes). A
 * format molvault does not know is a 400, a session another format a refusal, and a conversion is
 * found, asked for or awaited as `derivativeFor` does; one still under way comes back as such.
 */
export async function versionFile(
  app: AppContext,
  koa: Context,
  em: EntityManager,
  userId: string,
  version: StructureVersion,
  wanted: string | undefined,
  waitSeconds?: number,
): Promise<VersionFile | { underWay: ConversionUnderWay }> {
  const format = normalizedFormat(version, wanted);
  if (format === 'original') return { blobSha256: version.blob, format: version.format as Format, filename: versionFilename(version, format) };
  if (!(FORMATS as readonly string[]).includes(format)) {
    throw new ApiError(400, 'unknown_format', `"${wanted}" is not a format name; use one of ${FORMATS.join(', ')}.`);
  }
  const sessionRefusal = sessionConversionRefusal(version.format, format);
  if (sessionRefusal) throw new ApiError(sessionRefusal.status, sessionRefusal.code, sessionRefusal.message, { from: version.format, to: format });
  const converted = await derivativeFor(app, koa, em, userId, version, format as Format, waitSeconds);
  if ('underWay' in converted) return converted;
  return { blobSha256: converted.derivation.blob, format: format as Format, filename: versionFilename(version, format), derivation: converted.derivation };
}
