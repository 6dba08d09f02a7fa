// The operator's page: an admin creates a concert and a schedule in the
// page, buyers hold and pay through the API meanwhile, and the live monitor
// shows their counts, colours their seats and reads the oversell guard as 0.
// Also: a non-admin is told how to become one, the page works at 360 px and
// with the keyboard, and axe-core finds no serious or critical violation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_URL, openBrowser, seriousViolations } from './browser.js';

const ADMIN_EMAIL = process.env.ADMIN_EMAIL || 'admin@browser.test';
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD || 'admin-password-123';

/** The API, straight from Node (other users, not the page). */
async function call(method, path, { token, body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(BASE_URL + path, init);
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return json;
}

async function buyer(name) {
  const email = `${name}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@browser.test`;
  await call('POST', '/api/auth/signup', { body: { email, password: 'password-123', nickname: name } });
  const { token } = await call('POST', '/api/auth/login', { body: { email, password: 'password-123' } });
  return token;
}

/** Enters the waiting room, waits for the pass, holds `seatIds`; the reservation. */
async function hold(token, scheduleId, seatIds) {
  await call('POST', '/api/queue/enter', { token, body: { scheduleId } });
  for (let i = 0; i < 100; i++) {
    const response = await fetch(`${BASE_URL}/api/queue/token?scheduleId=${scheduleId}`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    if (response.ok) {
      const pass = await response.json();
      return call('POST', '/api/reservations', {
        token,
        body: { scheduleId, seatIds },
        headers: { 'X-Queue-Token': pass.token },
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('not admitted within 10 s');
}

async function logInOnPage(page, email, password) {
  await page.goto(`${BASE_URL}/operator`);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** The colour of the canvas pixel at the centre of seat `index` (layout order). */
function seatColour(page, index) {
  return page.evaluate((i) => {
    const canvas = document.getElementById('seat-grid');
    const view = window.operatorView;
    const scale = window.devicePixelRatio || 1;
    const x = Math.floor((view.xs[i] + view.size / 2) * scale);
    const y = Math.floor((view.ys[i] + view.size / 2) * scale);
    const [r, g, b] = canvas.getContext('2d').getImageData(x, y, 1, 1).data;
    return `#${[r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('')}`;
  }, index);
}

const FREE = '#bbf7d0';
const HELD = '#f59e0b';
const SOLD = '#1e3a8a';

test('an admin creates a concert and a schedule and watches holds and a payment on the monitor', async () => {
  const browser = await openBrowser({ width: 1280, height: 900, bypassCSP: true });
  try {
    const { page } = browser;
    await logInOnPage(page, ADMIN_EMAIL, ADMIN_PASSWORD);
    const title = `Monitor night ${Date.now()}`;
    await page.getByLabel('Title').fill(title);
    await page.getByLabel('Artist').fill('The Pollers');
    await page.getByLabel('Venue').fill('Hall 1');
    await page.getByRole('button', { name: 'Create the concert' }).click();
    await page.getByText(`Concert "${title}" created`).waitFor();

    // A 2 x 5 grid of one section: 10 seats.
    await page.getByLabel('Rows').fill('2');
    await page.getByLabel('Seats per row').fill('5');
    await page.getByRole('button', { name: 'Create the schedule' }).click();
    await page.getByText(/Schedule \d+ created with 10 seats/).waitFor();
    const created = await page.locator('#status').textContent();
    const scheduleId = Number(/Schedule (\d+)/.exec(created)[1]);

    await page.getByRole('link', { name: new RegExp(`Monitor schedule ${scheduleId} of`) }).click();
    await page.locator('#guard').filter({ hasText: '0 seats sold twice' }).waitFor();
    const tile = (label) => page.locator('.tile', { has: page.locator('dt', { hasText: new RegExp(`^${label}$`) }) }).locator('dd');
    await tile('Free').filter({ hasText: /^10$/ }).waitFor();
    assert.equal(await seatColour(page, 0), FREE);

    // Other users hold three seats and one of them pays for two.
    const concerts = await call('GET', '/api/concerts');
    const concert = concerts.find((c) => c.title === title);
    const layout = await call('GET', `/api/concerts/${concert.id}/schedules/${scheduleId}/seats/layout`);
    const ids = layout.seats.map((s) => s.id);
    const payer = await buyer('payer');
    const holder = await buyer('holder');
    const paid = await hold(payer, scheduleId, [ids[0], ids[1]]);
    await hold(holder, scheduleId, [ids[2]]);
    await call('POST', '/api/payments', { token: payer, body: { reservationId: paid.id } });

    await tile('Sold').filter({ hasText: /^2$/ }).waitFor();
    await tile('Held').filter({ hasText: /^1$/ }).waitFor();
    await tile('Free').filter({ hasText: /^7$/ }).waitFor();
    await page.locator('#guard.ok').filter({ hasText: '0 seats sold twice' }).waitFor();
    // The grid catches up with its own poll of the statuses.
    await page.waitForFunction(() => window.operatorView?.statuses?.[2] === 1);
    assert.equal(await seatColour(page, 0), SOLD);
    assert.equal(await seatColour(page, 1), SOLD);
    assert.equal(await seatColour(page, 2), HELD);
    assert.equal(await seatColour(page, 3), FREE);
    assert.match(await page.locator('#seat-grid').getAttribute('aria-label'), /2 sold, 1 held, 7 free/);

    assert.deepEqual(await seriousViolations(page), []);
  } finally {
    await browser.close();
  }
});

test('the operator page works at 360 px, with the keyboard, and passes axe-core', async () => {
  const browser = await openBrowser({ width: 360, height: 780, bypassCSP: true });
  try {
    const { page } = browser;
    await page.goto(`${BASE_URL}/operator`);
    assert.deepEqual(await seriousViolations(page), [], 'the log-in form');
    // Log in with the keyboard alone.
    await page.getByLabel('E-mail').focus();
    await page.keyboard.type(ADMIN_EMAIL);
    await page.keyboard.press('Tab');
    await page.keyboard.type(ADMIN_PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Concerts and schedules' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow} px at 360 px`);
    assert.deepEqual(await seriousViolations(page), [], 'the catalogue');

    // Open the first monitor link by keyboard: focus it, press Enter.
    const link = page.getByRole('link', { name: /^Monitor schedule/ }).first();
    await link.focus();
    await page.keyboard.press('Enter');
    await page.locator('#guard').filter({ hasText: 'sold twice' }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'monitor-title');
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(wide <= 0, `the monitor scrolls sideways by ${wide} px at 360 px`);
    assert.deepEqual(await seriousViolations(page), [], 'the monitor');
  } finally {
    await browser.close();
  }
});

test('a user who is not an admin is told how to become one', async () => {
  const browser = await openBrowser();
  try {
    const { page } = browser;
    const email = `fan-${Date.now()}@browser.test`;
    await call('POST', '/api/auth/signup', { body: { email, password: 'password-123', nickname: 'fan' } });
    await logInOnPage(page, email, 'password-123');
    await page.getByRole('heading', { name: 'This account is not an admin' }).waitFor();
    assert.ok(await page.getByText('booking create-admin').isVisible());
    assert.equal(await page.locator('#admin').isHidden(), true);
  } finally {
    await browser.close();
  }
});

test('the monitor draws a 20,000-seat schedule on a canvas and repaints only changed seats', async () => {
  const browser = await openBrowser();
  try {
    const { page } = browser;
    const { token } = await call('POST', '/api/auth/login', { body: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } });
    const concert = await call('POST', '/api/admin/concerts', { token, body: { title: 'Big room', artist: 'Many', venue: 'Arena' } });
    const sections = ['A', 'B'].map((name) => ({ name, rows: 100, seatsPerRow: 100, price: 100 }));
    const schedule = await call('POST', `/api/admin/concerts/${concert.id}/schedules`, {
      token,
      body: { startsAt: '2031-01-01T20:00:00Z', sections },
    });
    await logInOnPage(page, ADMIN_EMAIL, ADMIN_PASSWORD);
    await page.getByRole('heading', { name: 'Concerts and schedules' }).waitFor();
    await page.goto(`${BASE_URL}/operator#/monitor/${concert.id}/${schedule.id}`);
    await page.locator('.tile dd').first().filter({ hasText: /^0$/ }).waitFor();
    const drawn = await page.evaluate(() => ({ count: window.operatorView.grid.count, size: window.operatorView.size }));
    assert.equal(drawn.count, 20000);
    assert.ok(drawn.size >= 1);
    // A second poll with no change repaints nothing.
    const before = await page.evaluate(() => window.operatorPolls.count);
    await page.waitForFunction((n) => window.operatorPolls.count >= n + 2, before);
    assert.equal(await page.evaluate(() => window.operatorView.lastRepaint), 0);
  } finally {
    await browser.close();
  }
});
