// A buyer's whole flow, through the page alone: sign up, find the concert,
// pass the waiting room, pick seats on the map, hold them, pay.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_URL, openBrowser, screenshot } from './browser.js';
import { newSchedule, newUser, holdSeats, pay, expect, unique } from './api.js';

test('a buyer signs up, holds two seats and pays for them', async () => {
  const { concert, schedule, seats } = await newSchedule({
    sections: [{ name: 'A', rows: 3, seatsPerRow: 8, price: 15000 }, { name: 'B', rows: 3, seatsPerRow: 8, price: 9000 }],
  });
  // Others are buying too: one seat sold, two held.
  const [other, another] = [await newUser('other'), await newUser('another')];
  const sold = await holdSeats(other, schedule.id, [seats[3].id]);
  await pay(other, sold.id);
  await holdSeats(another, schedule.id, [seats[4].id, seats[5].id]);

  const browser = await openBrowser();
  try {
    const { page } = browser;
    await page.goto(`${BASE_URL}/#/login`);
    const email = `${unique('fan')}@example.com`;
    // Not signed up yet: the API's sentence is shown as it is.
    await page.getByLabel('Email', { exact: true }).first().fill(email);
    await page.getByLabel('Password', { exact: true }).fill('password-123');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('#status.error').getByText('e-mail or password is wrong').waitFor();

    await page.getByLabel('Email', { exact: true }).last().fill(email);
    await page.getByLabel('Nickname').fill('fan');
    await page.getByLabel(/^Password \(/).fill('password-123');
    await page.getByRole('button', { name: 'Sign up' }).click();

    await page.getByRole('link', { name: concert.title }).click();
    await page.getByRole('link', { name: 'Get tickets' }).click();
    // The waiting room admits at once: there is no line.
    await page.getByRole('heading', { name: 'Pick your seats' }).waitFor();
    const seat = (s) => page.locator(`[data-seat="${s.id}"]`);
    await assertTaken(seat(seats[3]));
    await assertTaken(seat(seats[4]));
    await seat(seats[9]).click();
    await seat(seats[10]).click();
    assert.equal(await seat(seats[9]).getAttribute('aria-pressed'), 'true');
    await page.getByText('Picked 2 of 4').waitFor();
    await screenshot(page, 'seat-map');
    await page.getByRole('button', { name: 'Hold the picked seats' }).click();

    await page.getByText(/Pay within \d+:\d\d/).waitFor();
    await page.getByRole('button', { name: /^Pay / }).click();
    await page.getByText('Paid. Enjoy the concert!').waitFor();
    await page.locator('.reservation[data-status="CONFIRMED"]').waitFor();

    await page.getByRole('link', { name: 'My reservations' }).first().click();
    const mine = page.locator('li[data-status="CONFIRMED"]');
    await mine.waitFor();
    assert.match(await mine.innerText(), /A-2-2, A-2-3/);
  } finally {
    await browser.close();
  }

  const status = await expect(200, 'GET', `/api/concerts/${concert.id}/schedules/${schedule.id}/seats`);
  const reserved = status.seats.filter((s) => s.status === 'RESERVED').map((s) => s.id);
  assert.deepEqual(reserved, [seats[3].id, seats[9].id, seats[10].id]);
});

async function assertTaken(locator) {
  await locator.and(locator.page().locator('[disabled]')).waitFor();
}
