import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { apiClient, ImportRequestError, ImportStopped, runImport } from '../src/cli/import.js';

/** A real HTTP server that answers from a script of steps: a status, or 'drop' (the connection closed unanswered). */
async function scriptedServer(steps: (number | 'drop')[]) {
  let hits = 0;
  const server = http.createServer((req, res) => {
    const step = steps[Math.min(hits++, steps.length - 1)];
    req.resume();
    if (step === 'drop') return void req.socket.destroy();
    res.writeHead(step, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify(step < 400 ? { items: [], nextCursor: null } : { error: { code: step === 503 ? 'unavailable' : 'internal_error', message: 'not now' } }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits, close: () => new Promise((r) => server.close(r)) };
}

const quick = { forMs: 5_000, firstDelayMs: 10, maxDelayMs: 40 };

describe('molvault import against a sick server', () => {
  let close: (() => Promise<unknown>) | undefined;
  afterEach(async () => close?.());

  it('retries 503, 500 and dropped connections with backoff until the server answers', async () => {
    const server = await scriptedServer([503, 500, 'drop', 200]);
    close = server.close;
    const { body, status } = await apiClient(server.url, 'mv_test', quick).request<{ items: unknown[] }>('GET', '/v1/projects');
    expect(status).toBe(200);
    expect(body.items).toEqual([]);
    expect(server.hits()).toBe(4);
  });

  it('does not retry a refusal (4xx), and gives up on a server sick for longer than its patience, with the reason', async () => {
    const refusing = await scriptedServer([404]);
    close = refusing.close;
    await expect(apiClient(refusing.url, 'mv_test', quick).request('GET', '/v1/projects')).rejects.toMatchObject({ status: 404 });
    expect(refusing.hits()).toBe(1);
    await refusing.close();
    const sick = await scriptedServer([503]);
    close = sick.close;
    const error = await apiClient(sick.url, 'mv_test', { forMs: 300, firstDelayMs: 10, maxDelayMs: 40 })
      .request('GET', '/v1/projects')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImportRequestError);
    expect((error as ImportRequestError).message).toMatch(/answered 503: not now/);
    expect(sick.hits()).toBeGreaterThan(2);
  });

  it('says how far it got when the server stays sick past its patience: files sent, imports started, and that a re-run resumes', async () => {
    const project = { id: '00000000-0000-4000-8000-000000000001', name: 'lab' };
    let importPosts = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      const answer = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'GET' && req.url?.startsWith('/v1/projects')) return answer(200, { items: [project], nextCursor: null });
      if (req.url?.endsWith('/imports/known')) return answer(200, { known: [], refused: [] });
      importPosts++;
      return answer(503, { error: { code: 'service_unavailable', message: 'not now' } });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    close = () => new Promise((r) => server.close(r));
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-import-stopped-'));
    try {
      await fs.writeFile(path.join(dir, 'a.pdb'), 'ATOM      1  CA  ALA A   1       0.000   0.000   0.000  1.00  0.00           C\n');
      const error = await runImport({
        source: dir,
        project: 'lab',
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        token: 'mv_test',
        retry: { forMs: 300, firstDelayMs: 10, maxDelayMs: 40 },
        progress: { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ImportStopped);
      expect((error as ImportStopped).progress).toMatchObject({ files: 1, imports: [] });
      expect((error as ImportStopped).message).toMatch(/503/);
      expect(importPosts).toBeGreaterThan(1);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('says every retry, and gives up on a server that never answered within its first-contact patience (a wrong --server)', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'molvault-import-unreachable-'));
    const said: string[] = [];
    try {
      await fs.writeFile(path.join(dir, 'a.pdb'), 'ATOM      1  CA  ALA A   1       0.000   0.000   0.000  1.00  0.00           C\n');
      const started = Date.now();
      const error = await runImport({
        source: dir,
        project: 'lab',
        server: `http://127.0.0.1:${port}`,
        token: 'mv_test',
        // Ten minutes of patience once the server has answered; 300 ms until it has.
        retry: { forMs: 600_000, firstDelayMs: 10, maxDelayMs: 40, firstContactMs: 300 },
        progress: { write: (text: string) => said.push(text), isTTY: false } as unknown as NodeJS.WriteStream,
      }).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(error).toBeInstanceOf(ImportRequestError);
      expect((error as Error).message).toMatch(
        /cannot reach molvault at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED \(is --server right, and the server running\?\)/,
      );
      expect(said.join('')).toMatch(/cannot reach molvault .*; trying again in 10 ms \(for 0 s more\)/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('once the server has answered, waits out an outage longer than the first-contact patience', async () => {
    const server = await scriptedServer([200, 'drop', 'drop', 'drop', 'drop', 'drop', 'drop', 200]);
    close = server.close;
    const retries: number[] = [];
    const api = apiClient(server.url, 'mv_test', { forMs: 5_000, firstDelayMs: 30, maxDelayMs: 40, firstContactMs: 50 }, (_error, delayMs) =>
      retries.push(delayMs),
    );
    await api.request('GET', '/v1/projects');
    const started = Date.now();
    const { status } = await api.request('GET', '/v1/projects');
    expect(status).toBe(200);
    expect(Date.now() - started).toBeGreaterThan(50);
    expect(retries).toEqual([30, 40, 40, 40, 40, 40]);
    expect(server.hits()).toBe(8);
  });
});
