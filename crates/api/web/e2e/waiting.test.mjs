// The waiting room: a buyer in line sees the position, then the end of the
// sale when the others buy the last seats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_URL, openBrowser, screenshot } from './browser.js';
import { newSchedule, newUser, admitted, logInPage, expect, pay } from './api.js';

test('a waiting buyer sees the sale end sold out', async () => {
  // 2 seats: at most 2 passes per free seat, so 4 admitted buyers fill the room.
  const { concert, schedule, seats } = await newSchedule({
    sections: [{ name: 'A', rows: 1, seatsPerRow: 2, price: 20000 }],
    maxSeatsPerBuyer: 1,
  });
  const ahead = [];
  for (let i = 0; i < 4; i += 1) {
    const user = await newUser('ahead');
    user.pass = await admitted(user, schedule.id);
    ahead.push(user);
  }
  const fan = await newUser('waiting');
  const browser = await openBrowser();
  try {
    const { page } = browser;
    await logInPage(page, fan);
    await page.goto(`${BASE_URL}/#/concerts/${concert.id}/schedules/${schedule.id}`);
    const room = page.locator('.room[data-state="waiting"]');
    await room.waitFor();
    assert.equal(await room.locator('.position').innerText(), '1');
    assert.equal(await room.locator('.seats-left').innerText(), '2');
    await screenshot(page, 'waiting-room');

    // The two seats go to buyers ahead in line.
    for (const [i, user] of ahead.slice(0, 2).entries()) {
      const hold = await expect(201, 'POST', '/api/reservations', {
        token: user.token,
        headers: { 'X-Queue-Token': user.pass },
        body: { scheduleId: schedule.id, seatIds: [seats[i].id] },
      });
      await pay(user, hold.id);
    }
    await page.locator('.room[data-state="sold-out"]').waitFor({ timeout: 5000 });
    await page.getByText('Every seat of this date has been sold.').waitFor();
    await screenshot(page, 'sold-out');
  } finally {
    await browser.close();
  }
  const answer = await expect(410, 'POST', '/api/queue/enter', { token: fan.token, body: { scheduleId: schedule.id } });
  assert.match(answer.type, /sold-out/);
});
