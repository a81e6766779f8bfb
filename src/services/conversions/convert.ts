import { lossReport, withEngineNotes } from '../../engines/loss.js';
import type { EnginePool } from '../../engines/pool.js';
import { EngineError } from '../../engines/process.js';
import { ENGINE_LABELS } from '../../engines/types.js';
import { StructureVersion } from '../../entities/StructureVersion.js';
import { formatsCompatible } from '../../formats/sniff.js';
import { FORMAT_LABELS, type Format, MEDIA_TYPES } from '../../formats/types.js';
import type { ConvertJobData } from '../../queue/jobs.js';
import { optionsKey } from '../../queue/keys.js';
import type { WorkContext } from '../../runtime/context.js';
import { assertBlobsStored, lockBlob, recordBlob } from '../quota/blobs.js';
import { findDerivation, presentDerivation } from './derivations.js';

/** A conversion that cannot be made, for a reason trying again will not change. */
export class ConversionImpossible extends Error {}

/** Formats whose bonds and charges the loss report reads from the source file itself. */
const CHEMISTRY_FORMATS: readonly Format[] = ['sdf', 'mol', 'mol2', 'xyz'];

/**
 * Stored blob + target format → derived blob via the engine pool. The output is parsed and checked
 * before it is stored, compared with the source (the loss report), and recorded as a Derivation,
 * unique per (source, format, options): a repeated delivery or a second request finds it and runs
 * no engine. Throws EngineError or ConversionImpossible for what would fail again.
 */
export async function convertBlob({ sourceSha256, format, options }: ConvertJobData, ctx: WorkContext & { engines: EnginePool }) {
  const { em } = ctx;
  const existing = await findDerivation(em, sourceSha256, format, options);
  if (existing && (await ctx.blobs.has(existing.blob))) {
    return { ...presentDerivation(existing, (await ctx.blobs.size(existing.blob)) ?? 0), reused: true };
  }
  const source = await em.findOne(StructureVersion, { blob: sourceSha256 }, { orderBy: { createdAt: 'asc' } });
  if (!source) throw new ConversionImpossible('The file to convert is no longer stored.');
  const from = source.format as Format;
  await ctx.job?.updateProgress(10);
  // Where the job's time goes, for the job result and bench:convert.
  const timings = { engineMs: 0, checkMs: 0, storeMs: 0 };
  // The engines read a file: the blob's own on a local store, a copy in scratch from S3.
  const stored = await ctx.blobs.withFile(sourceSha256, async (sourceFile) => {
    const sourceChemistry = CHEMISTRY_FORMATS.includes(from) ? (await ctx.cpu.inspect({ path: sourceFile, format: from, validate: false })).chemistry : {};
    const input = { path: sourceFile, format: from, dialect: source.summary.dialect };
    const started = performance.now();
    return ctx.engines.convert(input, format, async (output, engine) => {
      timings.engineMs = Math.round(performance.now() - started);
      await ctx.job?.updateProgress(60);
      const engineLabel = `${ENGINE_LABELS[engine.name]} ${engine.version}`;
      const checking = performance.now();
      const inspected = await ctx.cpu.inspect({ path: output, format, validate: true });
      timings.checkMs = Math.round(performance.now() - checking);
      const outcome = inspected.outcome;
      if (!outcome?.ok || !inspected.sha256 || inspected.size === undefined) {
        const reason = outcome && !outcome.ok ? outcome.message : 'it could not be read';
        throw new EngineError(`${engineLabel} wrote a ${FORMAT_LABELS[format]} file that molvault cannot read: ${reason}`, 'engine_output_invalid');
      }
      if (inspected.sniffed && !formatsCompatible(format, inspected.sniffed)) {
        throw new EngineError(`${engineLabel} was asked for ${FORMAT_LABELS[format]} but wrote ${FORMAT_LABELS[inspected.sniffed]}.`, 'engine_output_invalid');
      }
      const loss = withEngineNotes(
        lossReport({ format: from, summary: source.summary, chemistry: sourceChemistry }, { format, summary: outcome.summary, chemistry: inspected.chemistry }),
        engine.notes,
      );
      await ctx.job?.updateProgress(80);
      const storing = performance.now();
      {
        const sha256 = inspected.sha256;
        // The engine's output is the store's now: renamed in on a local store (scratch and blobs share
        // DATA_DIR), uploaded to S3; before the transaction that records it (assertBlobsStored says why).
        await ctx.blobs.putFile(output, { sha256, size: inspected.size as number }, { move: true });
        await em.transactional(async (tx) => {
          await lockBlob(tx, sha256);
          await assertBlobsStored(ctx.blobs, [sha256]);
          await recordBlob(tx, { sha256, size: inspected.size as number, storedSize: inspected.size as number, mediaType: MEDIA_TYPES[format] });
          await tx.execute(
            `insert into derivations (id, source_blob_sha256, format, options, options_key, engine, engine_version, blob_sha256, loss, created_at)
           values (gen_random_uuid(), ?, ?, ?::jsonb, ?, ?, ?, ?, ?::jsonb, now())
           on conflict (source_blob_sha256, format, options_key) do update
             set blob_sha256 = excluded.blob_sha256, engine = excluded.engine, engine_version = excluded.engine_version,
                 loss = excluded.loss, created_at = excluded.created_at`,
            [sourceSha256, format, JSON.stringify(options), optionsKey(options), engine.name, engine.version, sha256, JSON.stringify(loss)],
          );
        });
      }
      timings.storeMs = Math.round(performance.now() - storing);
      return findDerivation(em.fork(), sourceSha256, format, options);
    });
  });
  if (!stored) throw new Error('The conversion was stored but its record cannot be found.');
  await ctx.job?.updateProgress(100);
  return { ...presentDerivation(stored, (await ctx.blobs.size(stored.blob)) ?? 0), reused: false, timings };
}
