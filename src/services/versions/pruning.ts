import type { EntityManager } from '@mikro-orm/postgresql';
import { sqlArray } from '../../db/arrays.js';
import type { BlobStore } from '../../storage/blobStore.js';
import { deleteBlobIfUnreferenced, lockBlob } from '../quota/blobs.js';
import { refreshUsage } from '../quota/usage.js';

/** A project's version retention: keep the newest `keepLast` versions and/or those younger than `keepDays`. */
export interface PrunePolicy {
  keepLast: number | null;
  keepDays: number | null;
}

export interface PruneCandidate {
  id: string;
  number: number;
  blob: string;
  pinned: boolean;
  createdAt: Date;
}

export interface PruneResult {
  versions: number;
  blobsDeleted: number;
  bytesFreed: number;
}

const DAY_MS = 24 * 3600 * 1000;

export function hasPolicy(policy: PrunePolicy): boolean {
  return policy.keepLast !== null || policy.keepDays !== null;
}

/**
 * Which versions a policy lets go. A version is kept when any rule keeps it (like `keep-last`
 * and `keep-within` of backup tools): it is among the newest `keepLast`, or younger than
 * `keepDays`, or pinned, or current. With no rule set nothing is pruned.
 */
export function versionsToPrune(versions: PruneCandidate[], currentVersionId: string | null, policy: PrunePolicy, now = new Date()): PruneCandidate[] {
  if (!hasPolicy(policy)) return [];
  const newestFirst = [...versions].sort((a, b) => b.number - a.number);
  return newestFirst.filter((version, rank) => {
    if (version.pinned || version.id === currentVersionId) return false;
    const keptByCount = policy.keepLast !== null && rank < policy.keepLast;
    const keptByAge = policy.keepDays !== null && now.getTime() - version.createdAt.getTime() < policy.keepDays * DAY_MS;
    return !keptByCount && !keptByAge;
  });
}

async function candidates(em: EntityManager, structureId: string) {
  const rows = await em.execute<{ id: string; number: number; blob_sha256: string; pinned: boolean; created_at: Date; current_version_id: string | null }[]>(
    `select v.id, v.number, v.blob_sha256, v.pinned, v.created_at, s.current_version_id
       from structure_versions v join structures s on s.id = v.structure_id
      where v.structure_id = ?`,
    [structureId],
  );
  return {
    current: rows[0]?.current_version_id ?? null,
    versions: rows.map((r) => ({ id: r.id, number: r.number, blob: r.blob_sha256, pinned: r.pinned, createdAt: new Date(r.created_at) })),
  };
}

async function policyOf(em: EntityManager, structureId: string): Promise<(PrunePolicy & { ownerId: string }) | undefined> {
  const [row] = await em.execute<{ keep_last: number | null; keep_days: number | null; owner_id: string }[]>(
    `select p.prune_keep_last as keep_last, p.prune_keep_days as keep_days, s.owner_id
       from structures s join projects p on p.id = s.project_id where s.id = ?`,
    [structureId],
  );
  return row ? { keepLast: row.keep_last, keepDays: row.keep_days, ownerId: row.owner_id } : undefined;
}

/**
 * Applies the project's policy to one structure, in one transaction: the versions it lets go are
 * deleted and their blobs too once nothing else refers to them, so usage drops. Blob locks are
 * taken before the structure row, in hash order, the same order snapshot and purge use.
 */
export async function pruneStructure(em: EntityManager, blobs: BlobStore, structureId: string, now = new Date()): Promise<PruneResult> {
  const none: PruneResult = { versions: 0, blobsDeleted: 0, bytesFreed: 0 };
  const policy = await policyOf(em, structureId);
  if (!policy || !hasPolicy(policy)) return none;
  const first = await candidates(em, structureId);
  const planned = versionsToPrune(first.versions, first.current, policy, now);
  if (planned.length === 0) return none;
  const result = await em.transactional(async (tx) => {
    const hashes = [...new Set(planned.map((v) => v.blob))].sort();
    for (const hash of hashes) await lockBlob(tx, hash);
    const [locked] = await tx.execute<{ id: string }[]>('select id from structures where id = ? for update', [structureId]);
    if (!locked) return none;
    // Decided again under the lock: a version may have become current, pinned or gone meanwhile.
    const now2 = await candidates(tx, structureId);
    const prunable = versionsToPrune(now2.versions, now2.current, policy, now).filter((v) => hashes.includes(v.blob));
    if (prunable.length === 0) return none;
    await tx.execute(`delete from structure_versions where id = any(?::uuid[])`, [sqlArray(prunable.map((v) => v.id))]);
    const sizes = await tx.execute<{ sha256: string; size: string }[]>(`select sha256, size from blobs where sha256 = any(?::text[])`, [sqlArray(hashes)]);
    const sizeOf = new Map(sizes.map((r) => [r.sha256, Number(r.size)]));
    let blobsDeleted = 0;
    let bytesFreed = 0;
    for (const hash of new Set(prunable.map((v) => v.blob))) {
      if (await deleteBlobIfUnreferenced(tx, blobs, hash)) {
        blobsDeleted++;
        bytesFreed += sizeOf.get(hash) ?? 0;
      }
    }
    return { versions: prunable.length, blobsDeleted, bytesFreed };
  });
  // The versions left the history category (and their bytes the disk): the stored usage follows.
  if (result.versions > 0) await refreshUsage(em, policy.ownerId);
  return result;
}

/** Applies a project's policy to each of its structures (trashed ones too). */
export async function pruneProject(em: EntityManager, blobs: BlobStore, projectId: string, now = new Date()): Promise<PruneResult> {
  const structures = await em.execute<{ id: string }[]>('select id from structures where project_id = ?', [projectId]);
  const total: PruneResult = { versions: 0, blobsDeleted: 0, bytesFreed: 0 };
  for (const { id } of structures) {
    const result = await pruneStructure(em, blobs, id, now);
    total.versions += result.versions;
    total.blobsDeleted += result.blobsDeleted;
    total.bytesFreed += result.bytesFreed;
  }
  return total;
}

/** The periodic pass (for the cleanup schedule): every project that has a policy. Age rules expire versions without any new upload. */
export async function pruneAll(em: EntityManager, blobs: BlobStore, now = new Date()): Promise<PruneResult & { projects: number }> {
  const projects = await em.execute<{ id: string }[]>('select id from projects where prune_keep_last is not null or prune_keep_days is not null');
  const total = { projects: projects.length, versions: 0, blobsDeleted: 0, bytesFreed: 0 };
  for (const { id } of projects) {
    const result = await pruneProject(em, blobs, id, now);
    total.versions += result.versions;
    total.blobsDeleted += result.blobsDeleted;
    total.bytesFreed += result.bytesFreed;
  }
  return total;
}
