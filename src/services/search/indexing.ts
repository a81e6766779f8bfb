import { randomBytes } from 'node:crypto';
import { enqueue } from '../../jobs/enqueue.js';
import { indexJob } from '../../jobs/handlers/searchIndex.js';
import type { QueueSet } from '../../jobs/queues.js';

/**
 * THE way to keep search in step: call this after any committed change to a structure (new version,
 * name, description, tags, metadata, trash, restore, purge). The index job reads the structure as it
 * is when it runs, so calling it once per change is enough and calling it twice is harmless.
 * Each call gets its own job id: a change made while an earlier job runs is never swallowed by it.
 */
export async function enqueueIndex(queues: QueueSet, structureId: string): Promise<string> {
  const stamp = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  return enqueue(queues, indexJob, { structureId, stamp });
}

/** enqueueIndex for several structures at once (a tag renamed across a project, a metadata import). */
export async function enqueueIndexAll(queues: QueueSet, structureIds: readonly string[]): Promise<void> {
  await Promise.all(structureIds.map((id) => enqueueIndex(queues, id)));
}
