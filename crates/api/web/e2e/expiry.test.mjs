// A hold's countdown runs to zero on a server whose holds last seconds:
// the page says the hold expired, and the reservation is EXPIRED.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SHORT_HOLD_URL, openBrowser, screenshot } from './browser.js';
import { newSchedule, newUser, logInPage, call } from './api.js';

const HOLD_SECS = Number(process.env.SHORT_HOLD_SECS || 6);

test("a hold's countdown reaching zero shows the hold expired", async () => {
  assert.ok(SHORT_HOLD_URL, 'SHORT_HOLD_URL names the server with short holds');
  const base = SHORT_HOLD_URL;
  const { concert, schedule, seats } = await newSchedule({ base, sections: [{ name: 'A', rows: 1, seatsPerRow: 6, price: 5000 }] });
  const user = await newUser('late', base);
  const browser = await openBrowser();
  try {
    const { page } = browser;
    await logInPage(page, user, base);
    await page.goto(`${base}/#/concerts/${concert.id}/schedules/${schedule.id}`);
    await page.locator(`[data-seat="${seats[0].id}"]`).click();
    await page.getByRole('button', { name: 'Hold the picked seats' }).click();
    const countdown = page.locator('.countdown');
    await countdown.getByText(/Pay within 0:0\d/).waitFor();
    await screenshot(page, 'hold-countdown');

    await countdown.getByText('Hold expired').waitFor({ timeout: (HOLD_SECS + 2) * 1000 });
    assert.equal(await page.getByRole('button', { name: /^Pay / }).isDisabled(), true);
    // Re-read after the scheduler's pass (every second here): EXPIRED.
    await page.locator('.reservation[data-status="EXPIRED"]').waitFor({ timeout: 5000 });
  } finally {
    await browser.close();
  }
  const mine = await call('GET', '/api/reservations/my', { base, token: user.token });
  assert.deepEqual(mine.body.map((r) => r.status), ['EXPIRED']);
});
