import { randomBytes } from 'node:crypto';
import { Blob as BlobRow } from '../../src/entities/Blob.js';
import { Structure } from '../../src/entities/Structure.js';
import { StructureVersion } from '../../src/entities/StructureVersion.js';
import { serializeStructure } from '../../src/entities/serialize.js';
import type { AppContext } from '../../src/runtime/context.js';
import { createToken, createUser } from '../../src/services/auth/auth.js';

export interface TestUser {
  id: string;
  email: string;
  token: string;
}

export async function userFactory(ctx: AppContext, options: { admin?: boolean; quotaBytes?: number } = {}): Promise<TestUser> {
  const em = ctx.orm.em.fork();
  const email = `user-${randomBytes(4).toString('hex')}@example.org`;
  const user = await createUser(em, { email, role: options.admin ? 'admin' : 'user', quotaBytes: options.quotaBytes ?? 10 * 1024 ** 3 });
  const { token } = await createToken(em, user.id);
  return { id: user.id, email, token };
}

/** Status, headers and the body as JSON (or text when it is not JSON). */
async function readResponse(response: Response) {
  const text = await response.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: response.status, headers: response.headers, body };
}

/** A small HTTP client bound to one user's token. */
export function client(baseUrl: string, token?: string) {
  const headers = (extra: Record<string, string> = {}) => ({ ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra });
  const json = async (method: string, path: string, body?: unknown, extra: Record<string, string> = {}) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: headers(body !== undefined ? { 'content-type': 'application/json', ...extra } : extra),
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return readResponse(response);
  };
  return {
    get: (path: string, extra?: Record<string, string>) => json('GET', path, undefined, extra),
    post: (path: string, body?: unknown, extra?: Record<string, string>) => json('POST', path, body ?? {}, extra),
    patch: (path: string, body: unknown) => json('PATCH', path, body),
    delete: (path: string) => json('DELETE', path),
    raw: (path: string, init: RequestInit = {}) =>
      fetch(`${baseUrl}${path}`, { ...init, headers: { ...headers(), ...(init.headers as Record<string, string>) } }),
    async upload(
      path: string,
      file: { name: string; content: Uint8Array | string },
      fields: Record<string, string | string[]> = {},
      extra: Record<string, string> = {},
    ) {
      const form = new FormData();
      for (const [key, value] of Object.entries(fields)) {
        for (const v of Array.isArray(value) ? value : [value]) form.append(key, v);
      }
      const bytes = typeof file.content === 'string' ? new TextEncoder().encode(file.content) : file.content;
      form.append('file', new Blob([bytes as Uint8Array<ArrayBuffer>]), file.name);
      const response = await fetch(`${baseUrl}${path}`, { method: 'POST', headers: headers(extra), body: form });
      return readResponse(response);
    },
  };
}

export type Client = ReturnType<typeof client>;

/** Polls an upload until it reaches a final state (and, if stored, is searchable). */
export async function waitForUpload(api: Client, uploadId: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await api.get(`/v1/uploads/${uploadId}`);
    if (body?.state === 'rejected' || body?.state === 'failed' || (body?.state === 'stored' && body.searchable)) return body;
    if (Date.now() > deadline) throw new Error(`upload ${uploadId} still ${body?.state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Uploads a new structure and waits until it is stored; returns its id. */
export async function storedStructure(api: Client, projectId: string, name: string, content: Uint8Array) {
  const response = await api.upload(`/v1/projects/${projectId}/structures`, { name, content }, {}, { prefer: 'wait=30' });
  if (response.status !== 201) throw new Error(`upload of ${name} answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body.structure.id as string;
}

/** Saves a draft as a raw body; returns the status and the JSON answer. */
export async function putDraft(api: Client, structureId: string, body: Uint8Array, query = '') {
  const response = await api.raw(`/v1/structures/${structureId}/draft${query}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: body as Uint8Array<ArrayBuffer>,
  });
  return { status: response.status, body: (await response.json()) as any };
}

/** What serializeStructure says of a structure (with a current version) as it is now in Postgres, as JSON would carry it. */
export async function serializedNow(ctx: AppContext, id: string) {
  const em = ctx.orm.em.fork();
  const structure = await em.findOneOrFail(Structure, { id });
  const version = await em.findOneOrFail(StructureVersion, { id: structure.currentVersion as string });
  const blob = await em.findOneOrFail(BlobRow, { sha256: version.blob });
  return JSON.parse(JSON.stringify(serializeStructure(structure, { version, size: blob.size })));
}
