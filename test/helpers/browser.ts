import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/** Debian's Chromium (`apt-get install chromium`; `.ci/run` installs it when missing). */
export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

/**
 * Flags Chromium needs here: as root it refuses to start without --no-sandbox, and the machine's
 * closed network makes its background services fail loudly; WebGL (Mol*) runs on SwiftShader.
 */
const ARGS = [
  '--no-sandbox',
  '--disable-gpu-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

export interface RecordedRequest {
  url: string;
  method: string;
  resourceType: string;
}

export interface HeadlessBrowser {
  browser: Browser;
  context: BrowserContext;
  /** A new page whose every request is recorded in `requests` (and console errors in `consoleErrors`). */
  page(): Promise<Page>;
  /** Every request any page of this browser made. */
  requests: RecordedRequest[];
  consoleErrors: string[];
  /** Requests to hosts other than 127.0.0.1 / localhost (nothing may leave the machine). */
  externalRequests(): RecordedRequest[];
  close(): Promise<void>;
}

/** Starts headless Chromium with a fresh profile of its own. */
export async function launchBrowser(): Promise<HeadlessBrowser> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'molvault-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
  });
  const browser = context.browser() as Browser;
  const requests: RecordedRequest[] = [];
  const consoleErrors: string[] = [];
  context.on('request', (request) => {
    requests.push({ url: request.url(), method: request.method(), resourceType: request.resourceType() });
  });
  return {
    browser,
    context,
    requests,
    consoleErrors,
    async page() {
      const page = await context.newPage();
      page.on('console', (message) => {
        if (message.type() === 'error') consoleErrors.push(message.text());
      });
      page.on('pageerror', (error) => consoleErrors.push(String(error)));
      return page;
    },
    externalRequests() {
      return requests.filter((r) => {
        if (!/^https?:|^wss?:/.test(r.url)) return false;
        const host = new URL(r.url).hostname;
        return host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]';
      });
    },
    async close() {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}
