/**
 * Test kit: headless Chromium for the portal's browser tests, driven by playwright-core (which
 * downloads nothing) on Debian's `/usr/bin/chromium` (apt-get install chromium; `.ci/run` does
 * this). One browser per test file, with a fresh profile directory (`--user-data-dir`, through
 * Playwright's persistent context) removed when the process exits; downloads accepted; flags
 * that keep Chromium off the network (stack.md §6). Playwright kills the browser it launched if
 * the test process exits without closing it.
 *
 * Screenshots go to `artifacts/screenshots/<name>.png` at the repository root (git-ignored) for
 * a reviewer to look at; {@link SCREENSHOTS} says where.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Download, type Page } from 'playwright-core';
import { tempDir } from './tools.ts';

export const CHROMIUM = '/usr/bin/chromium';

/** Where screenshots are written. */
export const SCREENSHOTS = new URL('../../artifacts/screenshots/', import.meta.url).pathname;

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export interface TestBrowser {
  readonly context: BrowserContext;
  /** The first tab; tests reuse it. */
  readonly page: Page;
  /** A full-page PNG of `page` as `artifacts/screenshots/<name>.png`; returns its path. */
  screenshot(name: string, page?: Page): Promise<string>;
  /** Runs `action` (a click) and returns the download it starts, with its bytes. */
  download(
    action: () => Promise<unknown>,
    page?: Page,
  ): Promise<{ download: Download; bytes: Buffer }>;
  close(): Promise<void>;
}

export async function launchBrowser(
  o: { readonly viewport?: { width: number; height: number } } = {},
): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: apt-get install chromium (.ci/run does this)`);
  const context = await chromium.launchPersistentContext(tempDir('certpost-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    acceptDownloads: true,
    viewport: o.viewport ?? { width: 1280, height: 860 },
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  const page = context.pages()[0] ?? (await context.newPage());
  mkdirSync(SCREENSHOTS, { recursive: true });
  return {
    context,
    page,
    async screenshot(name, p = page) {
      const path = join(SCREENSHOTS, `${name}.png`);
      await p.screenshot({ path, fullPage: true });
      return path;
    },
    async download(action, p = page) {
      const [download] = await Promise.all([p.waitForEvent('download'), action()]);
      return { download, bytes: await readFile(await download.path()) };
    },
    async close() {
      await context.close();
    },
  };
}
