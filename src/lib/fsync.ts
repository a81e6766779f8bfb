import fs from 'node:fs/promises';

/** Flushes a file's data, or a directory's entries, to the disk. */
export async function fsyncPath(target: string): Promise<void> {
  const handle = await fs.open(target, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
