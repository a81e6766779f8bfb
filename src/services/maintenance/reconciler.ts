import type { EntityManager } from '@mikro-orm/postgresql';
import type { JobContract } from '../../queue/contract.js';
import type { AppContext } from '../../runtime/context.js';

/** Reconcilers read Postgres and Redis, and need no CPU pool. */
export type ReconcileContext = AppContext & { em: EntityManager };

/** Something Postgres calls unfinished, and the job (deterministic id) that moves it on. */
export interface ReconcileCandidate {
  /** What is unfinished, e.g. an upload id. */
  subject: string;
  contract: JobContract<never>;
  data: Record<string, unknown>;
}

/**
 * One kind of unfinished work (uploads, exports, imports: see RECONCILERS in reconcile.ts).
 * `find` reads Postgres only and returns what was last touched before `cutoff`.
 */
export interface Reconciler {
  name: string;
  find(ctx: ReconcileContext, cutoff: Date): Promise<ReconcileCandidate[]>;
  /** Work whose jobs are not one job per subject (a flow) repairs itself instead of returning candidates. */
  repair?(ctx: ReconcileContext, cutoff: Date): Promise<ReconcileReport>;
  /** Records in Postgres that a candidate's job failed for good (as that job's own final failure does). */
  finalise?(ctx: ReconcileContext, candidate: ReconcileCandidate, error: Error): Promise<void>;
}

export interface ReconcileReport {
  examined: number;
  reenqueued: { subject: string; job: string }[];
  /** Work whose last job had failed for good while Postgres still called it unfinished. */
  finalised: string[];
}
