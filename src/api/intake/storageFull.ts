import type { AppContext } from '../../runtime/context.js';
import { asStorageFull, checkFreeSpace, type StorageFullError } from '../../storage/freeSpace.js';
import { ApiError } from '../errors.js';

/** How long a client is told to wait before it tries a refused upload again. */
const RETRY_AFTER_SECONDS = 60;

function refusal(error: StorageFullError): ApiError {
  const message = error.message.startsWith("molvault's storage is full")
    ? error.message
    : "molvault's storage is full: the disk filled while the file was received, so nothing was stored. Try again once an administrator has freed space.";
  return new ApiError(507, 'storage_full', message, { ...error.details, retryAfterSeconds: RETRY_AFTER_SECONDS });
}

/**
 * Refuses new work at once (507 storage_full, nothing kept) when keeping `incomingBytes` more would
 * leave less than DISK_FREE_MIN_BYTES free where molvault keeps files.
 */
export async function refuseWhenStorageFull(app: AppContext, incomingBytes = 0): Promise<void> {
  const { dataDir, stagingDir, blobDir, diskFreeMinBytes } = app.config;
  try {
    await checkFreeSpace([dataDir, stagingDir, blobDir], diskFreeMinBytes, incomingBytes);
  } catch (error) {
    const full = asStorageFull(error);
    if (full) throw refusal(full);
    throw error;
  }
}

/** A disk that filled while a request was received (ENOSPC) as the 507 answer; anything else unchanged. */
export function storageFullRefusal(error: unknown): unknown {
  if (error instanceof ApiError) return error;
  const full = asStorageFull(error);
  return full ? refusal(full) : error;
}
