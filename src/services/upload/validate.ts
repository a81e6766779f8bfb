import type { Format, Problem } from '../../formats/types.js';
import type { WorkContext } from '../../runtime/context.js';
import type { ParsedOnIngest } from './ingest.js';
import { invalidStructure, parseAborted } from './refusals.js';
import { endUploads, type UploadEnd, type UploadRow } from './uploads.js';

export interface ValidateOutcome {
  validated: Map<string, { atoms: number; warnings: number }>;
  refused: Map<string, UploadEnd>;
  /** Met an error of ours: nothing was recorded; the caller retries or takes it another way. */
  errors: Map<string, unknown>;
}

/**
 * The validate stage for ingested uploads (`processing`, blob and format known, no summary yet):
 * each file parsed and checked in the CPU pool (all queued at once), or taken as parsed on ingest;
 * then one statement records every summary, kind and report. A file found unsound, or one that
 * hangs or exhausts the parser, is refused with its reasons. One upload is a batch of one.
 */
export async function validateUploads(
  ctx: WorkContext,
  rows: readonly UploadRow[],
  parsedOnIngest: ReadonlyMap<string, ParsedOnIngest | undefined> = new Map(),
): Promise<ValidateOutcome> {
  const outcome: ValidateOutcome = { validated: new Map(), refused: new Map(), errors: new Map() };
  if (rows.length === 0) return outcome;
  const parsed = await Promise.all(
    rows.map(async (row) => {
      const earlier: Problem[] = row.validation?.warnings ?? [];
      try {
        const ready = parsedOnIngest.get(row.id);
        const result =
          ready?.format === row.format
            ? ready.outcome
            : await ctx.blobs.withFile(row.blob_sha256 as string, (file) => ctx.cpu.parse({ path: file, format: row.format as Format }));
        if (!result.ok) {
          outcome.refused.set(row.id, { uploadId: row.id, state: 'rejected', error: invalidStructure(result, earlier) });
          return undefined;
        }
        return {
          id: row.id,
          summary: result.summary,
          kind: result.kind,
          validation: { ...result.report, warnings: [...earlier, ...result.report.warnings] },
        };
      } catch (error) {
        const aborted = parseAborted(error);
        if (aborted) outcome.refused.set(row.id, { uploadId: row.id, state: 'rejected', error: aborted });
        else outcome.errors.set(row.id, error);
        return undefined;
      }
    }),
  );
  await endUploads(ctx.em, ctx, [...outcome.refused.values()]);
  const ok = parsed.filter((p) => p !== undefined);
  if (ok.length === 0) return outcome;
  await ctx.em.execute(
    `update uploads u set summary = x.summary, kind = x.kind, validation = x.validation, updated_at = now()
       from jsonb_to_recordset(?::jsonb) as x(id uuid, summary jsonb, kind text, validation jsonb)
      where u.id = x.id and u.state = 'processing' and u.summary is null`,
    [JSON.stringify(ok)],
  );
  for (const item of ok) outcome.validated.set(item.id, { atoms: item.summary.atoms, warnings: item.validation.warnings.length });
  return outcome;
}
