/**
 * Full storage, told apart from every other failure. Below a free-space floor
 * (DISK_FREE_MIN_BYTES) on a filesystem molvault writes to (DATA_DIR, staging, blobs), new work is
 * refused before a byte of it is kept (`checkFreeSpace`: the API answers 507 storage_full); work
 * already accepted that meets a full disk (ENOSPC, a disk quota, Postgres's disk_full) raises
 * `StorageFullError`, which is not the file's fault: its job waits and tries again until there is
 * room, and nothing is marked failed for it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { formatBytes } from '../lib/bytes.js';

/** Storage is full: no fault of the file or the request; retry once space is freed. */
export class StorageFullError extends Error {
  readonly code = 'storage_full';
  constructor(
    message: string,
    readonly details: { path?: string; freeBytes?: number; minFreeBytes?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageFullError';
  }
}

/** Error codes that mean "no room": the filesystem (ENOSPC), a disk quota (EDQUOT), Postgres (53100 disk_full). */
const FULL_CODES = new Set(['ENOSPC', 'EDQUOT', '53100', 'storage_full']);
/** Errors that crossed a thread or process boundary keep only their message. */
const FULL_MESSAGE = /\bENOSPC\b|no space left on device|\bEDQUOT\b|disk quota exceeded|could not extend file|No space left/i;

/** Whether `error` (or what caused it) says storage is full. Recognises StorageFullError by name too. */
export function isStorageFull(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (typeof e !== 'object') return typeof e === 'string' && FULL_MESSAGE.test(e);
    const { name, code, message } = e as { name?: unknown; code?: unknown; message?: unknown };
    if (name === 'StorageFullError' || (typeof code === 'string' && FULL_CODES.has(code))) return true;
    if (typeof message === 'string' && FULL_MESSAGE.test(message)) return true;
  }
  return false;
}

/** `error` as a StorageFullError when it means storage is full; otherwise undefined. */
export function asStorageFull(error: unknown): StorageFullError | undefined {
  if (error instanceof StorageFullError) return error;
  if (!isStorageFull(error)) return undefined;
  return new StorageFullError('The disk molvault writes to is full; the work waits until space is freed.', {}, { cause: error });
}

/** Runs `work`, turning a full-storage error into StorageFullError (anything else passes unchanged). */
export async function storageFullAware<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw asStorageFull(error) ?? error;
  }
}

/** The nearest existing directory at or above `dir` (staging and blobs are made on first use). */
async function existing(dir: string): Promise<string> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const found = await fs
      .stat(current)
      .then(() => true)
      .catch(() => false);
    if (found || path.dirname(current) === current) return current;
  }
}

export interface FreeSpace {
  path: string;
  freeBytes: number;
}

/** Free bytes (for an unprivileged writer) on the filesystem of each directory, fewest first. */
export async function freeSpace(dirs: readonly string[]): Promise<FreeSpace[]> {
  const found = await Promise.all(
    [...new Set(dirs.map((dir) => path.resolve(dir)))].map(async (dir) => {
      const stats = await fs.statfs(await existing(dir));
      return { path: dir, freeBytes: stats.bavail * stats.bsize };
    }),
  );
  return found.sort((a, b) => a.freeBytes - b.freeBytes);
}

/**
 * Throws StorageFullError when keeping `incomingBytes` more would leave less than `minFreeBytes`
 * free on any of `dirs`' filesystems. A floor of 0 turns the check off.
 */
export async function checkFreeSpace(dirs: readonly string[], minFreeBytes: number, incomingBytes = 0): Promise<void> {
  if (minFreeBytes <= 0) return;
  const [tightest] = await freeSpace(dirs);
  if (!tightest || tightest.freeBytes - incomingBytes >= minFreeBytes) return;
  throw new StorageFullError(
    `molvault's storage is full: ${formatBytes(tightest.freeBytes)} free where it keeps files, under the ${formatBytes(minFreeBytes)} it must keep free, so nothing was stored. Try again once an administrator has freed space.`,
    { path: tightest.path, freeBytes: tightest.freeBytes, minFreeBytes },
  );
}
