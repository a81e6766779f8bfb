import type { Config } from '../config/index.js';
import type { Logger } from '../lib/logger.js';
import { bootstrapServices } from '../runtime/bootstrap.js';
import { closeAppContext, createAppContext } from '../runtime/context.js';
import { runCleanup } from '../services/maintenance/cleanup/index.js';
import { collectGarbage } from '../services/maintenance/gc.js';

/**
 * `molvault cleanup [--dry-run]`: the cleanup steps, then garbage collection, once, now; prints
 * what was (or, with --dry-run, would be) removed and the bytes freed, as JSON.
 */
export async function cleanupCommand(config: Config, log: Logger, options: { dryRun: boolean }) {
  const services = await bootstrapServices(config, log);
  const ctx = await createAppContext({ ...config, databaseUrl: services.databaseUrl, redisUrl: services.redisUrl }, log);
  try {
    const now = new Date();
    const cleanup = await runCleanup({ ...ctx, em: ctx.orm.em.fork() }, { dryRun: options.dryRun, now });
    const gc = await collectGarbage({ ...ctx, em: ctx.orm.em.fork() }, { dryRun: options.dryRun, now });
    return {
      dryRun: options.dryRun,
      removed: cleanup.removed + gc.blobs.removed + gc.files.removed,
      bytesFreed: cleanup.bytesFreed + gc.blobs.bytesFreed + gc.files.bytesFreed,
      steps: cleanup.steps,
      gc,
    };
  } finally {
    await closeAppContext(ctx);
    await services.stop();
  }
}
