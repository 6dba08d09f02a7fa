// The waiting room: a buyer in line sees the position, then the end of the
// sale when the others pay for the last seats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_URL, openBrowser, screenshot } from './browser.js';
import { newSchedule, newUser, admitted, logInPage, expect, pay } from './api.js';

test('a waiting buyer sees the sale end sold out', async () => {
  // 2 seats, both held by buyers ahead in line before the fan enters: with
  // no seat free the pass cap is 0, so the fan waits (the room is paused)
  // until the holds are paid and the sale ends. (Were the seats still free,
  // a tick planned on counts read just before a hold could admit the fan.)
  const { concert, schedule, seats } = await newSchedule({
    title: 'The Late Bloomers',
    sections: [{ name: 'A', rows: 1, seatsPerRow: 2, price: 20000 }],
    maxSeatsPerBuyer: 1,
  });
  const holds = [];
  for (const seat of seats) {
    const user = await newUser('ahead');
    const pass = await admitted(user, schedule.id);
    const hold = await expect(201, 'POST', '/api/reservations', {
      token: user.token,
      headers: { 'X-Queue-Token': pass },
      body: { scheduleId: schedule.id, seatIds: [seat.id] },
    });
    holds.push({ user, hold });
  }
  const fan = await newUser('waiting');
  const browser = await openBrowser();
  try {
    const { page } = browser;
    await logInPage(page, fan);
    await page.goto(`${BASE_URL}/#/concerts/${concert.id}/schedules/${schedule.id}`);
    const room = page.locator('.room[data-state="paused"]');
    await room.waitFor();
    assert.equal(await room.locator('.position').innerText(), '1');
    assert.equal(await room.locator('.seats-left').innerText(), '0');
    await room.getByText('Every seat is held right now.').waitFor();
    await screenshot(page, 'waiting-room');

    // The buyers ahead pay: nothing can come back.
    for (const { user, hold } of holds) await pay(user, hold.id);
    await page.locator('.room[data-state="sold-out"]').waitFor({ timeout: 5000 });
    await page.locator('.room').getByText('Every seat of this date has been sold.').waitFor();
    await screenshot(page, 'sold-out');
  } finally {
    await browser.close();
  }
  const answer = await expect(410, 'POST', '/api/queue/enter', { token: fan.token, body: { scheduleId: schedule.id } });
  assert.match(answer.type, /sold-out/);
});

test('before the opening the waiting room counts down, then lets the buyer in', async () => {
  const opensAt = new Date(Date.now() + 6000);
  const { concert, schedule } = await newSchedule({
    sections: [{ name: 'A', rows: 1, seatsPerRow: 4, price: 20000 }],
    salesOpenAt: opensAt.toISOString(),
  });
  const fan = await newUser('early');
  const browser = await openBrowser();
  try {
    const { page } = browser;
    await logInPage(page, fan);
    await page.goto(`${BASE_URL}/#/concerts/${concert.id}/schedules/${schedule.id}`);
    const opensIn = page.locator('.room[data-state="before-opening"] .opens-in');
    const first = await opensIn.innerText();
    assert.match(first, /^0:0[1-6]$/);
    // The countdown runs between the stream's updates.
    await page.waitForFunction((before) => document.querySelector('.opens-in')?.textContent !== before, first);
    // At the opening the pre-queue is drawn: one buyer, first in line, let in.
    await page.getByRole('heading', { name: 'Pick your seats' }).waitFor({ timeout: 10_000 });
    assert.ok(Date.now() >= opensAt.getTime());
  } finally {
    await browser.close();
  }
});
