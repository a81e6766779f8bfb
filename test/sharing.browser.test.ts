import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HeadlessBrowser, launchBrowser } from './helpers/browser.js';
import { client, storedStructure, type TestUser, userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const MOLSTAR_BUILD = path.dirname(createRequire(import.meta.url).resolve('molstar/build/viewer/molstar.js'));

/**
 * A web app on another origin, as a lab would run one: Mol*'s viewer build from the molstar
 * package and a page that opens the URL it is given (`?url=…&format=…`) through Mol*'s API.
 */
const VIEWER_PAGE = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><link rel="stylesheet" href="/molstar.css">
<style>#app { position: absolute; inset: 0; }</style></head>
<body><div id="app"></div>
<script src="/molstar.js"></script>
<script>
  var params = new URLSearchParams(location.search);
  window.result = { state: 'loading' };
  molstar.Viewer.create('app', { layoutIsExpanded: false, layoutShowControls: false, layoutShowLog: false })
    .then(function (viewer) { window.viewer = viewer; return viewer.loadStructureFromUrl(params.get('url'), params.get('format'), false); })
    .then(function () { window.result.state = 'loaded'; })
    .catch(function (error) { window.result = { state: 'failed', error: String(error) }; });
</script></body></html>`;

function startWebApp(): Promise<{ url: string; close: () => Promise<void> }> {
  const files: Record<string, string> = { '/molstar.js': 'application/javascript', '/molstar.css': 'text/css' };
  const server = http.createServer((request, response) => {
    const pathname = new URL(request.url ?? '/', 'http://x').pathname;
    if (pathname === '/' || pathname === '/index.html') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(VIEWER_PAGE);
    } else if (files[pathname]) {
      response.writeHead(200, { 'content-type': files[pathname] });
      createReadStream(path.join(MOLSTAR_BUILD, pathname.slice(1))).pipe(response);
    } else {
      response.writeHead(404).end();
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      // "localhost" rather than 127.0.0.1: another host name and port, so another origin than molvault's.
      resolve({
        url: `http://localhost:${(server.address() as AddressInfo).port}`,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

/** Atoms of the first structure Mol* holds, read from its plugin state (undefined while none is loaded); `viewerPath` names the page's global Viewer. */
function loadedAtomCount(page: Page, viewerPath: string[]): Promise<number | undefined> {
  return page.evaluate((names) => {
    const viewer = names.reduce((value: any, name) => value?.[name], globalThis);
    const structure = viewer?.plugin.managers.structure.hierarchy.current.structures[0];
    return structure?.cell.obj?.data.elementCount as number | undefined;
  }, viewerPath);
}

describe('a real web viewer (Mol* in headless Chromium) opens stored structures', () => {
  let stack: Stack;
  let owner: TestUser;
  let api: ReturnType<typeof client>;
  let structureId: string;
  let atoms: number;
  let browser: HeadlessBrowser;
  let webApp: Awaited<ReturnType<typeof startWebApp>>;

  beforeAll(async () => {
    stack = await startStack();
    owner = await userFactory(stack.ctx);
    api = client(stack.url, owner.token);
    const projectId = (await api.post('/v1/projects', { name: 'viewer' })).body.id;
    structureId = await storedStructure(api, projectId, '1crn.pdb', await fs.readFile(path.join(FIXTURES, 'ngl_1crn.pdb')));
    atoms = (await api.get(`/v1/structures/${structureId}`)).body.currentVersion.summary.atoms;
    expect(atoms).toBeGreaterThan(300);
    webApp = await startWebApp();
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await webApp?.close();
    await stack?.stop();
  });

  it('Mol* on another origin loads a signed URL (no header, CORS *) and holds as many atoms as the stored summary', async () => {
    const { url } = (await api.get(`/v1/structures/${structureId}/download-url`)).body;
    const page = await browser.page();
    await page.goto(`${webApp.url}/?url=${encodeURIComponent(url)}&format=pdb`, { waitUntil: 'domcontentloaded', timeout: 90_000 });
    await page.waitForFunction(() => (globalThis as unknown as { result: { state: string } }).result.state !== 'loading', undefined, { timeout: 90_000 });
    const result = await page.evaluate(() => (globalThis as unknown as { result: { state: string; error?: string } }).result);
    expect(result).toEqual({ state: 'loaded' });
    expect(await loadedAtomCount(page, ['viewer'])).toBe(atoms);
    // Mol* fetched the file from molvault itself, across origins.
    expect(browser.requests.some((r) => r.url === url)).toBe(true);
    expect(browser.externalRequests()).toEqual([]);
    await page.close();
  }, 120_000);

  it("the share link's page shows the structure in Mol* served by molvault, with its name, summary, versions and a download button", async () => {
    const { url, id } = (await api.post(`/v1/structures/${structureId}/links`, {})).body;
    const page = await browser.page();
    const response = await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 90_000 });
    expect(response?.status()).toBe(200);
    await page.waitForFunction(() => (globalThis as unknown as { molvaultShare?: { state: string } }).molvaultShare?.state !== 'loading', undefined, {
      timeout: 90_000,
    });
    const share = await page.evaluate(() => {
      const s = (globalThis as unknown as { molvaultShare: { state: string; error: string | null } }).molvaultShare;
      return { state: s.state, error: s.error };
    });
    expect(share).toEqual({ state: 'loaded', error: null });
    expect(await loadedAtomCount(page, ['molvaultShare', 'viewer'])).toBe(atoms);
    expect(await page.textContent('h1')).toContain('1crn');
    expect(await page.textContent('aside')).toContain(String(atoms));
    expect(await page.textContent('aside')).toContain('Version 1');
    expect(await page.getAttribute('#download', 'href')).toBe(`/l/${id}?download=1&version=1`);
    // Everything the page loaded came from molvault: its own page, Mol*'s build under /viewer/, the file.
    const origin = new URL(url).origin;
    const pageRequests = browser.requests.filter((r) => r.url.startsWith(origin) && !r.url.includes('/s/'));
    expect(pageRequests.map((r) => new URL(r.url).pathname)).toEqual(
      expect.arrayContaining(['/viewer/molstar.js', '/viewer/molstar.css', '/viewer/share.js', `/l/${id}/1crn.pdb`]),
    );
    expect(browser.externalRequests()).toEqual([]);
    await page.close();
  }, 120_000);
});
