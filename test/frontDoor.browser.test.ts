import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userFactory } from './helpers/factories.js';
import { type Stack, startStack } from './helpers/stack.js';

/**
 * The two pages molvault serves to people (issue 20, items 12 to 14), rendered by headless Chromium
 * (Debian's /usr/bin/chromium, driven by playwright-core) on a machine that may have no internet:
 * /docs must show the API's routes and the queue console its queues with real labels, and every
 * request either page makes must stay on 127.0.0.1.
 *
 * A small launcher of its own: the shared test/helpers/browser.ts was not yet on this branch.
 */

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

interface Recorded {
  url: string;
  status?: number;
  failed?: string;
}

/** A request that stays on this machine (data: and blob: URLs never leave the page). */
const isLocal = (url: string) => !/^(https?|wss?):/.test(url) || ['127.0.0.1', 'localhost'].includes(new URL(url).hostname);

async function launch(httpCredentials?: { username: string; password: string }) {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'molvault-chromium-'));
  const context: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    httpCredentials,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const requests: Recorded[] = [];
  context.on('request', (request) => {
    requests.push({ url: request.url() });
  });
  context.on('response', (response) => {
    const recorded = requests.find((r) => r.url === response.url() && r.status === undefined);
    if (recorded) recorded.status = response.status();
  });
  context.on('requestfailed', (request) => {
    const recorded = requests.find((r) => r.url === request.url() && !r.failed);
    if (recorded) recorded.failed = request.failure()?.errorText ?? 'failed';
  });
  // Nothing may leave the machine: a request elsewhere is recorded (above), then refused here.
  await context.route('**/*', (route) => (isLocal(route.request().url()) ? route.continue() : route.abort('internetdisconnected')));
  return {
    context,
    requests,
    external: () => requests.filter((r) => !isLocal(r.url)),
    async close() {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}

describe.skipIf(!existsSync(CHROMIUM))(`the front door in headless Chromium, offline (skipped when ${CHROMIUM} is not installed)`, () => {
  let stack: Stack;
  let browser: Awaited<ReturnType<typeof launch>>;
  let adminToken: string;

  beforeAll(async () => {
    stack = await startStack({ workers: false });
    adminToken = (await userFactory(stack.ctx, { admin: true })).token;
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('renders the API reference at /docs with its routes, from molvault alone', async () => {
    browser.requests.length = 0;
    const page = await browser.context.newPage();
    await page.goto(`${stack.url}/docs`);
    await page.locator('.opblock-summary-path[data-path="/v1/search"]').first().waitFor({ timeout: 30_000 });
    // Swagger UI breaks shown paths with zero-width spaces before each slash.
    const text = (await page.locator('body').innerText()).replace(/\u200b/g, '');
    for (const route of ['/v1/search', '/v1/projects', '/v1/structures/{id}', '/healthz']) expect(text).toContain(route);
    expect(browser.external()).toEqual([]);
    expect(browser.requests.filter((r) => r.failed)).toEqual([]);
    await page.close();
  });

  it('renders the queue console with its queues and real labels, from molvault alone', async () => {
    browser.requests.length = 0;
    const page = await browser.context.newPage();
    // HTTP Basic with an admin token as the password, given in the address as a person would paste it.
    await page.goto(`${stack.url.replace('http://', `http://admin:${adminToken}@`)}/admin/queues`);
    for (const queue of Object.values(stack.ctx.queues)) await page.getByText(queue.name).first().waitFor({ timeout: 30_000 });
    // A label of each queue's card (QUEUE.WORKERS.NONE: this stack runs no workers), once the
    // translations are in (the keys are shown until then, and for good when they fail to load).
    await page.getByText('No workers').first().waitFor({ timeout: 30_000 });
    await page.waitForLoadState('networkidle');
    const text = await page.locator('body').innerText();
    expect(text).not.toMatch(/\b(MENU|QUEUE|JOB|DASHBOARD)\.[A-Z_.]+/);
    expect(text).toMatch(/No workers/);
    expect(text).toMatch(/QUEUES/);
    console.log(JSON.stringify(browser.requests, null, 1), text.slice(0, 1500));
    expect(browser.external()).toEqual([]);
    expect(browser.requests.filter((r) => r.failed || (r.status ?? 0) >= 400)).toEqual([]);
    await page.close();
  });

  it("serves the pages' files without a password, and nothing else of node_modules", async () => {
    const css = await fetch(`${stack.url}/docs/assets/swagger-ui.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/text\/css/);
    for (const name of ['index.js', 'package.json', '..%2Fpackage.json', 'swagger-ui-bundle.js.map']) {
      expect((await fetch(`${stack.url}/docs/assets/${name}`)).status, name).toBe(404);
    }
    const labels = await fetch(`${stack.url}/admin/queues/static/locales/en-US/messages.json`);
    expect(labels.status).toBe(200);
    expect(((await labels.json()) as { QUEUE: { STATUS: { ACTIVE: string } } }).QUEUE.STATUS.ACTIVE).toBe('Active');
    expect((await fetch(`${stack.url}/admin/queues`)).status).toBe(401);
    expect((await fetch(`${stack.url}/admin/queues/api/queues`)).status).toBe(401);
  });
});
