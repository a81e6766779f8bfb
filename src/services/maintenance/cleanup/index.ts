import type { EntityManager } from '@mikro-orm/postgresql';
import { formatBytes } from '../../../lib/bytes.js';
import type { AppContext } from '../../../runtime/context.js';
import { abandonedImports } from './abandonedImports.js';
import { expiredAudit } from './expiredAudit.js';

import { expiredExports } from './expiredExports.js';
import { expiredDrafts, expiredTrash, staleDiffCache, versionPruning } from './retention.js';
import { staleBlobPuts } from './staleBlobPuts.js';
import { blobTempFiles, scratchDirs, staleStaging } from './staleFiles.js';
import { staleReservations } from './staleReservations.js';
import { stuckUploads } from './stuckUploads.js';
import type { CleanupContext, CleanupStep, CleanupStepResult } from './types.js';

export type { CleanupContext, CleanupStep, CleanupStepResult } from './types.js';
export { fromFunction } from './types.js';

/**
 * The cleanup schedule, in order: stuck uploads are failed first (which releases their staging and
 * reservations), then what crashes left behind. Expired drafts, trash and export archives plug in
 * here as one line each (retention.ts holds trash, drafts, pruning and the diff cache; expiredExports.ts the archives);
 * garbage collection runs as its own `gc` job (and last in the CLI), after them.
 */
export const CLEANUP_STEPS: CleanupStep[] = [
  stuckUploads,
  abandonedImports,
  staleReservations,
  staleBlobPuts,
  expiredTrash,
  expiredDrafts,
  expiredExports,
  versionPruning,
  staleDiffCache,
  expiredAudit,
  staleStaging,
  blobTempFiles,
  scratchDirs,
];

export interface CleanupReport {
  dryRun: boolean;
  startedAt: string;
  steps: (CleanupStepResult & { name: string; error?: string })[];
  removed: number;
  bytesFreed: number;
}

/** Runs the steps one after another; a failing step is reported and the rest still run. */
export async function runCleanup(
  ctx: AppContext & { em: EntityManager },
  options: { dryRun?: boolean; steps?: CleanupStep[]; now?: Date } = {},
): Promise<CleanupReport> {
  const stepContext: CleanupContext = { ...ctx, dryRun: options.dryRun ?? false, now: options.now ?? new Date() };
  const report: CleanupReport = { dryRun: stepContext.dryRun, startedAt: stepContext.now.toISOString(), steps: [], removed: 0, bytesFreed: 0 };
  for (const step of options.steps ?? CLEANUP_STEPS) {
    try {
      const result = await step.run({ ...stepContext, em: ctx.em.fork() });
      report.steps.push({ name: step.name, ...result });
      report.removed += result.removed;
      report.bytesFreed += result.bytesFreed;
      if (result.removed > 0) {
        ctx.log.info(
          { step: step.name, dryRun: stepContext.dryRun, removed: result.removed, bytesFreed: result.bytesFreed, items: result.items.slice(0, 20) },
          `cleanup: ${step.name}: ${stepContext.dryRun ? 'would remove' : 'removed'} ${result.removed}, ${formatBytes(result.bytesFreed)} freed`,
        );
      }
    } catch (error) {
      ctx.log.error({ err: error, step: step.name }, `cleanup: ${step.name} failed`);
      report.steps.push({ name: step.name, removed: 0, bytesFreed: 0, items: [], error: (error as Error).message });
    }
  }
  ctx.log.info(
    { dryRun: stepContext.dryRun, removed: report.removed, bytesFreed: report.bytesFreed },
    `cleanup ${stepContext.dryRun ? '(dry run) would free' : 'freed'} ${formatBytes(report.bytesFreed)}`,
  );
  return report;
}
