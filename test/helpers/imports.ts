import { createGzip } from 'node:zlib';
import * as tar from 'tar-stream';
import * as yazl from 'yazl';
import type { Client } from './factories.js';

export interface ImportFile {
  name: string;
  content: Uint8Array;
}

/** POST /v1/projects/:id/imports with many `file` parts; names may be relative paths. */
export async function importFiles(api: Client, projectId: string, files: ImportFile[], fields: Record<string, string | string[]> = {}) {
  const form = new FormData();
  for (const [key, value] of Object.entries(fields)) for (const v of Array.isArray(value) ? value : [value]) form.append(key, v);
  for (const file of files) form.append('file', new Blob([file.content as Uint8Array<ArrayBuffer>]), file.name);
  const response = await api.raw(`/v1/projects/${projectId}/imports`, { method: 'POST', body: form });
  return { status: response.status, headers: response.headers, body: (await response.json()) as any };
}

/** POST an archive as the raw body. */
export async function importArchive(api: Client, projectId: string, bytes: Uint8Array, query = '') {
  const response = await api.raw(`/v1/projects/${projectId}/imports${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes as Uint8Array<ArrayBuffer>,
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as any };
}

/** Polls an import until it is completed or failed; returns it with every item (all pages). */
export async function waitForImport(api: Client, importId: string, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await api.get(`/v1/imports/${importId}?limit=1`);
    if (status !== 200) throw new Error(`GET /v1/imports/${importId} answered ${status}: ${JSON.stringify(body)}`);
    if (body.state === 'completed' || body.state === 'failed') return { ...body, items: await allItems(api, importId) };
    if (Date.now() > deadline) throw new Error(`import ${importId} still ${body.state} after ${timeoutMs} ms: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function allItems(api: Client, importId: string, query = ''): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const { body } = await api.get(`/v1/imports/${importId}?limit=500${query}${cursor ? `&cursor=${cursor}` : ''}`);
    items.push(...body.items);
    cursor = body.nextCursor;
  } while (cursor);
  return items;
}

export interface TarEntrySpec {
  name: string;
  content?: Uint8Array;
  type?: 'file' | 'symlink' | 'link' | 'directory' | 'fifo' | 'character-device';
  linkname?: string;
}

/** A tar (gzipped unless told otherwise) built in memory with tar-stream. */
export async function buildTar(entries: TarEntrySpec[], gzip = true): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const source = gzip ? pack.pipe(createGzip()) : pack;
  const done = new Promise<void>((resolve, reject) => {
    source.on('data', (chunk: unknown) => {
      chunks.push(chunk as Buffer);
    });
    source.on('end', () => resolve());
    source.on('error', reject);
  });
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    await new Promise<void>((resolve, reject) =>
      pack.entry(
        { name: entry.name, type, linkname: entry.linkname, size: type === 'file' ? (entry.content?.length ?? 0) : 0 },
        type === 'file' ? Buffer.from(entry.content ?? new Uint8Array()) : '',
        (error) => (error ? reject(error) : resolve()),
      ),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface ZipEntrySpec {
  name: string;
  content: Uint8Array;
  /** Unix mode, e.g. 0o120777 for a symbolic link. */
  mode?: number;
  compress?: boolean;
}

/**
 * A zip built in memory with yazl. yazl refuses hostile names ("../x", "/x"), as it should; those are
 * written under a placeholder of the same length and patched into the headers afterwards (names are
 * not covered by the CRC), which is how a hostile archive would look.
 */
export async function buildZip(entries: ZipEntrySpec[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const patches: [Buffer, Buffer][] = [];
  entries.forEach((entry, i) => {
    let name = entry.name;
    if (name.startsWith('/') || name.split('/').includes('..')) {
      const placeholder = `${String(i).padStart(2, '0')}${'_'.repeat(name.length)}`
        .slice(0, name.length)
        .replace(/^(.{0,2})/, (m) => m.replace(/[^0-9]/g, 'q'));
      patches.push([Buffer.from(placeholder), Buffer.from(name)]);
      name = placeholder;
    }
    zip.addBuffer(Buffer.from(entry.content), name, { mode: entry.mode, compress: entry.compress ?? true });
  });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  const bytes = Buffer.concat(chunks);
  for (const [from, to] of patches) {
    for (let at = bytes.indexOf(from); at >= 0; at = bytes.indexOf(from, at + 1)) to.copy(bytes, at);
  }
  return bytes;
}
