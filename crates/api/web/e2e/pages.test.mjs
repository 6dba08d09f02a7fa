// The pages load from the binary, their scripts run under the CSP, and
// nothing is fetched from another origin.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_URL, openBrowser } from './browser.js';

for (const path of ['/', '/operator']) {
  test(`${path} loads with no console error and nothing from elsewhere`, async () => {
    const browser = await openBrowser();
    try {
      const { page } = browser;
      const errors = [];
      const foreign = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('request', (r) => !r.url().startsWith(BASE_URL) && foreign.push(r.url()));
      await page.goto(BASE_URL + path, { waitUntil: 'networkidle' });
      assert.deepEqual(errors, []);
      assert.deepEqual(foreign, []);
    } finally {
      await browser.close();
    }
  });
}
