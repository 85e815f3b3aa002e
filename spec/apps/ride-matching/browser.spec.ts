/**
 * The live page in a real browser: headless Chromium (Debian's `chromium`,
 * driven by playwright-core) loads the page of a running service with its
 * simulator, sees the drivers drawn and a match drawn, kills a worker with
 * the page's button and sees the supervisor bring a new process, and keeps a
 * screenshot in .artifacts/ride-matching/ (git-ignored).
 *
 * Chromium comes from `npm test` (scripts/bootstrap.mjs ensureChromium: found,
 * or installed with apt-get when root; its path in CHROMIUM_PATH). Without
 * it this spec fails and says how to install it; it never skips.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startServiceProcess, type ServiceProcess } from './service-kit';

/** The page's globals as the functions evaluated in the page use them (this project's tsconfig has no DOM lib). */
interface PageElement {
  textContent: string | null;
  classList: { contains(name: string): boolean };
  querySelector(selector: string): PageElement | null;
}
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement> & { length: number };
};

const ARTIFACTS = join(__dirname, '..', '..', '..', '.artifacts', 'ride-matching');
const DRIVERS = 30;

function chromiumPath(): string {
  const path = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
  if (!path || !existsSync(path)) {
    throw new Error('chromium is not installed: run the tests with `npm test` (it installs Debian\'s chromium with apt-get when root), or `sudo apt-get install -y chromium`, or set CHROMIUM_PATH');
  }
  return path;
}

describe('ride-matching live page (headless Chromium)', () => {
  let service: ServiceProcess | undefined;
  let browser: Browser | undefined;
  afterAll(async () => {
    await browser?.close();
    await service?.stop();
  });

  it('shows the drivers, draws a match, and the kill button kills a worker the supervisor restarts', async () => {
    const executablePath = chromiumPath();
    service = await startServiceProcess({
      workers: 2,
      simulator: true,
      drivers: DRIVERS,
      rideRate: 4,
      acceptMinMs: 100,
      acceptMaxMs: 500,
      speed: 1,
      tickMs: 500,
    });
    browser = await chromium.launch({
      executablePath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    // Offline: anything not from the service fails (no CDN, no tiles).
    const foreign: string[] = [];
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(service!.url) || url.startsWith('data:')) return route.continue();
      foreign.push(url);
      return route.abort();
    });

    await page.goto(service.url);
    await page.waitForSelector('body[data-connected="true"]', { timeout: 15_000 });
    await page.waitForFunction((n) => Number(document.body.dataset.drivers) >= n, DRIVERS, { timeout: 20_000 });
    await page.waitForFunction(() => Number(document.body.dataset.matches) >= 1, undefined, { timeout: 30_000 });
    // The counters come with the next `stats` event (every second).
    await page.waitForFunction(() => Number(document.querySelector('#c-matched')?.textContent) >= 1, undefined, { timeout: 5_000 });
    expect(await page.textContent('#c-p50')).toMatch(/^\d+(\.\d+)? m?s$/);
    expect(await page.locator('#partitions span').count()).toBe(4);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'page.png') });

    // The kill button: the worker goes down, the supervisor starts a new process, the partitions come back.
    const pidBefore = await page.textContent('.worker[data-slot="0"] .what');
    await page.click('button[data-kill="0"]');
    await page.waitForFunction(() => [...document.querySelectorAll('#log li')].some((li) => li.textContent?.includes('worker 0') && li.textContent.includes('killed with SIGKILL')), undefined, { timeout: 10_000 });
    await page.waitForFunction(
      (before) => {
        const w = document.querySelector('.worker[data-slot="0"]');
        return !!w && !w.classList.contains('down') && w.querySelector('.what')?.textContent !== before && /restarted 1×/.test(w.textContent ?? '');
      },
      pidBefore,
      { timeout: 30_000 },
    );
    await page.waitForFunction(() => document.querySelectorAll('#partitions span.none').length === 0, undefined, { timeout: 20_000 });
    const matchesBefore = Number(await page.getAttribute('body', 'data-matches'));
    await page.waitForFunction((n) => Number(document.body.dataset.matches) > n, matchesBefore, { timeout: 30_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'after-kill.png') });

    expect(foreign).toEqual([]);
    expect(problems).toEqual([]);
  }, 120_000);
});
