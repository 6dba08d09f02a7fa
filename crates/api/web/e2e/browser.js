// Launches Debian's Chromium for the browser tests (never a downloaded one),
// each browser with a fresh profile, and gives the tests small helpers.

import { chromium } from 'playwright-core';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const BASE_URL = process.env.BASE_URL || 'http://127.0.0.1:18000';
/** A second server whose holds last seconds, for the expiry test. */
export const SHORT_HOLD_URL = process.env.SHORT_HOLD_URL;
export const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR;

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * A browser context with its own fresh profile, `width` x `height`. Close it
 * with `close()`, which also removes the profile. `bypassCSP` lets a test
 * inject a script (axe-core) into pages whose CSP allows only their own.
 */
export async function openBrowser({ width = 1280, height = 800, bypassCSP = false } = {}) {
  const profile = await mkdtemp(join(tmpdir(), 'booking-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width, height },
    bypassCSP,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10_000);
  return {
    context,
    page,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a PNG named `name` when SCREENSHOT_DIR is set. */
export async function screenshot(page, name) {
  if (!SCREENSHOT_DIR) return;
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`) });
}

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');

/**
 * The serious and critical accessibility violations axe-core finds on the
 * page. The page's browser must be opened with `bypassCSP`.
 */
export async function seriousViolations(page) {
  await page.addScriptTag({ path: AXE });
  const results = await page.evaluate(() => window.axe.run(document));
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}
