// Accessibility: axe-core on every main view, the page at 360 px, and a
// hold made with the keyboard alone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_URL, openBrowser, seriousViolations } from './browser.js';
import { newSchedule, newUser, logInPage, holdSeats } from './api.js';

/** A schedule on sale, one whose sale opens in an hour, and a buyer with a hold. */
async function fixture() {
  const onSale = await newSchedule({ sections: [{ name: 'A', rows: 2, seatsPerRow: 24, price: 7500 }, { name: 'B', rows: 1, seatsPerRow: 4, price: 5000 }] });
  const later = await newSchedule({
    sections: [{ name: 'A', rows: 1, seatsPerRow: 4, price: 7500 }],
    salesOpenAt: new Date(Date.now() + 3600_000).toISOString(),
  });
  const user = await newUser('a11y');
  const other = await newUser('other');
  await holdSeats(other, onSale.schedule.id, [onSale.seats[1].id]);
  const hold = await holdSeats(user, onSale.schedule.id, [onSale.seats[0].id]);
  const schedulePath = (s) => `#/concerts/${s.concert.id}/schedules/${s.schedule.id}`;
  return {
    user,
    views: [
      ['concerts', '#/', 'Concerts'],
      ['concert', `#/concerts/${onSale.concert.id}`, onSale.concert.title],
      ['waiting room before the opening', schedulePath(later), 'Waiting room'],
      ['seat map', `${schedulePath(onSale)}/seats`, 'Pick your seats'],
      ['hold', `#/reservations/${hold.id}`, `Reservation ${hold.id}`],
      ['my reservations', '#/my', 'My reservations'],
    ],
  };
}

async function visit(page, hash, heading) {
  await page.goto(`${BASE_URL}/${hash}`);
  await page.getByRole('heading', { level: 2, name: heading }).waitFor();
  await page.waitForLoadState('networkidle');
}

test('the main views have no serious or critical accessibility violation', async () => {
  const { user, views } = await fixture();
  const browser = await openBrowser({ bypassCSP: true });
  try {
    const { page } = browser;
    await page.goto(`${BASE_URL}/#/login`);
    await page.getByRole('heading', { name: 'Log in or sign up' }).waitFor();
    const found = { 'log in': await seriousViolations(page) };
    await logInPage(page, user);
    for (const [name, hash, heading] of views) {
      await visit(page, hash, heading);
      found[name] = await seriousViolations(page);
    }
    for (const [name, violations] of Object.entries(found)) {
      assert.deepEqual(violations, [], `${name}: ${violations.join('; ')}`);
    }
  } finally {
    await browser.close();
  }
});

test('at 360 px the page does not overflow sideways', async () => {
  const { user, views } = await fixture();
  const browser = await openBrowser({ width: 360, height: 740 });
  try {
    const { page } = browser;
    await logInPage(page, user);
    for (const [name, hash, heading] of views) {
      await visit(page, hash, heading);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.equal(overflow, 0, `${name} overflows by ${overflow} px`);
    }
    // The wide seat map scrolls inside its own box instead.
    await visit(page, views[3][1], views[3][2]);
    const box = await page.locator('.seatmap-box').evaluate((el) => el.scrollWidth > el.clientWidth);
    assert.ok(box, 'the seat map scrolls sideways in its box');
  } finally {
    await browser.close();
  }
});

test('a buyer holds a seat with the keyboard alone', async () => {
  const { concert, schedule, seats } = await newSchedule({ sections: [{ name: 'A', rows: 1, seatsPerRow: 4, price: 6000 }] });
  const user = await newUser('keys');
  const browser = await openBrowser();
  try {
    const { page } = browser;
    await logInPage(page, user);
    await page.goto(`${BASE_URL}/#/concerts/${concert.id}/schedules/${schedule.id}`);
    await page.getByRole('heading', { name: 'Pick your seats' }).waitFor();
    await page.locator(`[data-seat="${seats[3].id}"]`).waitFor();

    const focused = () => page.evaluate(() => {
      const el = document.activeElement;
      return { seat: el.dataset.seat, text: el.textContent, outline: getComputedStyle(el).outlineStyle };
    });
    // Tab to the third seat and pick it with Space.
    await tabUntil(page, focused, (f) => f.seat === String(seats[2].id));
    assert.notEqual((await focused()).outline, 'none', 'the focused seat shows its focus');
    await page.keyboard.press('Space');
    assert.equal(await page.locator(`[data-seat="${seats[2].id}"]`).getAttribute('aria-pressed'), 'true');
    // Then to the Hold button, and Enter.
    await tabUntil(page, focused, (f) => f.text === 'Hold the picked seats');
    await page.keyboard.press('Enter');
    await page.getByText(/Pay within \d+:\d\d/).waitFor();
  } finally {
    await browser.close();
  }
});

async function tabUntil(page, focused, done) {
  for (let i = 0; i < 30; i += 1) {
    await page.keyboard.press('Tab');
    if (done(await focused())) return;
  }
  assert.fail('never reached by Tab');
}
