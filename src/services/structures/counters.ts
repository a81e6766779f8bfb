import type { EntityManager } from '@mikro-orm/postgresql';
import { STRUCTURE_JSON } from '../../search/cards.js';
import { type Visibility, visibleStructuresSql } from '../auth/visibility.js';

/**
 * A CTE (`relaxed`, joined by the update) that commits its statement without waiting for the WAL:
 * a view or download counter is not worth a disk flush per read, and a read is then not queued
 * behind the fsyncs of an import (a crash may lose the last few counts, nothing else). set_config(…,
 * true) lasts until the statement's own transaction commits, which is where synchronous_commit is
 * read: one round trip instead of BEGIN, SET LOCAL, UPDATE, COMMIT, each a wait for the CPU while
 * an import runs.
 */
const RELAXED_COMMIT = "relaxed as (select set_config('synchronous_commit', 'off', true))";

/**
 * A structure as the API shows it, as JSON text built by Postgres (as serializeStructure does), with
 * its view counted: one statement, where a lookup, a count and a presentation would be five round
 * trips, each waiting for a core while an import runs. Undefined when the caller cannot see it.
 */
export async function viewStructureJson(em: EntityManager, visible: Visibility, structureId: string): Promise<string | undefined> {
  const condition = visibleStructuresSql(visible, 'structures');
  const [row] = await em.execute<{ structure: string }[]>(
    `with ${RELAXED_COMMIT},
          cs as (update structures set view_count = view_count + 1 from relaxed where id = ? and ${condition.sql} returning structures.*)
     select ${STRUCTURE_JSON} as structure from cs`,
    [structureId, ...condition.params],
  );
  return row?.structure;
}

/** Counts a whole download of a structure (see RELAXED_COMMIT). */
export async function countDownload(em: EntityManager, structureId: string): Promise<number | undefined> {
  const [row] = await em.execute<{ n: string }[]>(
    `with ${RELAXED_COMMIT}
     update structures set download_count = download_count + 1 from relaxed where id = ? returning download_count as n`,
    [structureId],
  );
  return row ? Number(row.n) : undefined;
}
