import { expireAuditEvents } from '../../audit/audit.js';
import type { CleanupStep } from './types.js';

const DAY_MS = 86_400_000;

/** Audit events older than AUDIT_RETENTION_DAYS: the one path by which audit entries go. */
export const expiredAudit: CleanupStep = {
  name: 'expired audit events',
  async run(ctx) {
    if (ctx.dryRun) {
      const cutoff = new Date(ctx.now.getTime() - ctx.config.auditRetentionDays * DAY_MS);
      const [row] = await ctx.em.execute<{ n: string }[]>('select count(*) as n from audit_events where created_at < ?', [cutoff]);
      const n = Number(row?.n ?? 0);
      return { removed: n, bytesFreed: 0, items: n ? [{ what: `${n} audit events before ${cutoff.toISOString()}`, bytes: 0 }] : [] };
    }
    const removed = await expireAuditEvents(ctx.em, ctx.config.auditRetentionDays, ctx.now);
    return { removed, bytesFreed: 0, items: removed ? [{ what: `${removed} audit events`, bytes: 0, reason: 'audit retention passed' }] : [] };
  },
};
