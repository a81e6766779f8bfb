import fs from 'node:fs/promises';
import path from 'node:path';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { AppContext } from '../../../runtime/context.js';

export interface CleanupContext extends AppContext {
  em: EntityManager;
  /** Report what would go, change nothing. */
  dryRun: boolean;
  now: Date;
}

/** One thing a step removed (or, in a dry run, would remove). */
export interface CleanupItem {
  what: string;
  bytes: number;
  reason?: string;
}

export interface CleanupStepResult {
  removed: number;
  /** Disk bytes freed (quota bytes released by reservations are reported in the items, not here). */
  bytesFreed: number;
  /** The first items, for the log and the CLI; `removed` counts them all. */
  items: CleanupItem[];
}

/**
 * A named piece of the cleanup schedule. Steps are independent: one failing is logged and the
 * others still run. Add one by writing `src/services/maintenance/cleanup/<name>.ts` and listing it in
 * CLEANUP_STEPS.
 */
export interface CleanupStep {
  name: string;
  run(ctx: CleanupContext): Promise<CleanupStepResult>;
}

const ITEMS_KEPT = 200;

/** Collects a step's results, keeping counts exact and the item list short. */
export class StepTally {
  removed = 0;
  bytesFreed = 0;
  items: CleanupItem[] = [];

  add(item: CleanupItem, freesDisk = true) {
    this.removed++;
    if (freesDisk) this.bytesFreed += item.bytes;
    if (this.items.length < ITEMS_KEPT) this.items.push(item);
  }

  result(): CleanupStepResult {
    return { removed: this.removed, bytesFreed: this.bytesFreed, items: this.items };
  }
}

/** Size and newest modification time of a file or a directory tree (0 and undefined if gone). */
export async function measure(target: string): Promise<{ bytes: number; newestMs: number | undefined }> {
  const stat = await fs.lstat(target).catch(() => undefined);
  if (!stat) return { bytes: 0, newestMs: undefined };
  if (!stat.isDirectory()) return { bytes: stat.size, newestMs: stat.mtimeMs };
  let bytes = 0;
  let newestMs = stat.mtimeMs;
  const entries = await fs.readdir(target, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const inner = await measure(path.join(target, entry.name));
    bytes += inner.bytes;
    if (inner.newestMs !== undefined && inner.newestMs > newestMs) newestMs = inner.newestMs;
  }
  return { bytes, newestMs };
}

/**
 * A step from a function another module exports (expired drafts, trash, export archives):
 * `fromFunction('expired drafts', (ctx) => deleteExpiredDrafts(ctx.em, ...))`. It may return a
 * count or { removed, bytesFreed, items }. Unless `dryRunSafe` (the function honours ctx.dryRun
 * itself), a dry run skips it and says so.
 */
export function fromFunction(
  name: string,
  run: (ctx: CleanupContext) => Promise<number | { removed: number; bytesFreed?: number; items?: CleanupItem[] }>,
  options: { dryRunSafe?: boolean } = {},
): CleanupStep {
  return {
    name,
    async run(ctx) {
      if (ctx.dryRun && !options.dryRunSafe) return { removed: 0, bytesFreed: 0, items: [{ what: `${name}: not run in a dry run`, bytes: 0 }] };
      const result = await run(ctx);
      if (typeof result === 'number') return { removed: result, bytesFreed: 0, items: [] };
      return { removed: result.removed, bytesFreed: result.bytesFreed ?? 0, items: (result.items ?? []).slice(0, 200) };
    },
  };
}
