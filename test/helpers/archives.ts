import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import yauzl from 'yauzl';

export interface ArchiveEntry {
  name: string;
  bytes: Buffer;
}

async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every file of a .zip, in the order of its central directory, read with yauzl. */
export async function readZip(buffer: Buffer): Promise<ArchiveEntry[]> {
  const zip = await yauzl.fromBufferPromise(buffer, { lazyEntries: true, strictFileNames: true });
  const entries: ArchiveEntry[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      entries.push({ name: entry.fileName, bytes: await collect(await zip.openReadStreamPromise(entry)) });
    }
  } finally {
    zip.close();
  }
  return entries;
}

/** Every file of a .tar.gz, in order, read with tar-stream. */
export async function readTarGz(buffer: Buffer): Promise<ArchiveEntry[]> {
  const extract = tar.extract();
  Readable.from([gunzipSync(buffer)]).pipe(extract);
  const entries: ArchiveEntry[] = [];
  for await (const entry of extract) {
    if (entry.header.type !== 'file') throw new Error(`unexpected ${entry.header.type} entry ${entry.header.name}`);
    entries.push({ name: entry.header.name, bytes: await collect(entry) });
  }
  return entries;
}

export function readArchive(buffer: Buffer, kind: 'zip' | 'tar.gz'): Promise<ArchiveEntry[]> {
  return kind === 'zip' ? readZip(buffer) : readTarGz(buffer);
}
