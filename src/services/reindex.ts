import { enqueue } from '../jobs/enqueue.js';
import { indexJob } from '../jobs/handlers/index.js';
import type { AppContext } from './context.js';

/** Enqueues the index job for changed structures, one job per structure and change, so search follows every edit. */
export async function reindexStructures(app: AppContext, structures: { id: string; owner: string }[]): Promise<void> {
  const stamp = String(Date.now());
  await Promise.all(structures.map((s) => enqueue(app.queues, indexJob, { structureId: s.id, ownerId: s.owner, stamp })));
}
