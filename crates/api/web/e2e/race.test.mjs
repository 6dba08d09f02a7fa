// Two buyers click Hold on the same seat at the same moment: exactly one
// gets it, and the other's map shows it taken within a second.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_URL, openBrowser } from './browser.js';
import { newSchedule, newUser, logInPage, seatStatuses, expect } from './api.js';

test('two buyers race for one seat: one holds it, the other sees it taken within a second', async () => {
  const { concert, schedule, seats } = await newSchedule({ sections: [{ name: 'A', rows: 2, seatsPerRow: 6, price: 12000 }] });
  const target = seats[2];
  const users = [await newUser('racer'), await newUser('racer')];
  const browsers = await Promise.all(users.map(() => openBrowser()));
  try {
    const pages = browsers.map((b) => b.page);
    await Promise.all(pages.map(async (page, i) => {
      await logInPage(page, users[i]);
      await page.goto(`${BASE_URL}/#/concerts/${concert.id}/schedules/${schedule.id}`);
      await page.getByRole('heading', { name: 'Pick your seats' }).waitFor();
      await page.locator(`[data-seat="${target.id}"]`).click();
    }));

    const outcomes = await Promise.all(pages.map(async (page) => {
      await page.getByRole('button', { name: 'Hold the picked seats' }).click();
      const held = page.waitForURL(/#\/reservations\/\d+$/).then(() => 'held');
      const lost = page.locator('#status.error').waitFor().then(() => 'lost');
      return Promise.race([held, lost]);
    }));
    assert.deepEqual([...outcomes].sort(), ['held', 'lost']);

    const loser = pages[outcomes.indexOf('lost')];
    const seen = Date.now();
    await loser.locator(`[data-seat="${target.id}"][disabled]`).waitFor({ timeout: 1000 });
    assert.ok(Date.now() - seen <= 1000);
    assert.match(await loser.locator('#status').innerText(), /taken|held/i);
    assert.equal(await loser.locator(`[data-seat="${target.id}"]`).getAttribute('aria-pressed'), 'false');
  } finally {
    await Promise.all(browsers.map((b) => b.close()));
  }

  // The API agrees: the seat is held, by exactly one of the two.
  assert.equal((await seatStatuses(concert.id, schedule.id)).get(target.id), 'HELD');
  const holds = await Promise.all(users.map((u) => expect(200, 'GET', '/api/reservations/my', { token: u.token })));
  const pending = holds.flat().filter((r) => r.scheduleId === schedule.id && r.status === 'PENDING');
  assert.equal(pending.length, 1);
  assert.deepEqual(pending[0].seatIds, [target.id]);
});
